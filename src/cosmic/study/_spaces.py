"""The search spaces of the case studies: COSMIC's presets under a setting, an objective and a batch size.

Settings:

* ``full-depth`` (default): the presets as they are: every layer of the model, 1F1B, micro-batch 1.
* ``cosmic``: COSMIC's simplification: 4 transformer layers, GPipe, 2 micro-batches per pipeline. "2 micro-batches"
  must hold whatever DP the agent picks, so the micro-batch size is derived at decode time:
  ``micro_batch = global_batch / (2 * dp)`` (:class:`TwoMicroBatchSpace`). The compiled encoding is the same as the
  full-depth one (the space is compiled with micro-batch 1, so DP may range as widely; the derived micro-batch
  always satisfies "dp * micro_batch divides the batch" for the power-of-two DPs up to batch / 2).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import numpy as np

from cosmic.errors import ConfigError, UnknownNameError
from cosmic.psa import Space
from cosmic.psa.decode import cached
from cosmic.psa.presets import list_presets, preset_data
from cosmic.sim.columns import StepColumns
from cosmic.sim.config import SystemConfig

SETTINGS = ("full-depth", "cosmic")
MODES = ("workload", "collective", "network", "full")
SINGLE_MODES = MODES[:3]
SYSTEMS = ("s1", "s2", "s3")
MOE_SYSTEMS: dict[str, str] = {"h100x256": "256xh100"}
"""The dense-vs-MoE study's systems: name -> the cluster suffix of its presets in the ``moe`` family
(``<model>-256xh100-<mode>``, ``catalog/presets/moe.yaml``: 32 DGX H100 nodes, NVLink 4 and 400 Gb/s
InfiniBand per GPU)."""
PAPER_MODELS = ("gpt3-13b", "gpt3-175b", "vit-base", "vit-large")
OBJECTIVES: dict[str, str] = {
    "runtime": "step_time",
    "runtime*cost": "step_time*network_cost",
    "runtime*bw": "step_time*total_bandwidth",
}
"""CLI objective name -> PSA objective (COSMIC's three rewards; see ``cosmic.psa.objectives``)."""
SECOND_AXIS: dict[str, tuple[str, str] | None] = {
    "runtime": None,
    "runtime*cost": ("network_cost_usd", "network cost, USD"),
    "runtime*bw": ("total_bandwidth_gbps", "total per-NPU bandwidth, GB/s"),
}
"""For product objectives, the second quantity of the product: the report plots step time against it."""
COSMIC_LAYERS = 4
COSMIC_MICRO_BATCHES = 2

# models outside COSMIC's presets borrow the GPT-3 175B preset's knobs and baseline layout (scaling study)
_PRESET_MODEL = {"llama-7b": "gpt3-175b"}
_MODEL_TRAINING = {"llama-7b": {"seq_len": 2048}}


def objective_name(objective: str) -> str:
    """The PSA objective for a CLI objective name (``runtime``, ``runtime*cost``, ``runtime*bw``)."""
    if objective in OBJECTIVES:
        return OBJECTIVES[objective]
    if objective in OBJECTIVES.values():
        return objective
    import difflib

    hint = difflib.get_close_matches(objective, list(OBJECTIVES), n=1)
    raise ConfigError(f"unknown objective {objective!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                      + f"; known: {', '.join(OBJECTIVES)}")


def study_models(system: str) -> list[str]:
    """The models a case study can search on `system`: those with COSMIC presets ``cosmic-<system>-<model>-<mode>``
    for all four modes, plus the models that borrow another model's presets (LLaMA-7B)."""
    names = set(list_presets())
    if system in MOE_SYSTEMS:
        suffix = f"-{MOE_SYSTEMS[system]}-"
        have = {n.split(suffix)[0] for n in names if suffix in n}
        return sorted(m for m in have if all(f"{m}{suffix}{mode}" in names for mode in MODES))
    prefix = f"cosmic-{system}-"
    have = {n[len(prefix):].rsplit("-", 1)[0] for n in names if n.startswith(prefix)}
    ok = {m for m in have if all(f"{prefix}{m}-{mode}" in names for mode in MODES)}
    ok |= {m for m, src in _PRESET_MODEL.items() if src in ok}
    return sorted(ok)


def check_names(*, systems: Any, models: Any, modes: Any = MODES, known: tuple[str, ...] = SYSTEMS) -> None:
    """Check the systems, models and modes a study was asked for, before any space is compiled or worker started.

    Raises:
        UnknownNameError: naming what was typed, the nearest valid name and every valid one (``--models`` etc.).
    """
    for s in systems:
        if s not in known:
            raise UnknownNameError("system", str(s), known, key="--systems")
    for m in modes:
        if m not in MODES:
            raise UnknownNameError("mode", str(m), MODES)
    per_system = {s: study_models(s) for s in systems}
    every = sorted(set().union(*per_system.values()))
    for m in models:
        if m not in every:
            raise UnknownNameError("model", str(m), every, key="--models")
        lacking = [s for s, known in per_system.items() if m not in known]
        if lacking:
            raise ConfigError(f"model {m!r} has no COSMIC presets on {', '.join(lacking)}", key="--models")


def check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
    return setting


class TwoMicroBatchSpace(Space):
    """A preset space whose decode sets ``micro_batch = global_batch / (n_micro * dp)`` (COSMIC's setting).

    `encode` accepts such configurations (it maps the micro-batch back to the compiled base's before encoding).
    """

    n_micro = COSMIC_MICRO_BATCHES

    def _mb(self, dp: int) -> int:
        gb = self.base.training.global_batch
        return max(1, gb // (self.n_micro * dp))

    def decode(self, point: Any) -> SystemConfig:
        cfg = super().decode(point)
        if getattr(self, "_encoding", False):
            return cfg
        mb = self._mb(cfg.parallel.dp)
        return cfg.model_copy(update={"training": self._training_with(cfg.training, mb)})

    def _training_with(self, training: Any, mb: int) -> Any:
        return cached(self, ("two-mb", id(training), mb), lambda: training.model_copy(update={"micro_batch": mb}))

    def decode_columns(self, points: Any) -> tuple[StepColumns, np.ndarray]:
        """As `Space.decode_columns`, with each row's training section carrying the micro-batch of its DP degree
        (one training object per distinct pair of compiled training and micro-batch)."""
        cols, ok = super().decode_columns(points)
        mb = np.maximum(1, self.base.training.global_batch // (self.n_micro * cols.dp))
        pairs, index = np.unique(np.stack([cols.training, mb], axis=1), axis=0, return_inverse=True)
        trainings = tuple(self._training_with(cols.trainings[t], int(m)) for t, m in pairs.tolist())
        return dataclasses.replace(cols, trainings=trainings, training=index.reshape(-1)), ok

    def encode(self, config: SystemConfig) -> np.ndarray:
        if config.training.micro_batch != self._mb(config.parallel.dp):
            raise ConfigError(f"micro_batch {config.training.micro_batch} is not global_batch / "
                              f"({self.n_micro} * dp)", key="micro_batch")
        tr = config.training.model_copy(update={"micro_batch": self.base.training.micro_batch})
        self._encoding = True  # the compiled space's own decode (micro-batch of the base) checks the round trip
        try:
            return super().encode(config.model_copy(update={"training": tr}))
        finally:
            self._encoding = False

    def __reduce__(self) -> tuple[Any, ...]:
        data, file, name, _ = self._init_args
        return (_two_mb, (data, file, name))


def _two_mb(data: Any, file: str | None, name: str | None) -> TwoMicroBatchSpace:
    return TwoMicroBatchSpace(data, file=file, name=name)


def psa_mapping(system: str, model: str, mode: str, *, setting: str = "full-depth", objective: str = "runtime",
                global_batch: int | None = None) -> tuple[str, dict[str, Any]]:
    """(space name, PSA mapping) of COSMIC's preset for (system, model, mode) under the setting and objective."""
    check_setting(setting)
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    preset_model = _PRESET_MODEL.get(model, model)
    if system in MOE_SYSTEMS:
        src, data = preset_data(f"{model}-{MOE_SYSTEMS[system]}-{mode}")
    else:
        src, data = preset_data(f"cosmic-{system}-{preset_model}-{mode}")
    base = data["base"]
    name = f"{model}-{MOE_SYSTEMS[system]}-{mode}" if system in MOE_SYSTEMS else f"cosmic-{system}-{model}-{mode}"
    if preset_model != model:
        base["model"] = model
        base.setdefault("training", {}).update(_MODEL_TRAINING.get(model, {}))
    if global_batch is not None:
        base.setdefault("training", {})["global_batch"] = int(global_batch)
        name += f"-b{global_batch}"
    if setting == "cosmic":
        base["model"] = {"base": base["model"], "layers": COSMIC_LAYERS}
        base.setdefault("training", {})["schedule"] = "gpipe"
        name += "-cosmic"
    obj = objective_name(objective)
    data["objectives"] = [obj]
    if obj != "step_time":
        name += "-" + objective.replace("*", "x")
    data["name"] = name
    return src, data


@cache
def study_space(system: str, model: str, mode: str, *, setting: str = "full-depth", objective: str = "runtime",
                global_batch: int | None = None) -> Space:
    """The compiled space of one (system, model, mode) under a setting, objective and batch (cached per process)."""
    src, data = psa_mapping(system, model, mode, setting=setting, objective=objective, global_batch=global_batch)
    cls = TwoMicroBatchSpace if setting == "cosmic" else Space
    return cls(data, file=f"{src}#{data['name']}", name=data["name"])


def baseline_config(space: Space) -> SystemConfig:
    """The space's baseline configuration as the setting runs it (COSMIC setting: the derived micro-batch)."""
    base = space.base
    if isinstance(space, TwoMicroBatchSpace):
        mb = space._mb(base.parallel.dp)
        return base.model_copy(update={"training": base.training.model_copy(update={"micro_batch": mb})})
    return base


__all__ = [
    "MODES",
    "MOE_SYSTEMS",
    "OBJECTIVES",
    "PAPER_MODELS",
    "SETTINGS",
    "SINGLE_MODES",
    "SYSTEMS",
    "TwoMicroBatchSpace",
    "baseline_config",
    "check_names",
    "objective_name",
    "psa_mapping",
    "study_models",
    "study_space",
]
