"""Objectives a PSA can name, each a function of a simulation Result and its configuration.

| name | value | default direction |
|---|---|---|
| step_time | step time, s | minimize |
| step_time*network_cost | step time x network cost (s x USD), COSMIC's "runtime x cost" | minimize |
| step_time*total_bandwidth | step time x total per-NPU bandwidth (GB/s) / 2000, COSMIC's third reward | minimize |
| tokens_per_s_per_usd | tokens/s / (network cost + accelerators' price when the catalog has one), USD | maximize |
| memory | peak memory per device, GB | minimize |

Serving objectives read a `cosmic.serving.ServingResult` (a serving PSA's evaluations):

| name | value | default direction |
|---|---|---|
| goodput | requests/s meeting both SLO targets | maximize |
| goodput_per_usd | requests meeting the SLO per dollar of the deployment's hourly cost | maximize |
| output_tokens_per_s | generated tokens/s | maximize |
| ttft_p99 | 99th-percentile time to first token, s | minimize |
| tpot_p99 | 99th-percentile time per output token, s | minimize |
| usd_per_million_tokens | deployment cost per million (input + output) tokens, USD | minimize |

`NAME@p90` (or ``{name: NAME, risk: p90}``; ``cosmic explore --risk p90``) is the pessimistic form of an objective
that reads the step time: the step time is the predicted one corrected by the p90 signed error of the
configuration's validated regime, ``step_time / (1 + p90/100)`` (`cosmic.sim.evidence.pessimistic_factor`; a
regime where cosmic was too fast has a negative p90, so its pessimistic time is longer), and tokens/s is divided by
the same factor; ``@p50`` takes the median error. Memory has no risk form (it is not what the runs measured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cosmic._xp import safe, where
from cosmic.errors import ConfigError, extra_keys
from cosmic.sim.evidence import RISKS, evidence_of_config, pessimistic_factor


def _tokens_per_usd(r: Any, acc_cost_usd: Any) -> Any:
    price = r.network_cost_usd + acc_cost_usd * r.n_npus
    return where(price > 0, r.tokens_per_s / safe(price), 0.0)


# Each objective is a function of a record with Result's figures (a `Result`, or columns of many: see
# `ResultColumns`) and the accelerator's price per device (0 when the catalog has none); floats or columns.
_DEFS: dict[str, tuple[Callable[[Any, Any], Any], str, str]] = {
    "step_time": (lambda r, a: r.step_time_s, "minimize", "step time, s"),
    "step_time*network_cost": (
        lambda r, a: r.step_time_s * r.network_cost_usd, "minimize", "step time x network cost, s x USD"),
    "step_time*total_bandwidth": (
        lambda r, a: r.step_time_s * r.total_bandwidth_gbps / 2000.0, "minimize",
        "step time x total per-NPU bandwidth (GB/s) / 2000"),
    "tokens_per_s_per_usd": (_tokens_per_usd, "maximize", "tokens/s per USD of network (+ accelerators if priced)"),
    "memory": (lambda r, a: r.memory_per_device_gb, "minimize", "peak memory per device, GB"),
    "goodput": (lambda r, a: r.goodput_requests_per_s, "maximize", "requests/s meeting the SLO"),
    "goodput_per_usd": (lambda r, a: r.goodput_per_usd_hour * 3600.0, "maximize",
                        "requests meeting the SLO per USD of deployment time"),
    "output_tokens_per_s": (lambda r, a: r.output_tokens_per_s, "maximize", "generated tokens/s"),
    "ttft_p99": (lambda r, a: r.latency["ttft_p99_s"], "minimize", "p99 time to first token, s"),
    "tpot_p99": (lambda r, a: r.latency["tpot_p99_s"], "minimize", "p99 time per output token, s"),
    "usd_per_million_tokens": (lambda r, a: r.usd_per_million_tokens if r.usd_per_million_tokens is not None
                               else float("inf"), "minimize", "USD per million tokens"),
}


class ResultColumns:
    """The figures objectives read, as columns of a `cosmic.sim.batch.BatchResult`; with `time_factor` (each row's
    `pessimistic_factor`) the step time is multiplied and tokens/s divided by it."""

    def __init__(self, figures: dict[str, Any], time_factor: Any = None) -> None:
        f = 1.0 if time_factor is None else time_factor
        self.step_time_s = figures["step_time_s"] * f
        self.network_cost_usd = figures["network_cost_usd"]
        self.total_bandwidth_gbps = figures["total_bandwidth_gbps"]
        self.tokens_per_s = figures["tokens_per_s"] / f
        self.n_npus = figures["n_npus"]
        self.memory_per_device_gb = figures["memory_bytes"] / 1e9


class _Pessimistic:
    """A `Result` seen with its step time multiplied (tokens/s divided) by a risk factor."""

    def __init__(self, result: Any, factor: float) -> None:
        self._result = result
        self.step_time_s = result.step_time_s * factor
        self.tokens_per_s = result.tokens_per_s / factor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)


OBJECTIVE_NAMES: tuple[str, ...] = tuple(_DEFS)
RISKABLE: tuple[str, ...] = ("step_time", "step_time*network_cost", "step_time*total_bandwidth", "tokens_per_s_per_usd")
"""The objectives with a pessimistic form (``NAME@p90``): those that read a training step's time."""

OBJECTIVE_UNITS: dict[str, str] = {
    "step_time": "s",
    "step_time*network_cost": "s·USD",
    "step_time*total_bandwidth": "s·GB/s ÷ 2000",
    "tokens_per_s_per_usd": "tokens/s per USD",
    "memory": "GB",
    "goodput": "req/s",
    "goodput_per_usd": "requests per USD",
    "output_tokens_per_s": "tokens/s",
    "ttft_p99": "s",
    "tpot_p99": "s",
    "usd_per_million_tokens": "USD",
}
"""The unit each objective's value is in, for axes and printed values."""


def objective_unit(name: str) -> str:
    """The unit of objective `name` ('' for an unknown name).

    Example:
        >>> objective_unit("step_time*network_cost")
        's·USD'
    """
    return OBJECTIVE_UNITS.get(name.split("@")[0], "")


@dataclass(frozen=True)
class Objective:
    """A named objective and whether to minimize or maximize it.

    Example:
        >>> Objective.from_spec("step_time").direction
        'minimize'
    """

    name: str
    direction: str
    description: str = field(default="", compare=False)

    @property
    def base(self) -> str:
        """The objective without its risk (``step_time`` of ``step_time@p90``)."""
        return self.name.partition("@")[0]

    @property
    def risk(self) -> str | None:
        """``p50`` / ``p90`` for a pessimistic objective (``NAME@p90``), else None."""
        return self.name.partition("@")[2] or None

    def with_risk(self, risk: str | None) -> Objective:
        """The same objective under `risk` (None: the plain prediction); memory has no risk form, and the
        serving objectives have none (the evidence is of training steps): asking for one is an error."""
        if risk is None or self.base == "memory":
            return Objective(self.base, self.direction, self.description)
        if self.base not in RISKABLE:
            raise ConfigError(f"risk {risk!r} applies to objectives that read a training step time "
                              f"({', '.join(RISKABLE)}), not to {self.base!r}", key="--risk")
        desc = f"{self.description.split(' [')[0]} [pessimistic: step time / (1 + {risk} error of its regime)]"
        return Objective(f"{self.base}@{risk}", self.direction, desc)

    def value(self, result: Any, config: Any) -> float:
        """The objective's value for one simulation `result` of `config`."""
        if self.risk is not None:
            ev = result.evidence if result.evidence is not None else evidence_of_config(config)
            result = _Pessimistic(result, pessimistic_factor(ev, self.risk))
        return float(_DEFS[self.base][0](result, config.accelerator.cost_usd or 0.0))

    def values(self, figures: ResultColumns, acc_cost_usd: Any) -> Any:
        """The objective's values for columns of results (`acc_cost_usd`: each row's price per device); a
        pessimistic objective needs `figures` built with the rows' factor for its risk."""
        return _DEFS[self.base][0](figures, acc_cost_usd)

    @property
    def sign(self) -> float:
        """+1 for minimize, -1 for maximize (so `sign * value` is always minimized)."""
        return 1.0 if self.direction == "minimize" else -1.0

    @classmethod
    def from_spec(cls, spec: Any, *, file: str | None = None, key: str = "objectives") -> Objective:
        """Parse `step_time`, `{name: step_time, direction: minimize}` or `{step_time: maximize}`."""
        direction, risk = None, None
        if isinstance(spec, dict):
            if "name" in spec:
                extra = extra_keys(spec, {"name", "direction", "risk"})
                if extra:
                    raise ConfigError(f"unknown key {extra[0]!r}", file=file, key=f"{key}.{extra[0]}")
                name, direction, risk = spec["name"], spec.get("direction"), spec.get("risk")
            elif len(spec) == 1:
                ((name, direction),) = spec.items()
            else:
                raise ConfigError("an objective is a name or {name: ..., direction: ...}", file=file, key=key)
        else:
            name = spec
        if isinstance(name, str) and "@" in name and risk is None:
            name, _, risk = name.partition("@")
        if risk is not None and (risk not in RISKS or name not in RISKABLE):
            raise ConfigError(f"risk must be one of {', '.join(RISKS)} on an objective that reads the step time, "
                              f"got {risk!r} on {name!r}", file=file, key=key)
        if not isinstance(name, str) or name not in _DEFS:
            import difflib

            hint = difflib.get_close_matches(str(name), OBJECTIVE_NAMES, n=1)
            raise ConfigError(
                f"unknown objective {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; known: {', '.join(OBJECTIVE_NAMES)}",
                file=file, key=key,
            )
        _fn, default, desc = _DEFS[name]
        if direction is None:
            direction = default
        d = str(direction).lower().replace("minimise", "minimize").replace("maximise", "maximize")
        if d in ("min",):
            d = "minimize"
        if d in ("max",):
            d = "maximize"
        if d not in ("minimize", "maximize"):
            raise ConfigError(f"direction must be minimize or maximize, got {direction!r}", file=file,
                              key=f"{key}.direction")
        return cls(name, d, desc).with_risk(risk)
