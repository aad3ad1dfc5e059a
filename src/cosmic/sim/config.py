"""The configuration of one simulated training step: model, accelerator, network, collectives, parallelism, training.

Configs are YAML validated by pydantic; `cosmic schema` prints the JSON Schema. Names from the catalogs can stand for
whole sections (``model: gpt3-175b``, ``accelerator: a100-80gb``, ``system: cosmic-s1``), and a mapping with
``base:`` takes a catalog entry and overrides some of its keys (``model: {base: gpt3-175b, layers: 4}``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cosmic import catalog
from cosmic.caches import BoundedMemo, register
from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.communicator import expert_layout_shapes, hybrid_shard_shapes, layout_shapes
from cosmic.collective.config import (
    CollectiveConfig,
    Fidelity,
    Scheduling,
    default_algorithm,
)
from cosmic.compute.accelerator import Accelerator
from cosmic.errors import ConfigError, CosmicError, KeyedValueError, UnknownNameError, close_match
from cosmic.network.topology import Network
from cosmic.workload.model import ModelSpec
from cosmic.workload.parallel import layout_order
from cosmic.workload.pipeline import stage_layers
from cosmic.workload.schemas import (
    ParallelConfig,
    Precision,
    Recompute,
    Schedule,
    TrainingConfig,
    rank_order_names,
)
from cosmic.yamlio import read_yaml

MAX_NAME_CHARS = 200
"""Longest catalog name looked up (a longer one is rejected before searching for a close match)."""


def _catalog_name(value: Any, key: str) -> str:
    """A catalog name as written (numbers are spelled as text), or a KeyedValueError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise KeyedValueError(key, f"must be a catalog name, got {type(value).__name__}")
    too_long = isinstance(value, str) and len(value) > MAX_NAME_CHARS
    if (isinstance(value, int) and value.bit_length() > 640) or too_long:
        raise KeyedValueError(key, f"is not a catalog name (longer than {MAX_NAME_CHARS} characters)")
    return str(value)


def _lookup(getter: Any, value: Any, key: str) -> dict[str, Any]:
    """`getter(name)` with the key path added to an unknown-name error."""
    name = _catalog_name(value, key)
    try:
        return dict(getter(name))
    except UnknownNameError as exc:
        raise ConfigError(exc.detail, key=key) from None


def _from_catalog(value: Any, getter: Any, key: str) -> Any:
    if isinstance(value, str):
        return _lookup(getter, value, key)
    if isinstance(value, dict) and "base" in value:
        merged = _lookup(getter, value["base"], f"{key}.base")
        merged.update({k: v for k, v in value.items() if k != "base"})
        return merged
    return value


def expand_sections(data: Any) -> Any:
    """The catalog names and ASTRA-sim files of a config mapping expanded into sections (`system`, `model`,
    `accelerator`, `network`, `collective`); shared by training and serving configurations."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    # ASTRA-sim files stand for the network and collective sections (paths relative to the config's folder);
    # keys next to `astra_sim:` in the collective section override the system file
    from cosmic.collective import astra_io

    if "network" in data:
        data["network"] = astra_io.expand_network(data["network"])
    if "collective" in data:
        sizes = astra_io.dim_sizes_of(data.get("network"))
        if sizes is None and data.get("system") is not None:
            sysd = _lookup(catalog.get_system, data["system"], "system")
            sizes = astra_io.dim_sizes_of(sysd.get("network"))
        data["collective"] = astra_io.expand_collective(data["collective"], sizes)
    if data.get("system") is not None:
        sysd = _lookup(catalog.get_system, data["system"], "system")
        for key in ("accelerator", "network"):
            data.setdefault(key, sysd.get(key))
        coll = dict(sysd.get("collective") or {})
        coll.update(data.get("collective") or {})
        data["collective"] = coll
    if "model" in data:
        data["model"] = _from_catalog(data["model"], catalog.get_model, "model")
    if "accelerator" in data:
        data["accelerator"] = _from_catalog(data["accelerator"], catalog.get_accelerator, "accelerator")
    return data


class StackSections(BaseModel):
    """The sections a training and a serving configuration share: the model and the three hardware stacks, each
    given inline or by catalog name (``system:`` fills accelerator, network and collective)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str | None = None
    system: str | None = Field(default=None, description="catalog system filling accelerator/network/collective")
    model: ModelSpec
    accelerator: Accelerator
    network: Network
    collective: CollectiveConfig = CollectiveConfig()

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any) -> Any:
        return expand_sections(data)


class SystemConfig(StackSections):
    """Everything `cosmic simulate` needs. See `cosmic schema` for every key."""

    parallel: ParallelConfig = ParallelConfig()
    training: TrainingConfig

    @model_validator(mode="after")
    def _cross_check(self) -> SystemConfig:
        check_config(self)
        return self

    @property
    def seq_len(self) -> int:
        return self.training.seq_len or self.model.seq_len

    @property
    def n_npus(self) -> int:
        return self.network.n_npus

    @property
    def micro_batches(self) -> int:
        """Micro-batches per pipeline per step."""
        return self.training.global_batch // (self.parallel.dp * self.training.micro_batch)

    def to_yaml_dict(self) -> dict[str, Any]:
        """A plain dict that `cosmic simulate` accepts (round-trips through YAML)."""
        d = self.model_dump(mode="json", exclude_none=True, exclude={"system"})
        return d


_COLLECTIVE_FIELDS = tuple(k.value for k in Collective)
_INTERLEAVED, _ASTRA_SIM = Schedule.INTERLEAVED, Fidelity.ASTRA_SIM


_LAYOUTS_CHECKED = register(BoundedMemo(1 << 16))


def check_config(c: SystemConfig) -> None:
    """Cross-field checks shared by validation and the simulator (raises KeyedValueError).

    The layout checks (degrees against the network, the model and the collectives) depend only on the parallel,
    model, network and collective sub-objects; a combination that passed is remembered by the identity of those
    objects (held alive by the memo, so an id cannot be reused by another object while remembered)."""
    check_layout(c)
    par, tr, m = c.parallel, c.training, c.model
    seq = tr.seq_len or m.seq_len
    if seq % par.sp:
        raise KeyedValueError("parallel.sp", f"sp={par.sp} must divide the sequence length {seq}")
    if par.cp_algorithm == "a2a" and par.sp > 1 and m.heads % (par.tp * par.sp):
        raise KeyedValueError("parallel.cp_algorithm", f"a2a (Ulysses) splits the {m.heads} attention heads over "
                              f"tp*sp = {par.tp}*{par.sp}: choose degrees that divide them, or p2p / allgather")
    if tr.global_batch % (par.dp * tr.micro_batch):
        raise KeyedValueError(
            "training.global_batch",
            f"global_batch {tr.global_batch} must be a multiple of dp*micro_batch = {par.dp}*{tr.micro_batch}",
        )
    fewest = _check_stages(c)
    if tr.schedule is _INTERLEAVED:
        v = tr.virtual_stages
        if fewest < v:
            raise KeyedValueError(
                "training.virtual_stages",
                f"interleaved schedule needs every stage to hold at least virtual_stages = {v} layers (one per "
                f"model chunk); the {m.layers} layers over pp={par.pp} leave {fewest} on a stage",
            )
        mbs = tr.global_batch // (par.dp * tr.micro_batch)
        if par.pp > 1 and mbs % par.pp:
            raise KeyedValueError(
                "training.global_batch",
                f"interleaved schedule needs the {mbs} micro-batches per pipeline to be a multiple of pp={par.pp}",
            )
    elif tr.virtual_stages != 1:
        raise KeyedValueError("training.virtual_stages", "virtual_stages > 1 needs schedule: interleaved")


def _check_stages(c: SystemConfig) -> int:
    """The first/last stage sizes against the layers and stages; returns the fewest layers a stage holds."""
    par, tr, m = c.parallel, c.training, c.model
    first, last = tr.first_stage_layers or 0, tr.last_stage_layers or 0
    if (first or last) and par.pp == 1:
        raise KeyedValueError("training.first_stage_layers" if first else "training.last_stage_layers",
                              "first/last pipeline stage layers need pp > 1")
    layers = stage_layers(m.layers, par.pp, first, last)
    if (first or last) and (min(layers) < 1 or sum(layers) != m.layers):
        raise KeyedValueError(
            "training.first_stage_layers" if first else "training.last_stage_layers",
            f"first_stage_layers={first or 'balanced'}, last_stage_layers={last or 'balanced'} do not split "
            f"{m.layers} layers over pp={par.pp} stages with at least one layer each",
        )
    return min(layers)


def check_layout(c: SystemConfig) -> None:
    """The layout checks of `check_config` (no training knob), remembered for the sub-objects that passed."""
    par, m, net, coll = c.parallel, c.model, c.network, c.collective
    key = (id(par), id(m), id(net), id(coll))
    if key not in _LAYOUTS_CHECKED:
        _check_layout(c)
        _LAYOUTS_CHECKED.put(key, (par, m, net, coll))


def _check_layout(c: SystemConfig) -> None:
    """The checks of `check_config` that involve no training knob."""
    par, m = c.parallel, c.model
    tp, sp, dp, pp = par.tp, par.sp, par.dp, par.pp
    dim_sizes = tuple([d.npus for d in c.network.dims])
    n = math.prod(dim_sizes)
    if dp * tp * pp * sp != n:
        raise KeyedValueError(
            "parallel",
            f"dp*tp*pp*sp = {dp}*{tp}*{pp}*{sp} = {par.n_npus} but the network has {n} NPUs "
            f"(product of network.dims[*].npus); they must be equal",
        )
    if m.heads % tp:
        raise KeyedValueError("parallel.tp", f"tp={tp} must divide the model's {m.heads} attention heads")
    kv = m.n_kv_heads
    if kv % tp and tp % kv:
        raise KeyedValueError("parallel.tp", f"tp={tp} and the model's {kv} kv_heads must divide one another")
    if m.ffn % tp:
        raise KeyedValueError("parallel.tp", f"tp={tp} must divide the model's ffn_hidden {m.ffn}")
    if pp > m.layers:
        raise KeyedValueError("parallel.pp", f"pp={pp} exceeds the model's {m.layers} layers")
    n_dims = len(dim_sizes)
    coll = c.collective
    for name in _COLLECTIVE_FIELDS:
        spec = getattr(coll, name)
        if type(spec) is list and len(spec) != n_dims:
            raise KeyedValueError(
                f"collective.{name}", f"has {len(spec)} entries but the network has {n_dims} dimensions"
            )
    try:
        # the shapes the communicator prices with (a group of degree 1 fits anywhere: the order that moves them to
        # the end fits exactly when the configured one does)
        layout_shapes((tp, sp, dp, pp), layout_order(tp, sp, dp, pp, par.rank_order), dim_sizes)
    except CosmicError as exc:
        raise KeyedValueError("parallel.rank_order", str(exc)) from None
    if par.shard_group is not None:
        _check_shard_group(c, dim_sizes)
    if m.moe is not None or par.ep > 1:
        _check_moe(c, dim_sizes)
    if coll.fidelity is _ASTRA_SIM:
        _check_astra(c)


def _check_shard_group(c: SystemConfig, dim_sizes: tuple[int, ...]) -> None:
    """HSDP: the shard group divides the DP x SP group, shards something (ZeRO >= 1) and fits the network."""
    par = c.parallel
    group, shard = par.dp * par.sp, par.shard_group
    if shard is None:
        return
    if group % shard:
        raise KeyedValueError("parallel.shard_group", f"shard_group={shard} must divide dp*sp = {group}")
    if par.zero == 0 and shard != group:
        raise KeyedValueError("parallel.shard_group", f"shard_group={shard} shards nothing with zero 0 "
                              "(set zero 1-3, or leave shard_group out)")
    if c.model.moe is not None and shard != group:
        raise KeyedValueError("parallel.shard_group", "hybrid sharding of a MoE model is not modelled (leave "
                              "shard_group out)")
    order = layout_order(par.tp, par.sp, par.dp, par.pp, par.rank_order)
    try:
        hybrid_shard_shapes(layout_shapes((par.tp, par.sp, par.dp, par.pp), order, dim_sizes), shard)
    except CosmicError as exc:
        raise KeyedValueError("parallel.shard_group", str(exc)) from None


def _check_moe(c: SystemConfig, dim_sizes: tuple[int, ...]) -> None:
    """Expert parallelism folded onto the TP x SP x DP ranks of a stage (Megatron-Core MoE parallel folding)."""
    par, moe = c.parallel, c.model.moe
    if moe is None:
        raise KeyedValueError("parallel.ep", f"ep={par.ep} needs a model with MoE layers (model.moe)")
    ep, etp = par.ep, par.expert_tp
    if moe.experts % ep:
        raise KeyedValueError("parallel.ep", f"ep={ep} must divide the model's {moe.experts} experts")
    if moe.expert_ffn_hidden % etp:
        raise KeyedValueError("parallel.etp", f"etp={etp} must divide the expert width {moe.expert_ffn_hidden}")
    if moe.experts == 1 and etp != par.tp:
        raise KeyedValueError("parallel.etp", f"one expert is a dense MLP: etp must be tp ({par.tp}), got {etp}")
    block = par.tp * par.sp * par.dp
    if block % (ep * etp):
        raise KeyedValueError("parallel.ep", f"ep*etp = {ep}*{etp} must divide tp*sp*dp = {block} (EP x ETP x "
                              "expert DP is folded onto the TP x SP x DP ranks of a pipeline stage)")
    if par.tp > 1 and not par.sequence_parallel:
        raise KeyedValueError("parallel.sequence_parallel", "MoE with tp > 1 needs sequence_parallel: true "
                              "(Megatron-Core requires it; the router sees the 1/tp sequence shard)")
    order = layout_order(par.tp, par.sp, par.dp, par.pp, par.rank_order)
    if par.pp > 1 and order.index("pp") != sum(1 for d in (par.tp, par.sp, par.dp) if d > 1):
        raise KeyedValueError("parallel.rank_order", "MoE parallel folding lays the expert groups over the ranks "
                              "of one pipeline stage: pp must be outermost in rank_order")
    try:
        expert_layout_shapes((par.tp, par.sp, par.dp, par.pp), (ep, etp), dim_sizes)
    except CosmicError as exc:
        raise KeyedValueError("parallel.ep", str(exc)) from None


def _check_astra(c: SystemConfig) -> None:
    """Combinations that crash or hang the real ASTRA-sim are errors in astra-sim fidelity.

    halving_doubling for all-to-all is rejected by ASTRA-sim (an all-to-all that only inherits it from all_reduce
    runs direct); halving_doubling on a dimension whose size is not a power of two never finishes;
    double_binary_tree there crashes. (Dimensions of one NPU are skipped by ASTRA-sim.)
    """
    from cosmic.collective.astra_io import ASTRA_NAMES, astra_algorithms

    topologies = tuple(d.topology for d in c.network.dims)
    for kind in Collective:
        algos = astra_algorithms(c.collective, kind, topologies)
        spec = getattr(c.collective, kind.value)
        for i, (algo, dim) in enumerate(zip(algos, c.network.dims, strict=True)):
            p = dim.npus
            if p <= 1:
                continue
            key = f"collective.{kind.value}" + (f"[{i}]" if isinstance(spec, list) else "")
            if spec is None and kind is not Collective.ALL_REDUCE:
                key = "collective.all_reduce" + (f"[{i}]" if isinstance(c.collective.all_reduce, list) else "")
            if algo is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL:
                raise KeyedValueError(
                    key,
                    "ASTRA-sim rejects halving_doubling for all-to-all (set collective.all_to_all to direct or ring)",
                )
            if algo in (Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE) and p & (p - 1):
                what = "never finishes" if algo is Algorithm.HALVING_DOUBLING else "crashes"
                raise KeyedValueError(
                    key,
                    f"{algo.value} ({ASTRA_NAMES[algo]}) on network dimension {i} of {p} NPUs (not a power of two) "
                    f"{what} in ASTRA-sim; use ring or direct",
                )


# ---- loading ---------------------------------------------------------------------------------------------------


def format_validation_error(exc: ValidationError, file: str | None) -> ConfigError:
    """Turn pydantic's error into one line: file, key path, what is allowed."""
    err = exc.errors()[0]
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, KeyedValueError):
        prefix = _loc(err["loc"])
        return ConfigError(str(ctx_err), file=file, key=f"{prefix}.{ctx_err.key}" if prefix else ctx_err.key)
    if isinstance(ctx_err, CosmicError):
        return ConfigError(str(ctx_err), file=file, key=_loc(err["loc"]) or None)
    loc = _loc(err["loc"])
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        hint = close_match(str(err["loc"][-1]), _keys_at(err["loc"][:-1]))
        msg = "unknown key (" + (f"did you mean {hint!r}? " if hint else "not allowed here; ") + "see `cosmic schema`)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif "input" in err and isinstance(err["input"], (str, int, float, bool)) and err["type"] != "model_type":
        msg = f"{msg} (got {_shown(err['input'])})"
    return ConfigError(msg, file=file, key=loc or None)


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the configuration model allows at `loc` (a pydantic error location), [] when it cannot tell."""
    import typing

    model: Any = SystemConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        todo, model = [field.annotation], None
        while todo:  # the first pydantic model inside Optional[...], list[...], unions
            t = todo.pop(0)
            if isinstance(t, type) and issubclass(t, BaseModel):
                model = t
                break
            todo.extend(typing.get_args(t))
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _shown(value: str | int | float | bool) -> str:
    """A short repr of an offending value (Python refuses to print integers of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    shown = repr(value[:60] if isinstance(value, str) else value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif str(p).startswith(("function-", "tagged-union", "list[", "union[")) or p in (
            "str", "int", "float", "bool", "dict", "list", "Algorithm", "enum", "none",
        ):
            continue
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def config_from_dict(data: Any, *, file: str | None = None) -> SystemConfig:
    """Validate a mapping into a :class:`SystemConfig` (errors become one-line ConfigErrors)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a configuration must be a mapping, got {type(data).__name__}", file=file)
    from cosmic.collective.astra_io import base_dir

    try:
        with base_dir(Path(file).parent if file else None):
            return SystemConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, file) from None
    except RecursionError:
        raise ConfigError("structure nested too deeply", file=file) from None
    except CosmicError as exc:
        if isinstance(exc, ConfigError) and exc.file is None:
            raise ConfigError(exc.detail, file=file, key=exc.key) from None
        raise


def load_config(path: str | Path) -> SystemConfig:
    """Load and validate a `cosmic simulate` YAML file.

    Example:
        >>> import cosmic, pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
        >>> _ = f.write_text("system: cosmic-s1\\nmodel: gpt3-175b\\n"
        ...                  "parallel: {dp: 8, tp: 4, pp: 4, sp: 8, zero: 3, rank_order: [dp, tp, sp, pp]}\\n"
        ...                  "training: {global_batch: 2048}\\n")
        >>> cosmic.load_config(f).parallel.tp
        4
    """
    return config_from_dict(read_yaml(path), file=str(path))


__all__ = [
    "CollectiveConfig",
    "Fidelity",
    "ParallelConfig",
    "Precision",
    "Recompute",
    "Schedule",
    "Scheduling",
    "SystemConfig",
    "TrainingConfig",
    "check_config",
    "check_layout",
    "config_from_dict",
    "default_algorithm",
    "load_config",
    "rank_order_names",
]
