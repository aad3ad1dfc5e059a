"""What a serving simulation reports: throughput, latency percentiles, goodput under the SLO, memory and cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOURS_PER_YEAR = 8766.0  # 365.25 days
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Latencies:
    """Per-request latencies, seconds (NaN where a request has none: refused, or TPOT of a one-token output)."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray

    def percentiles(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in ("ttft", "tpot", "e2e"):
            x = getattr(self, f"{name}_s")
            x = x[np.isfinite(x)]
            for q in PERCENTILES:
                out[f"{name}_p{q}_s"] = float(np.percentile(x, q)) if len(x) else float("nan")
        return out


@dataclass(frozen=True)
class ServingResult:
    """The figures of one serving simulation (`cosmic.serving`).

    Throughputs are over the span from the first arrival to the last completion. Goodput counts the requests that
    met both SLO targets (TTFT and TPOT) per second of that span (Zhong et al. 2024, DistServe). Cost per million
    tokens divides the deployment's hourly cost (devices at the catalog's $/device-hour, the network's capital
    cost from COSMIC's table amortised straight-line) by the tokens it served per hour.
    """

    requests: int
    completed: int
    refused: int
    duration_s: float
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    goodput_requests_per_s: float
    slo_attainment: float
    latency: dict[str, float]
    mean_ttft_s: float
    mean_tpot_s: float
    n_npus: int
    memory: dict[str, dict[str, float]]
    fits_memory: bool
    memory_capacity_bytes: float
    network_cost_usd: float
    usd_per_hour: float | None
    usd_per_million_tokens: float | None
    usd_per_million_output_tokens: float | None
    notes: tuple[str, ...] = ()
    samples: Latencies | None = field(default=None, compare=False, repr=False)

    @property
    def tokens_per_s(self) -> float:
        return self.input_tokens_per_s + self.output_tokens_per_s

    @property
    def memory_bytes(self) -> float:
        """The budget of the most loaded device of any pool (weights, activations and KV cache)."""
        return max((m["total_bytes"] for m in self.memory.values()), default=0.0)

    @property
    def goodput_per_usd_hour(self) -> float:
        """Goodput (requests/s) per dollar-hour of the deployment (0 without a price)."""
        return self.goodput_requests_per_s / self.usd_per_hour if self.usd_per_hour else 0.0

    def figures(self) -> dict[str, Any]:
        """The result as a flat JSON-ready mapping (what a stored trial keeps), marked ``kind: serving``."""
        d = self.to_dict()
        out: dict[str, Any] = {"kind": "serving"}
        for k, v in d.items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    out[f"{k}.{k2}"] = v2 if not isinstance(v2, dict) else {a: b for a, b in v2.items()}
            else:
                out[k] = v
        return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "samples"}
        d["notes"] = list(self.notes)
        d["tokens_per_s"] = self.tokens_per_s
        d["goodput_per_usd_hour"] = self.goodput_per_usd_hour
        return d
