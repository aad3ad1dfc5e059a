"""The validated regime a configuration falls in: software stack, accelerator generation, precision, sharding and
parallel features.

One classifier serves the simulator (every `Result` carries the evidence of its regime) and the validator (every
published run is counted in the regime of the configuration `cosmic validate` builds from its row), so a
prediction and the runs that vouch for it are described by the same rule. `docs/validation.md` (Evidence) gives
the rule and the levels of `LEVELS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cosmic.caches import BoundedMemo, register
from cosmic.workload.schemas import Framework, Precision, Recompute, Schedule

GENERATION_RULES: tuple[tuple[str, str], ...] = (
    # (regex on the accelerator's name, generation); first match wins. A name no rule matches (a COSMIC NPU, a
    # user's `custom` part) has no generation: no published run can vouch for it.
    (r"v100", "volta"),
    (r"a100|a800", "ampere"),
    (r"h100|h200|h800|\bh20\b", "hopper"),
    (r"\bg?b[23]00", "blackwell"),
    (r"mi300|mi325", "cdna3"),
    (r"mi250", "cdna2"),
    (r"tpu-?v3", "tpu-v3"),
    (r"tpu-?v4", "tpu-v4"),
    (r"tpu-?v5e|tpu-?v5-?lite", "tpu-v5e"),
    (r"tpu-?v5p", "tpu-v5p"),
    (r"tpu-?v6e", "tpu-v6e"),
)
"""Accelerator generation by catalog name: parts of one generation share tensor cores, memory system and the
kernels the stacks ship for them (A100 40/80 GB; H100/H200/H800; B200/GB200/B300/GB300)."""

SHARDING_NAMES = ("none", "zero-1", "zero-2", "zero-3/fsdp")
"""Sharding kind by ZeRO stage (`parallel.zero`): stage 3 is DeepSpeed ZeRO-3, PyTorch FSDP FULL_SHARD, MaxText's
fsdp axis and Megatron-FSDP alike; the framework tells which."""


def generation(accelerator_name: str) -> str | None:
    """The accelerator generation of a catalog accelerator name (None: a part no rule knows).

    Example:
        >>> generation("a100-40gb"), generation("gb300"), generation("tpu-v5e"), generation("cosmic-s1-npu")
        ('ampere', 'blackwell', 'tpu-v5e', None)
    """
    t = (accelerator_name or "").lower()
    for pattern, gen in GENERATION_RULES:
        if re.search(pattern, t):
            return gen
    return None


@dataclass(frozen=True, slots=True)
class Regime:
    """What a configuration is, as far as the published runs tell error apart.

    ``precision`` is ``16-bit`` (bf16 and fp16 run at the same tensor-core peak on every catalog accelerator) or
    ``fp8``. ``features`` are the parallel features in use, in a fixed order: TP, PP, VPP (interleaved stages),
    SP (Megatron sequence parallelism), CP (context parallelism: cosmic's ``parallel.sp``), recompute.
    """

    framework: str
    generation: str | None
    precision: str
    sharding: str
    features: tuple[str, ...]

    @property
    def context_parallel(self) -> bool:
        return "CP" in self.features

    @property
    def label(self) -> str:
        """One line, e.g. ``megatron-core · hopper · fp8 · zero-1 · TP+PP+SP``."""
        parts = [self.framework, self.generation or "unknown accelerator", self.precision, self.sharding]
        return " · ".join([*parts, "+".join(self.features) or "DP only"])


_REGIMES = register(BoundedMemo(1 << 12))


def classify(accelerator: Any, training: Any, zero: int, tp: int, pp: int, cp: int, sequence_parallel: bool) -> Regime:
    """The regime of one configuration, from its accelerator, training section and parallel layout.

    `cp` is cosmic's ``parallel.sp`` (the sequence split over ranks that exchange keys and values: context
    parallelism), `sequence_parallel` Megatron's sequence parallelism inside the TP group.

    Example:
        >>> from cosmic.compute.accelerator import Accelerator
        >>> from cosmic.workload.schemas import TrainingConfig
        >>> a = Accelerator(name="h100-sxm", peak_tflops={"bf16": 989}, mem_gb=80, mem_bw_gbps=3350)
        >>> t = TrainingConfig(global_batch=8, precision="fp8", framework="nemo", recompute="selective")
        >>> classify(a, t, 1, 4, 2, 1, True).label
        'megatron-core · hopper · fp8 · zero-1 · TP+PP+SP+recompute selective'
    """
    key = (accelerator.name, id(training), int(zero), tp > 1, pp > 1, cp > 1, bool(sequence_parallel))
    hit = _REGIMES.get(key)
    if hit is not None:
        return hit[1]
    features = []
    if tp > 1:
        features.append("TP")
    if pp > 1:
        features.append("PP")
        if training.schedule is Schedule.INTERLEAVED and training.virtual_stages > 1:
            features.append("VPP")
    if sequence_parallel and tp > 1:
        features.append("SP")
    if cp > 1:
        features.append("CP")
    if training.recompute is not Recompute.NONE:
        features.append(f"recompute {training.recompute.value}")
    regime = Regime(
        framework=Framework(training.framework).value,
        generation=generation(accelerator.name),
        precision="fp8" if training.precision is Precision.FP8 else "16-bit",
        sharding=SHARDING_NAMES[int(zero)],
        features=tuple(features),
    )
    _REGIMES.put(key, (training, regime))  # the training object is held so that its id is not reused
    return regime


def classify_config(config: Any) -> Regime:
    """The regime of a `SystemConfig`."""
    p = config.parallel
    return classify(config.accelerator, config.training, p.zero, p.tp, p.pp, p.sp, p.sequence_parallel)


LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("framework · generation · precision · sharding · context parallelism",
     ("framework", "generation", "precision", "sharding", "context")),
    ("framework · generation · precision · sharding", ("framework", "generation", "precision", "sharding")),
    ("framework · generation", ("framework", "generation")),
    ("generation · precision · sharding", ("generation", "precision", "sharding")),
    ("generation", ("generation",)),
)
"""The regimes evidence is counted in, finest first. Context parallelism is the one parallel feature whose
published runs err apart from the rest of their stack (NeMo long-sequence CP 4-32: -37...-40% against -7...-22%
without it); TP, PP, interleaving and recompute do not (Megatron-LM on A100: TP only -10.9%, TP+PP -9.9% median).
A regime without a framework (``unspecified``) or without a known generation has no key at the levels that need it."""


def level_key(regime: Regime, level: int) -> str | None:
    """The regime's key at `LEVELS[level]` (None when the regime lacks a part that level needs).

    Example:
        >>> r = Regime("pytorch-fsdp", "ampere", "16-bit", "zero-3/fsdp", ("recompute full",))
        >>> level_key(r, 0), level_key(r, 3)
        ('pytorch-fsdp · ampere · 16-bit · zero-3/fsdp · no CP', 'ampere · 16-bit · zero-3/fsdp')
        >>> level_key(Regime("unspecified", "ampere", "16-bit", "none", ()), 1) is None
        True
    """
    parts = []
    for name in LEVELS[level][1]:
        if name == "context":
            parts.append("CP" if regime.context_parallel else "no CP")
            continue
        value = getattr(regime, name)
        if value is None or (name == "framework" and value == Framework.UNSPECIFIED.value):
            return None
        parts.append(value)
    return " · ".join(parts)


__all__ = ["GENERATION_RULES", "LEVELS", "SHARDING_NAMES", "Regime", "classify", "classify_config", "generation",
           "level_key"]
