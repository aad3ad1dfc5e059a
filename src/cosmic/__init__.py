"""cosmic: full-stack design-space exploration for distributed ML training.

Public API::

    import cosmic
    cfg = cosmic.load_config("examples/megatron-gpt3-175b-1024xa100.yaml")
    result = cosmic.simulate(cfg)
    print(result.step_time_s, result.breakdown)
    served = cosmic.serve("examples/serving/llama3-70b-8xh100.yaml")   # a serving deployment (docs/serving.md)
"""

from cosmic.errors import (
    ConfigError,
    CosmicError,
    InfeasibleError,
    StudyError,
    UnknownNameError,
)
from cosmic.serving import ServingConfig, ServingResult, load_serving_config, serve
from cosmic.sim import (
    BREAKDOWN_KEYS,
    Result,
    SystemConfig,
    config_from_dict,
    load_config,
    simulate,
    simulate_many,
)

__version__ = "0.1.0"

__all__ = [
    "BREAKDOWN_KEYS",
    "ConfigError",
    "CosmicError",
    "InfeasibleError",
    "Result",
    "ServingConfig",
    "ServingResult",
    "StudyError",
    "SystemConfig",
    "UnknownNameError",
    "config_from_dict",
    "load_config",
    "load_serving_config",
    "serve",
    "simulate",
    "simulate_many",
]
