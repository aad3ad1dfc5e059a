"""Accelerators and the roofline that prices one operation.

Per-operation time is a roofline with two physical, measured ceilings instead of a user-supplied MFU:

* the compute ceiling is ``peak * gemm_efficiency``, where ``gemm_efficiency`` is the maximum achievable matmul
  throughput measured by ml-engineering's mamf-finder divided by the dense peak (e.g. A100 271.2/312 = 0.87);
* the memory ceiling is ``mem_bw * mem_efficiency`` (achievable streaming bandwidth of HBM).

MAMF is a short burst: the chip runs at its boost clock because a few hundred matmuls never reach the power limit.
A training step keeps the tensor cores busy for hours, the board sits at its power limit and the SM clock settles
lower (ml-engineering's MSMF, "maximum sustainable matmul FLOPS": H200 1465 MHz at ~693 W against 1980 MHz for the
burst). `sustained_gemm_efficiency` is that power-saturated rate over the dense peak; :meth:`Accelerator.sustained`
is the accelerator a long training run sees: every tensor-core rate (GEMMs and fused attention, which run on the same
units at the same settled clock) scaled by sustained / burst, memory bandwidth unchanged (HBM has its own clock).
Serving keeps the burst rates (`docs/compute.md`).

Size dependence comes from two physical effects: the roofline itself (a small or skinny GEMM has low arithmetic
intensity and becomes memory bound), and a fixed per-kernel overhead (launch plus tail, ``kernel_overhead_us``) that
dominates tiny operations. (Williams, Waterman, Patterson, "Roofline", CACM 2009.)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cosmic.caches import register
from cosmic.units import GB, TFLOP

Frac = Annotated[float, Field(ge=1e-6, le=1)]
"""An efficiency in (0, 1]; below 1e-6 the step time overflows."""
Rate = Annotated[float, Field(ge=1e-6, le=1e9, allow_inf_nan=False)]
"""A peak rate (TFLOP/s, GB/s) or capacity (GB): from 10^-6 (smaller ones overflow the step time) to 10^9."""

MAMF_K = 5120
"""Default inner dimension of the shape at which `gemm_efficiency` was measured: ml-engineering's mamf-finder best
A100 shape (1024x10240x5120). Accelerators measured at another shape say so in `mamf_k`."""
_TM, _TN, _BK, _STAGES = 128, 256, 32, 3
_TILE_OVERHEAD_BYTES_PER_FLOP_UNIT = (_TM * _TN * 2 + _STAGES * (_TM + _TN) * _BK * 2) / (2 * _TM * _TN)


class Accelerator(BaseModel):
    """One accelerator (GPU, TPU chip or abstract NPU).

    Example:
        >>> a = Accelerator(name="x", peak_tflops={"bf16": 100}, mem_gb=80, mem_bw_gbps=1000)
        >>> a.op_time_s(flops=1e12, bytes_moved=1e6, precision="bf16") > 0.01
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    peak_tflops: Annotated[dict[str, Rate], Field(min_length=1)] = Field(
        description="dense peak TFLOP/s per precision (bf16, fp16, fp8, fp32)"
    )
    mem_gb: Rate = Field(description="HBM capacity, GB (10^9 bytes)")
    mem_bw_gbps: Rate = Field(description="HBM bandwidth, GB/s (10^9 bytes/s)")
    gemm_efficiency: Frac = Field(default=0.8, description="achievable / peak matmul throughput (measured MAMF)")
    fp8_gemm_efficiency: Frac | None = Field(default=None, description="same for fp8 GEMMs; default gemm_efficiency")
    sustained_gemm_efficiency: Frac | None = Field(
        default=None,
        description="power-saturated (long-run) / peak matmul throughput (measured MSMF); default gemm_efficiency "
        "(no throttling measured)",
    )
    fp8_sustained_gemm_efficiency: Frac | None = Field(
        default=None, description="same for fp8 GEMMs; default fp8_gemm_efficiency x sustained/burst of bf16"
    )
    tdp_w: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = Field(
        default=None, description="board power limit, W (informational; power-limited variants cite it)"
    )
    mamf_k: Annotated[float, Field(ge=1, le=1e9, allow_inf_nan=False)] = Field(
        default=MAMF_K, description="inner dimension k of the best shape at which gemm_efficiency was measured"
    )
    fp8_mamf_k: Annotated[float, Field(ge=1, le=1e9, allow_inf_nan=False)] | None = Field(
        default=None, description="same for fp8_gemm_efficiency; default mamf_k"
    )
    mem_efficiency: Frac = Field(default=0.85, description="achievable / peak HBM bandwidth")
    attention_efficiency: Frac = Field(
        default=0.5,
        description="achieved / peak FLOP/s of the best fused (flash) attention kernel, forward and backward",
    )
    attention_efficiency_by_kernel: dict[str, Frac] = Field(
        default_factory=dict,
        description="the same for named kernels (flash1, flash2, flash3), from their papers' measurements",
    )
    kernel_overhead_us: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = Field(
        default=0.0, description="fixed GPU time per kernel (launch + tail), microseconds; the host's time to "
        "launch each kernel is the software stack's (training.execution)"
    )
    sm_count: Annotated[int, Field(gt=0, le=10_000_000)] | None = Field(
        default=None, description="streaming multiprocessors (GPU) for the wave-quantization of GEMM tiles"
    )
    collective_sms: Annotated[int, Field(ge=0, le=10_000_000)] | None = Field(
        default=None,
        description="SMs a running collective occupies (NCCL runs one thread block per channel); compute that "
        "overlaps a collective runs on the others. Needs sm_count",
    )
    fp8_tn_only: bool = Field(
        default=False,
        description="fp8 GEMMs take only K-major (TN) operands (Hopper): every tensor a backward GEMM reads "
        "transposed is also written transposed in fp8 (Transformer Engine's cast-transpose)",
    )
    scale_up_gbps: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = Field(
        default=None, description="per-device scale-up bandwidth (informational)"
    )
    cost_usd: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] | None = Field(
        default=None, description="price per device, for cost objectives"
    )
    usd_per_hour: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = Field(
        default=None, description="rental price per device-hour, USD (serving cost per million tokens)"
    )
    usd_per_hour_source: str | None = Field(default=None, description="where usd_per_hour comes from")
    source: str | None = None

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                tuple(sorted(self.peak_tflops.items())),
                self.mem_gb,
                self.mem_bw_gbps,
                self.gemm_efficiency,
                self.fp8_gemm_efficiency,
                self.sustained_gemm_efficiency,
                self.fp8_sustained_gemm_efficiency,
                self.mamf_k,
                self.fp8_mamf_k,
                self.mem_efficiency,
                self.attention_efficiency,
                tuple(sorted(self.attention_efficiency_by_kernel.items())),
                self.kernel_overhead_us,
                self.sm_count,
                self.collective_sms,
                self.fp8_tn_only,
            )
        )

    def sustained(self) -> Accelerator:
        """This accelerator as a long training run sees it: its power-saturated matmul rates
        (`sustained_gemm_efficiency`) in place of the burst ones, and every fused-attention efficiency scaled by the
        same sustained / burst clock ratio. The accelerator itself when nothing throttles (no sustained figure, or
        one equal to the burst).

        Example:
            >>> a = Accelerator(peak_tflops={"bf16": 100}, mem_gb=80, mem_bw_gbps=1000, gemm_efficiency=0.8,
            ...                 sustained_gemm_efficiency=0.6, attention_efficiency=0.4)
            >>> s = a.sustained()
            >>> s.gemm_efficiency, round(s.attention_efficiency, 6), s.sustained() == s
            (0.6, 0.3, True)
        """
        return _sustained(self)

    def attention_efficiency_for(self, kernel: str) -> float:
        """Efficiency of fused attention kernel `kernel` ('auto' = the best this accelerator has)."""
        if kernel == "auto":
            return self.attention_efficiency
        return self.attention_efficiency_by_kernel.get(kernel, self.attention_efficiency)

    @property
    def collective_compute_share(self) -> float:
        """Fraction of the compute units a running collective takes away from overlapping compute (0 if unknown)."""
        if not self.sm_count or not self.collective_sms:
            return 0.0
        return min(1.0, self.collective_sms / self.sm_count)

    def peak_flop_per_s(self, precision: str) -> float:
        """Dense peak FLOP/s at `precision` (falls back to bf16 then fp16 when the precision is not listed)."""
        for p in (precision, "bf16", "fp16"):
            if p in self.peak_tflops:
                return self.peak_tflops[p] * TFLOP
        return max(self.peak_tflops.values()) * TFLOP

    def achievable_flop_per_s(self, precision: str) -> float:
        eff = self.gemm_efficiency
        if precision == "fp8" and "fp8" in self.peak_tflops and self.fp8_gemm_efficiency is not None:
            eff = self.fp8_gemm_efficiency
        return self.peak_flop_per_s(precision) * eff

    @property
    def mem_bytes(self) -> float:
        return self.mem_gb * GB

    @property
    def achievable_mem_bytes_per_s(self) -> float:
        return self.mem_bw_gbps * GB * self.mem_efficiency

    def gemm_time_s(self, m: float, k: float, n: float, *, precision: str, bytes_per_element: int) -> float:
        """Time of an (m x k) @ (k x n) GEMM.

        On a GPU the output is computed in tiles, one tile per SM at a time; the last wave of tiles leaves SMs
        idle ("wave quantization", NVIDIA Matrix Multiplication Background User's Guide). The library picks the
        tile shape with the best occupancy among 128x256 and 128x128; `gemm_efficiency` (measured on the best
        shape) is scaled by that occupancy.
        """
        return self.grouped_gemm_time_s(1, m, k, n, precision=precision, bytes_per_element=bytes_per_element)

    def grouped_gemm_time_s(self, groups: float, m: float, k: float, n: float, *, precision: str,
                            bytes_per_element: int) -> float:
        """Time of `groups` GEMMs (m x k) @ (k x n) in one grouped kernel (the MoE experts of one rank: CUTLASS
        grouped GEMM as Megatron-Core's ``--moe-grouped-gemm`` and torch ``_grouped_mm`` run it).

        The tiles of all groups share the SMs, so the wave quantisation of `gemm_time_s` is over their total
        (``groups * ceil(m / tm) * ceil(n / tn)`` tiles), with one kernel launch for all; each group reads its
        own weights, so few tokens per expert make the kernel memory bound, as fine-grained experts are in
        practice. One group is exactly `gemm_time_s`.
        """
        flops = 2.0 * groups * m * k * n
        bytes_moved = groups * (m * k + k * n + m * n) * bytes_per_element
        occupancy = 1.0
        if self.sm_count:
            occupancy = self._k_factor(k, precision)
            sms = self.sm_count
            best = 0.0
            for tm, tn in ((128, 256), (256, 128), (128, 128)):
                tiles = groups * math.ceil(m / tm) * math.ceil(n / tn)
                waves = math.ceil(tiles / sms)
                best = max(best, tiles / (waves * sms))
            occupancy *= best
        t_compute = flops / (self.achievable_flop_per_s(precision) * occupancy)
        t_memory = bytes_moved / self.achievable_mem_bytes_per_s
        return max(t_compute, t_memory) + self.kernel_overhead_us * 1e-6

    def _k_factor(self, k: float, precision: str) -> float:
        """Efficiency of a GEMM with inner dimension k relative to the measured best shape (k = `mamf_k`).

        Each output tile runs k/BK main-loop steps plus a fixed prologue (loading the first pipeline stages of
        its A and B tiles) and epilogue (writing the tile). Both move bytes at the SM's share of memory bandwidth
        while a step does 2*tm*tn*BK FLOPs at its share of peak, so the overhead in units of k is
        K0 = (peak / mem_bw) * (tm*tn*out_bytes + stages*(tm+tn)*BK*in_bytes) / (2*tm*tn)
        (128x256 tiles, BK = 32, 3 stages, 2-byte operands): a property of the machine balance, not a fit.
        Efficiency scales as k/(k+K0), normalised to the shape at which `gemm_efficiency` was measured, and never
        above it: that figure is the maximum mamf-finder found over its whole sweep of shapes (longer k included),
        so a longer inner dimension cannot beat it.
        """
        k0 = self.peak_flop_per_s(precision) / (self.mem_bw_gbps * GB) * _TILE_OVERHEAD_BYTES_PER_FLOP_UNIT
        k_best = self.mamf_k
        if precision == "fp8" and "fp8" in self.peak_tflops and self.fp8_mamf_k is not None:
            k_best = self.fp8_mamf_k
        return min(1.0, (k / (k + k0)) / (k_best / (k_best + k0)))

    def op_time_s(self, *, flops: float, bytes_moved: float, precision: str, n_kernels: float = 1) -> float:
        """Roofline time of an operation: max(compute, memory) plus the fixed kernel overhead."""
        t_compute = flops / self.achievable_flop_per_s(precision)
        t_memory = bytes_moved / self.achievable_mem_bytes_per_s
        return max(t_compute, t_memory) + n_kernels * self.kernel_overhead_us * 1e-6



@register
@lru_cache(maxsize=1024)
def _sustained(acc: Accelerator) -> Accelerator:
    """`Accelerator.sustained`, made once per accelerator (so the layer-cost caches that key on it keep hitting)."""
    burst, sus = acc.gemm_efficiency, acc.sustained_gemm_efficiency
    fp8_burst, fp8_sus = acc.fp8_gemm_efficiency, acc.fp8_sustained_gemm_efficiency
    ratio = min(1.0, sus / burst) if sus is not None else 1.0
    if fp8_burst is not None:
        # no fp8 measurement: the bf16 clock ratio (the same tensor cores at the same settled clock)
        fp8_sus = min(fp8_burst, fp8_sus) if fp8_sus is not None else fp8_burst * ratio
    if ratio == 1.0 and fp8_sus == fp8_burst:
        return acc
    return acc.model_copy(update={
        "gemm_efficiency": burst * ratio, "fp8_gemm_efficiency": fp8_sus,
        "attention_efficiency": acc.attention_efficiency * ratio,
        "attention_efficiency_by_kernel": {k: v * ratio for k, v in acc.attention_efficiency_by_kernel.items()},
        "sustained_gemm_efficiency": None, "fp8_sustained_gemm_efficiency": None,
    })
