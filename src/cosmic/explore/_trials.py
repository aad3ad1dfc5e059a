"""What a stored trial holds and how it is read back: a result's figures, the `Result` rebuilt from them, the
configuration rebuilt by decoding the trial's point.

A trial stores no configuration: ``space.decode(point)`` is the configuration it was evaluated with (the evaluator
decodes the same point), so configurations are rebuilt on demand, from the PSA the study was run on. The study
records a fingerprint of that PSA (:func:`space_fingerprint`); rebuilding against another PSA is refused with one
line. The result is stored as its figures (:func:`figures`): flat numbers from which :func:`result_from_figures`
rebuilds the `Result` exactly (``to_dict()`` equal, floats round-trip through JSON exactly).

Studies written before (user attributes ``config`` and ``result``, the full configuration and ``Result.to_dict()``)
are read as well: their ``result`` is taken as stored, and their configuration is rebuilt by decoding too, after
checking that the decoding equals the stored one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosmic.errors import CosmicError, StudyError
from cosmic.sim.result import Evidence, Memory, Result

_MEMORY = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes")
_HEAD = ("step_time_s", "tokens_per_s", "mfu", "hfu", *_MEMORY, "memory_capacity_bytes", "fits_memory",
         "network_cost_usd", "total_bandwidth_gbps")
_TAIL = ("n_npus", "micro_batches", "critical_stage", "model_flops_per_step")
_COMM = "comm_dim{}_s"
_RESERVED = frozenset(_HEAD) | frozenset(_TAIL) | {"fidelity", "notes", "evidence"}
_DEFAULT_FIDELITY = "cosmic"


def _num(v: Any) -> Any:
    """A figure as JSON: numpy scalars as Python numbers, non-finite floats as the strings "inf", "-inf", "nan"."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _unnum(v: Any) -> Any:
    return float(v) if isinstance(v, str) else v


def figures(result: Result) -> dict[str, Any]:
    """The figures of `result` as one flat JSON-ready mapping (what a trial stores instead of ``to_dict()``).

    Keys: ``step_time_s``, ``tokens_per_s``, ``mfu``, ``hfu``, the four memory parts in bytes (``weights_bytes``
    ...), ``memory_capacity_bytes``, ``fits_memory``, ``network_cost_usd``, ``total_bandwidth_gbps``, the breakdown
    entries under their own names (``forward_s`` ... ``optimizer_s``), ``comm_dim0_s`` ... (communication per network
    dimension), ``n_npus``, ``micro_batches``, ``critical_stage``, ``model_flops_per_step``; ``fidelity`` and
    ``notes`` only when they are not the default (``"cosmic"``, none); ``evidence`` (the mapping of
    ``Evidence.to_record()``: what the shipped table said when the trial was evaluated) when the result has it.

    Example:
        >>> import cosmic
        >>> r = cosmic.simulate(cosmic.load_config("examples/cosmic-s1-gpt3-175b.yaml"))
        >>> f = figures(r)
        >>> f["step_time_s"] == r.step_time_s, result_from_figures(f).to_dict() == r.to_dict()
        (True, True)
    """
    m = result.memory
    out: dict[str, Any] = {
        "step_time_s": result.step_time_s, "tokens_per_s": result.tokens_per_s, "mfu": result.mfu,
        "hfu": result.hfu, "weights_bytes": m.weights_bytes, "gradients_bytes": m.gradients_bytes,
        "optimizer_bytes": m.optimizer_bytes, "activations_bytes": m.activations_bytes,
        "memory_capacity_bytes": result.memory_capacity_bytes, "fits_memory": bool(result.fits_memory),
        "network_cost_usd": result.network_cost_usd, "total_bandwidth_gbps": result.total_bandwidth_gbps,
    }
    for k, v in result.breakdown.items():
        if k in _RESERVED or k.startswith("comm_dim"):
            raise ValueError(f"breakdown entry {k!r} collides with a figure of the same name")
        out[k] = v
    for i, v in enumerate(result.comm_by_network_dim_s):
        out[_COMM.format(i)] = v
    out.update(n_npus=result.n_npus, micro_batches=result.micro_batches, critical_stage=result.critical_stage,
               model_flops_per_step=result.model_flops_per_step)
    if result.fidelity != _DEFAULT_FIDELITY:
        out["fidelity"] = result.fidelity
    if result.notes:
        out["notes"] = list(result.notes)
    out = {k: _num(v) for k, v in out.items()}
    if result.evidence is not None:
        out["evidence"] = result.evidence.to_record()
    return out


def result_from_figures(f: dict[str, Any]) -> Result:
    """The `Result` whose :func:`figures` are `f` (exactly: ``result_from_figures(figures(r)).to_dict() ==
    r.to_dict()``)."""
    g = {k: _unnum(v) if k not in ("fidelity", "notes", "evidence") else v for k, v in f.items()}
    try:
        dims: list[float] = []
        while _COMM.format(len(dims)) in g:
            dims.append(g[_COMM.format(len(dims))])
        comm = {_COMM.format(i) for i in range(len(dims))}
        breakdown = {k: v for k, v in g.items() if k not in _RESERVED and k not in comm}
        return Result(
            step_time_s=g["step_time_s"], tokens_per_s=g["tokens_per_s"], mfu=g["mfu"], hfu=g["hfu"],
            memory=Memory(*(g[k] for k in _MEMORY)), memory_capacity_bytes=g["memory_capacity_bytes"],
            fits_memory=bool(g["fits_memory"]), network_cost_usd=g["network_cost_usd"],
            total_bandwidth_gbps=g["total_bandwidth_gbps"], breakdown=breakdown, comm_by_network_dim_s=tuple(dims),
            n_npus=g["n_npus"], micro_batches=g["micro_batches"], critical_stage=g["critical_stage"],
            model_flops_per_step=g["model_flops_per_step"], fidelity=str(g.get("fidelity", _DEFAULT_FIDELITY)),
            notes=tuple(g.get("notes") or ()),
            evidence=Evidence.from_dict(g["evidence"]) if g.get("evidence") else None,
        )
    except KeyError as exc:
        raise StudyError(f"stored figures lack {exc.args[0]!r}: not figures written by cosmic explore") from None


def space_fingerprint(space: Any) -> str:
    """A digest of what decoding depends on: the base configuration, the knobs (domains, modes), the derived knobs
    and the encoded dimensions. Two PSAs with the same fingerprint decode every point to the same configuration;
    names, descriptions, objectives and constraints do not enter it."""
    d = space.describe()
    data = {"base": space.base.to_yaml_dict(), "knobs": d["knobs"], "derived": d["derived"], "dims": d["dims"]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class StoredTrial:
    """One trial as a study stores it; `config` and `result` rebuild what it was evaluated with."""

    number: int
    state: str
    point: np.ndarray
    values: tuple[float, ...] | None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "ok" if self.values is not None else "memory"))

    @property
    def reason(self) -> str | None:
        return self.attrs.get("reason")

    @property
    def violation(self) -> float:
        v = self.attrs.get("violation", 0.0)
        return math.inf if v == "inf" else float(v)

    @property
    def knobs(self) -> dict[str, Any] | None:
        return self.attrs.get("knobs")

    @property
    def figures(self) -> dict[str, Any] | None:
        """The stored figures (``None`` without a result, and for trials stored in the old format)."""
        return self.attrs.get("figures")

    @property
    def legacy(self) -> bool:
        """Stored in the old format (full ``config`` / ``result`` attributes)."""
        return "figures" not in self.attrs and ("config" in self.attrs or "result" in self.attrs)

    def result(self) -> Result | None:
        """The simulation result, rebuilt from the figures (``None`` when the point was not simulated, and for
        old-format trials, whose ``result_dict`` is all that was kept)."""
        f = self.figures
        if f is not None and f.get("kind") == "serving":
            return None  # a serving trial keeps its figures only (`result_dict`)
        return None if f is None else result_from_figures(f)

    def result_dict(self) -> dict[str, Any] | None:
        """``Result.to_dict()`` of the evaluated result (JSON-ready), from either format."""
        if self.figures is not None and self.figures.get("kind") == "serving":
            return dict(self.figures)
        if self.figures is not None:
            from cosmic.explore._study import jsonable

            return jsonable(result_from_figures(self.figures).to_dict())
        return self.attrs.get("result")

    def config(self, space: Any) -> Any:
        """The configuration the trial was evaluated with: ``space.decode(point)``.

        Raises:
            StudyError: the point does not decode in `space`, or (old-format trials) its decoding differs from the
                configuration stored with it: `space` is not the PSA the study was run on.
        """
        try:
            cfg = space.decode(self.point)
        except (CosmicError, ValueError) as exc:
            raise StudyError(f"trial {self.number}: its point does not decode in space {space.name!r}: "
                             f"{exc}".splitlines()[0]) from None
        stored = self.attrs.get("config")
        if stored is not None and json.loads(json.dumps(cfg.to_yaml_dict())) != stored:
            raise StudyError(f"trial {self.number}: space {space.name!r} decodes its point to another configuration "
                             "than the one stored with it; give the PSA the study was run on")
        return cfg


def check_space(stored: dict[str, Any], info: dict[str, Any], name: str, url: str) -> None:
    """Refuse (one line) a PSA other than the one study `name` was run on: `stored` is the study's recorded space,
    `info` the given one's (dimension names, cardinalities and, when both have it, the fingerprint)."""
    if stored.get("dim_names") != info["dim_names"] or stored.get("cardinalities") != info["cardinalities"]:
        raise StudyError(
            f"study {name!r} in {url} was run on another space ({stored.get('name')!r}, "
            f"{len(stored.get('dim_names') or [])} dimensions); give the PSA it was run on or choose another --study"
        )
    fp = stored.get("fingerprint")  # absent in studies written before configurations were rebuilt by decoding
    if fp is not None and info.get("fingerprint") is not None and fp != info["fingerprint"]:
        raise StudyError(
            f"study {name!r} in {url} was run on another version of space {stored.get('name')!r} (its base "
            "configuration, knob domains or derived knobs differ); give the PSA it was run on or choose another --study"
        )


def load_trial(space: Any, number: int, *, study_name: str, storage: str | None = None,
               runs_dir: str | Any = "runs") -> StoredTrial:
    """Trial `number` of the stored study `study_name`, whose configuration ``.config(space)`` rebuilds.

    `storage` is a SQLAlchemy URL or a SQLite file (default ``runs_dir/<study>.db``); nothing is created.

    Raises:
        StudyError: no such storage, study or trial, or the study was run on another PSA than `space`.
    """
    from pathlib import Path

    from cosmic.explore._storage import StudyStore
    from cosmic.explore._study import _space_info

    if storage is not None and "://" in str(storage):
        url = str(storage)
    else:
        path = Path(storage) if storage else Path(runs_dir) / f"{study_name}.db"
        if not path.is_file():
            raise StudyError(f"no study file {path} (give --storage, --study or --out of the study)")
        url = f"sqlite:///{path}"
    store = StudyStore(url, study_name)
    try:
        if not store.exists():
            raise StudyError(f"no study {study_name!r} in {url}")
        attrs = store.open()
        info = _space_info(space)
        check_space(attrs.get("space") or {}, info, study_name, url)
        store.set_dimensions(info["dim_names"], info["cardinalities"])
        return store.trial(number)
    finally:
        store.close()
