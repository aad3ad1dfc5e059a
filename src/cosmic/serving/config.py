"""The configuration of one serving simulation: the model, accelerator, network and collective sections a training
config has, and a `serving:` section in place of `parallel:` and `training:`.

Catalog names stand for whole sections as in training configs (``model: llama3-70b``, ``system: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from cosmic.collective.communicator import layout_shapes
from cosmic.errors import ConfigError, CosmicError, KeyedValueError
from cosmic.sim.config import StackSections, format_validation_error
from cosmic.workload.model import ModelSpec
from cosmic.workload.serving import Layout, ServingSpec
from cosmic.yamlio import read_yaml

SERVE_ORDER = ("tp", "pp", "dp", "sp")
"""Rank order of a serving deployment: a replica's TP group innermost, its pipeline stages next, replicas
outermost (each replica takes consecutive devices)."""


class ServingConfig(StackSections):
    """Everything `cosmic serve` needs. A replica's TP x PP devices come from the network; the replicas (or both
    pools) together take every device of it."""

    serving: ServingSpec

    @model_validator(mode="after")
    def _check(self) -> ServingConfig:
        for key, lay in self.serving.layouts.items():
            where = f"serving.{key}" if key == "replicas" else f"serving.disaggregation.{key}"
            check_layout(self.model, lay, tuple(d.npus for d in self.network.dims), where)
        n = self.network.n_npus
        if self.serving.n_devices != n:
            parts = " + ".join(f"{k} {lay.count}x(tp {lay.tp} x pp {lay.pp}{f', ep {lay.ep}' if lay.ep > 1 else ''})"
                               for k, lay in self.serving.layouts.items())
            raise KeyedValueError("serving", f"{parts} = {self.serving.n_devices} devices but the network has {n}; "
                                  "they must be equal")
        return self

    @property
    def n_npus(self) -> int:
        return self.network.n_npus

    def to_yaml_dict(self) -> dict[str, Any]:
        """A plain dict that `cosmic serve` accepts (round-trips through YAML)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"system"})


def check_layout(model: ModelSpec, lay: Layout, dim_sizes: tuple[int, ...], key: str) -> None:
    """TP divides the heads and the MLP, PP the layers at most, EP only for MoE, and the replica's groups align
    with the network dimensions (KeyedValueError naming `key`)."""
    if model.heads % lay.tp:
        raise KeyedValueError(f"{key}.tp", f"tp={lay.tp} must divide the model's {model.heads} attention heads")
    kv = model.n_kv_heads
    if kv % lay.tp and lay.tp % kv:
        raise KeyedValueError(f"{key}.tp", f"tp={lay.tp} and the model's {kv} kv_heads must divide one another")
    if model.ffn % lay.tp:
        raise KeyedValueError(f"{key}.tp", f"tp={lay.tp} must divide the model's ffn_hidden {model.ffn}")
    if lay.pp > model.layers:
        raise KeyedValueError(f"{key}.pp", f"pp={lay.pp} exceeds the model's {model.layers} layers")
    if model.mla is not None:
        raise KeyedValueError(key, f"{model.name} uses Multi-head Latent Attention, whose compressed KV cache serving "
                              "does not price yet (serve standard or GQA attention models)")
    if lay.ep != 1 and model.moe is None:
        raise KeyedValueError(f"{key}.ep", f"ep={lay.ep} needs a mixture-of-experts model; {model.name} is dense "
                              "(ep: 1)")
    if lay.tp % lay.ep or (model.moe is not None and model.moe.experts % lay.ep):
        experts = model.moe.experts if model.moe is not None else 1
        raise KeyedValueError(f"{key}.ep", f"ep={lay.ep} must divide tp={lay.tp} (EP is folded onto the TP group) "
                              f"and the model's {experts} experts")
    if model.moe is not None and model.moe.expert_ffn_hidden % (lay.tp // lay.ep):
        raise KeyedValueError(f"{key}.ep", f"tp/ep={lay.tp // lay.ep} must divide the expert width "
                              f"{model.moe.expert_ffn_hidden}")
    n = 1
    for d in dim_sizes:
        n *= d
    if n % lay.devices:
        raise KeyedValueError(key, f"a replica's tp*pp = {lay.devices} devices must divide the network's {n}")
    try:
        layout_shapes(replica_degrees(lay, n), SERVE_ORDER, dim_sizes)
    except CosmicError as exc:
        raise KeyedValueError(key, str(exc)) from None


def replica_degrees(lay: Layout, n_npus: int) -> tuple[int, int, int, int]:
    """``(tp, sp, dp, pp)`` of replicas of `lay` tiling `n_npus` devices (dp = how many such replicas fit)."""
    return lay.tp, 1, n_npus // lay.devices, lay.pp


def serving_config_from_dict(data: Any, *, file: str | None = None) -> ServingConfig:
    """Validate a mapping into a :class:`ServingConfig` (errors become one-line ConfigErrors)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a configuration must be a mapping, got {type(data).__name__}", file=file)
    from cosmic.collective.astra_io import base_dir

    if file is not None:
        data = _trace_from(data, Path(file).parent)
    try:
        with base_dir(Path(file).parent if file else None):
            cfg = ServingConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, file) from None
    except RecursionError:
        raise ConfigError("structure nested too deeply", file=file) from None
    except CosmicError as exc:
        if isinstance(exc, ConfigError) and exc.file is None:
            raise ConfigError(exc.detail, file=file, key=exc.key) from None
        raise
    return cfg


def load_serving_config(path: str | Path) -> ServingConfig:
    """Load and validate a `cosmic serve` YAML file (a trace file is found relative to it)."""
    return serving_config_from_dict(read_yaml(path), file=str(path))


def _trace_from(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`data` with a relative ``serving.workload.trace`` path taken from `folder` (the config file's)."""
    w = (data.get("serving") or {}).get("workload") if isinstance(data.get("serving"), dict) else None
    if not isinstance(w, dict) or not isinstance(w.get("trace"), str) or Path(w["trace"]).is_absolute():
        return data
    serving = dict(data["serving"])
    serving["workload"] = {**w, "trace": str(folder / w["trace"])}
    return {**data, "serving": serving}
