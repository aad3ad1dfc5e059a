"""The result of one simulated step: a frozen record that reports and agents read, never re-derive."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cosmic.sim.evidence import Evidence
from cosmic.workload.memory import Memory

BREAKDOWN_KEYS = (
    "forward_s",
    "backward_s",
    "recompute_s",
    "comm_tp_s",
    "comm_sp_s",
    "comm_pp_s",
    "comm_dp_s",
    "bubble_s",
    "optimizer_s",
)
"""Components of the step time; they add up to `step_time_s` exactly (with `EP_KEY` for a MoE model)."""
EP_KEY = "comm_ep_s"
"""The exposed token dispatch and combine of a MoE model: in its breakdown only (dense results keep the nine
`BREAKDOWN_KEYS`, which reports and agents read)."""
MOE_BREAKDOWN_KEYS = BREAKDOWN_KEYS[:7] + (EP_KEY,) + BREAKDOWN_KEYS[7:]
"""The breakdown of a MoE model's step, in display order."""

__all__ = ["BREAKDOWN_KEYS", "EP_KEY", "MOE_BREAKDOWN_KEYS", "Evidence", "Memory", "Result"]


@dataclass(frozen=True, slots=True)
class Result:
    """One training step.

    `breakdown` is the critical pipeline stage's timeline: forward/backward/recompute compute, exposed communication
    per parallel dimension (TP, SP, PP, DP; EP: a MoE model's token dispatch and combine), the pipeline bubble
    and the optimizer step; its values add up to `step_time_s`. `comm_by_network_dim_s` splits the exposed
    communication over network dimensions. `evidence`
    is how wrong cosmic was on the published runs of the configuration's regime (`cosmic.sim.evidence`); it is
    not a figure of the step and never changes one.
    """

    step_time_s: float
    tokens_per_s: float
    mfu: float
    hfu: float
    memory: Memory
    memory_capacity_bytes: float
    fits_memory: bool
    network_cost_usd: float
    total_bandwidth_gbps: float
    breakdown: dict[str, float]
    comm_by_network_dim_s: tuple[float, ...]
    n_npus: int
    micro_batches: int
    critical_stage: int
    model_flops_per_step: float
    fidelity: str = "cosmic"
    notes: tuple[str, ...] = field(default=())
    evidence: Evidence | None = None

    @property
    def memory_per_device_gb(self) -> float:
        return self.memory.total_bytes / 1e9

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the documented keys."""
        mem = asdict(self.memory)
        return {
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "memory_per_device_gb": self.memory_per_device_gb,
            "memory_capacity_gb": self.memory_capacity_bytes / 1e9,
            "fits_memory": self.fits_memory,
            "memory_gb": {k.replace("_bytes", "_gb"): v / 1e9 for k, v in mem.items()},
            "network_cost_usd": self.network_cost_usd,
            "total_bandwidth_gbps": self.total_bandwidth_gbps,
            "breakdown": dict(self.breakdown),
            "comm_by_network_dim_s": list(self.comm_by_network_dim_s),
            "n_npus": self.n_npus,
            "micro_batches": self.micro_batches,
            "critical_stage": self.critical_stage,
            "model_flops_per_step": self.model_flops_per_step,
            "fidelity": self.fidelity,
            "notes": list(self.notes),
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
        }
