"""The agent contract: ask for points of a PSA's encoded space, tell their objective values.

Modelled on Optuna's sampler: an agent sees only the flat integer vector of a `cosmic.psa.Space` (coordinate ``i`` in
``0 .. cardinalities[i] - 1``) and never the simulator. The explorer asks for a batch of points, evaluates them, and
tells the values back.

Values and infeasible points
    A value is a float (one objective) or a tuple of floats (several), in the objective's own direction: the agent
    reads ``space.objectives[i].direction`` ('minimize' or 'maximize'). ``None`` means the point could not be used: it
    did not fit in device memory (when the PSA asks for ``memory_fit``) or the simulator rejected it. Alongside, the
    explorer passes ``violations``: how far each point is from feasible (0 for feasible points; for memory the
    fraction by which the footprint exceeds the capacity; ``inf`` when the simulator rejected the point). Each agent
    documents what it does with them; none treats them as a silent minus infinity.

Resuming
    ``rebuild(points, values, violations)`` gives a freshly constructed agent the history of a stored study. The
    default tells the whole history at once and re-seeds the agent's generator from ``(seed, len(history))``, so a
    resumed run is reproducible from the same stored history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from cosmic.errors import ConfigError

if TYPE_CHECKING:
    from cosmic.psa import Space

Value = float | tuple[float, ...]


@runtime_checkable
class Agent(Protocol):
    """What the explorer needs from an agent (see the module docstring); :class:`BaseAgent` gives every flag its
    documented default. `cosmic.testing.check_agent` asserts the contract."""

    name: ClassVar[str]
    multi_objective: ClassVar[bool]
    max_batch: ClassVar[int | None]
    default_batch: ClassVar[int]
    times_unfit_points: ClassVar[bool]
    wants_features: ClassVar[bool]
    repeats_points: ClassVar[bool]

    @property
    def exhausted(self) -> bool:
        """True once the agent has nothing left to propose (the explorer then stops, the search complete)."""
        ...

    def ask(self, n: int = 1) -> np.ndarray:
        """Return ``n`` points as an ``(n, d)`` integer array, each satisfying the space's static constraints."""
        ...

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        """Report the values of evaluated points (``None`` = infeasible or failed)."""
        ...

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        """Restore the state a stored study implies (called once, before the first ask)."""
        ...

    def close(self) -> None:
        """Release threads or other resources (a no-op for most agents)."""
        ...

    def hyperparameters(self) -> dict[str, Any]:
        """The hyper-parameters the agent was built with (stored with the study)."""
        ...


class BaseAgent:
    """Shared plumbing: the space, a seeded generator, objective signs and loss helpers.

    Subclasses set `name` and override the flags whose default does not fit them (each is documented below).
    """

    name: ClassVar[str] = "base"
    multi_objective: ClassVar[bool] = False
    """Whether the agent accepts a space with several objectives (values are then tuples)."""
    max_batch: ClassVar[int | None] = None
    """The largest ask the agent supports (``None``: any); the explorer never asks for more."""
    default_batch: ClassVar[int] = 64
    """What the explorer asks for at a time when the caller does not say."""
    times_unfit_points: ClassVar[bool] = True
    """Whether the explorer simulates points that do not fit in memory (their unconstrained values are kept for
    the agent and the store); an agent that ignores them (exhaustive) sets it False and they are rejected untimed."""
    wants_features: ClassVar[bool] = False
    """Whether `tell` takes ``features=`` (one feature vector per point, `cosmic.explore.FEATURE_NAMES`)."""
    repeats_points: ClassVar[bool] = True
    """Whether an ask may return a point asked before (in this run or in the rebuilt history). False is a promise
    the contract test holds the agent to."""

    @property
    def exhausted(self) -> bool:
        """True once the agent has nothing left to propose; the explorer then stops and marks the search complete.
        Default: never."""
        return False

    def __init__(self, space: Space, *, seed: int | None = None) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.cards = np.asarray(space.cardinalities, dtype=np.int64)
        self.d = int(self.cards.size)
        directions = [o.direction for o in space.objectives]
        if not directions:
            raise ConfigError(f"agent {self.name!r}: the space declares no objective")
        for d in directions:
            if d not in ("minimize", "maximize"):
                raise ConfigError(f"agent {self.name!r}: objective direction {d!r} is not minimize or maximize")
        self.n_objectives = len(directions)
        # loss = sign * value: every agent minimises internally
        self.signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
        if self.n_objectives > 1 and not self.multi_objective:
            raise ConfigError(
                f"agent {self.name!r} optimises one objective but the space has {self.n_objectives} "
                f"({', '.join(o.name for o in space.objectives)}); use nsga2, tpe, bo, random or exhaustive"
            )

    # ---- helpers -----------------------------------------------------------------------------------------------

    def loss(self, value: Value | None) -> float:
        """Single-objective loss (lower is better); ``inf`` for ``None``."""
        if value is None:
            return math.inf
        v = value[0] if isinstance(value, tuple) else value
        return float(self.signs[0] * v)

    def losses(self, values: Sequence[Value | None]) -> np.ndarray:
        return np.array([self.loss(v) for v in values], dtype=float)

    @staticmethod
    def violation_array(values: Sequence[Value | None], violations: Sequence[float] | None) -> np.ndarray:
        """Violations as an array; ``None`` values without a stated violation count as ``inf``."""
        if violations is None:
            return np.array([0.0 if v is not None else math.inf for v in values], dtype=float)
        out = np.asarray(violations, dtype=float).copy()
        for i, v in enumerate(values):
            if v is None and out[i] <= 0:
                out[i] = math.inf
        return out

    def check_points(self, points: np.ndarray, n_values: int) -> np.ndarray:
        pts = np.asarray(points, dtype=np.int64).reshape(-1, self.d)
        if pts.shape[0] != n_values:
            raise ValueError(f"tell: {pts.shape[0]} points but {n_values} values")
        return pts

    # ---- default contract --------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:  # pragma: no cover - every agent overrides
        raise NotImplementedError

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        """Default: nothing to learn."""
        self.check_points(points, len(values))

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        pts = np.asarray(points, dtype=np.int64).reshape(-1, self.d)
        if len(pts):
            self.tell(pts, list(values), violations=violations)
        self.rng = np.random.default_rng([self.seed if self.seed is not None else 0, len(pts)])

    def close(self) -> None:
        return None

    def hyperparameters(self) -> dict[str, Any]:
        """The hyper-parameters this agent was built with (stored with the study)."""
        return {}


def key(point: np.ndarray) -> bytes:
    """A hashable identity of one point."""
    if type(point) is np.ndarray and point.dtype == np.int64 and point.flags.c_contiguous:
        return point.tobytes()  # what ascontiguousarray would return unchanged
    return np.ascontiguousarray(point, dtype=np.int64).tobytes()

