"""Serving simulation: a request-level loop over iterations of mixed prefill and decode batches, on the same
workload, collective, network and compute stacks a training step uses (see docs/serving.md).

    import cosmic
    r = cosmic.serve("examples/serving/llama3-70b-8xh100.yaml")
    r.goodput_requests_per_s, r.latency["ttft_p99_s"]
"""

from cosmic.serving.config import ServingConfig, load_serving_config, serving_config_from_dict
from cosmic.serving.engine import serve, serve_dict
from cosmic.serving.result import ServingResult

__all__ = ["ServingConfig", "ServingResult", "load_serving_config", "serve", "serve_dict", "serving_config_from_dict"]
