"""Studies in Optuna's relational storage: one Optuna trial per evaluation, written a batch per transaction.

The schema is Optuna's own (``optuna.storages.RDBStorage`` creates and migrates it), so ``optuna.load_study`` and
optuna-dashboard read cosmic studies. Optuna writes one trial per transaction (about 25 ms per trial on SQLite); a
10,000-evaluation study needs better, so batches of finished trials are inserted with SQLAlchemy Core in one
transaction against Optuna's tables. A process killed mid-run loses at most the batch in flight; everything committed
is complete (trial, parameters, values and attributes are one transaction).

Each trial holds:

* ``params``: the encoded coordinates, one ``IntDistribution(0, card - 1)`` per PSA dimension;
* ``values``: the objective values (state ``COMPLETE``), or none (state ``FAIL``) when the point is infeasible;
* user attributes ``knobs`` (decoded knob values), ``status``, ``figures`` (the simulation result's figures as flat
  numbers, also for memory-infeasible points: :func:`cosmic.explore._trials.figures`), ``violation`` (0 when
  feasible) and, for failures, ``reason``; the system attribute ``fail_reason`` repeats the reason where Optuna
  looks for it.

No configuration is stored: ``space.decode(point)`` rebuilds it (:class:`~cosmic.explore._trials.StoredTrial`).
Studies written before held the full configuration and ``Result.to_dict()`` as the attributes ``config`` and
``result``; they are read (and resumed) as well.

Several processes may write to one study at once (``cosmic explore --worker``): each batch transaction first
takes the study's write lock (a no-op ``UPDATE`` of its ``studies`` row: a row lock on PostgreSQL, the database write
lock on SQLite), then numbers its trials after the highest stored number, so trial numbers stay unique and
consecutive across writers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from cosmic.errors import StudyError
from cosmic.explore._trials import StoredTrial

STUDY_ATTR = "cosmic"


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(storage: str | Path | None, study_name: str, runs_dir: str | Path = "runs") -> str:
    """The SQLAlchemy URL for `storage`: a URL as given, a file path as SQLite (absolute), nothing as
    ``runs_dir/<study>.db``. Nothing is created: :class:`StudyStore` creates the file and its folder."""
    if storage is None or str(storage) == "":
        path = Path(runs_dir) / f"{study_name}.db"
    elif "://" in str(storage):
        return str(storage)
    else:
        path = Path(storage)
    return f"sqlite:///{path.absolute()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(url[len(prefix):])


def study_names(url: str) -> list[str]:
    """Names of the studies stored at `url` (none when its SQLite file does not exist; nothing is created)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return []
    try:
        return list(_optuna().study.get_all_study_names(storage=url))
    except Exception as exc:  # SQLAlchemy and driver errors: unreachable or unusable storage
        raise StudyError(f"cannot open storage {url!r}: {exc.__class__.__name__}: {exc}".splitlines()[0]) from None


def _compact(v: Any) -> str:
    """JSON without blanks (Optuna reads attribute and distribution JSON with ``json.loads``)."""
    return json.dumps(v, separators=(",", ":"))


def _creation_race(exc: BaseException) -> bool:
    """Whether opening a storage failed because concurrent processes created Optuna's tables at the same time."""
    import sqlalchemy.exc as sa_exc

    msg = str(exc).lower()
    return isinstance(exc, sa_exc.IntegrityError) or (
        isinstance(exc, sa_exc.SQLAlchemyError)
        and any(k in msg for k in ("already exists", "duplicate key", "database is locked")))


@dataclass(frozen=True)
class TrialRow:
    """One finished evaluation, ready to store."""

    point: np.ndarray
    values: tuple[float, ...] | None
    violation: float
    reason: str | None
    attrs: dict[str, Any]


@dataclass
class History:
    """What a stored study holds, as arrays (trial order)."""

    numbers: np.ndarray  # (n,)
    points: np.ndarray  # (n, d)
    values: list[tuple[float, ...] | None]
    violations: np.ndarray  # (n,)
    trial_ids: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.numbers)


class StudyStore:
    """A cosmic study in an Optuna RDB storage (SQLite file, PostgreSQL, any SQLAlchemy URL)."""

    def __init__(self, url: str, study_name: str, *, create: bool = True) -> None:
        """Open the storage at `url`; with ``create=False`` a missing SQLite file is an error instead of a new
        file (resuming or showing a study creates nothing)."""
        optuna = _optuna()
        self.url = url
        self.study_name = study_name
        path = sqlite_path(url)
        if path is not None:
            if not create and not path.is_file():
                raise StudyError(f"no study {study_name!r}: {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(8):
            try:
                self.storage = optuna.storages.RDBStorage(url)
                break
            except Exception as exc:  # SQLAlchemy and driver errors: unreachable or unusable storage
                if attempt < 7 and _creation_race(exc):
                    time.sleep(0.1 * (attempt + 1))  # another process is creating the schema right now
                    continue
                raise StudyError(
                    f"cannot open storage {url!r}: {exc.__class__.__name__}: {exc}".splitlines()[0]) from None
        from optuna.storages._rdb import models

        self.models = models
        self.engine = self.storage.engine
        self.study_id: int | None = None
        self._dist_json: list[str] = []
        self._names: list[str] = []

    # ---- study -------------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        optuna = _optuna()
        try:
            self.storage.get_study_id_from_name(self.study_name)
            return True
        except KeyError:
            return False
        except optuna.exceptions.OptunaError:
            return False

    def create(self, directions: Sequence[str], attrs: dict[str, Any]) -> None:
        optuna = _optuna()
        dirs = [optuna.study.StudyDirection.MINIMIZE if d == "minimize" else optuna.study.StudyDirection.MAXIMIZE
                for d in directions]
        try:
            self.study_id = self.storage.create_new_study(dirs, self.study_name)
        except optuna.exceptions.DuplicatedStudyError:
            raise StudyError(
                f"study {self.study_name!r} already exists in {self.url}; pass --resume to continue it or choose "
                "another --study name"
            ) from None
        self.storage.set_study_user_attr(self.study_id, STUDY_ATTR, attrs)

    def open(self) -> dict[str, Any]:
        """Open an existing study; returns its cosmic attributes."""
        try:
            self.study_id = self.storage.get_study_id_from_name(self.study_name)
        except KeyError:
            raise StudyError(
                f"no study {self.study_name!r} in {self.url}; drop --resume to start it"
            ) from None
        attrs = self.storage.get_study_user_attrs(self.study_id).get(STUDY_ATTR)
        if not isinstance(attrs, dict):
            raise StudyError(f"study {self.study_name!r} in {self.url} was not written by cosmic explore")
        return attrs

    def n_trials(self) -> int:
        """How many trials the study holds (0 when it does not exist)."""
        if not self.exists():
            return 0
        self.open()
        T = self.models.TrialModel.__table__
        with self.engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(T).where(T.c.study_id == self.study_id)
            return int(conn.execute(q).scalar_one())

    def set_attr(self, key: str, value: Any) -> None:
        assert self.study_id is not None
        self.storage.set_study_user_attr(self.study_id, key, value)

    def set_dimensions(self, names: Sequence[str], cards: Sequence[int]) -> None:
        optuna = _optuna()
        self._names = list(names)
        # Optuna's own JSON without the blanks (it reads it back with json.loads): 18 parameters per trial are
        # most of a trial's bytes
        self._dist_json = [
            _compact(json.loads(optuna.distributions.distribution_to_json(
                optuna.distributions.IntDistribution(0, int(c) - 1))))
            for c in cards
        ]

    # ---- write -------------------------------------------------------------------------------------------------

    def write(self, rows: Sequence[TrialRow]) -> None:
        """Insert finished trials in one transaction."""
        if not rows:
            return
        optuna = _optuna()
        TS = optuna.trial.TrialState
        M = self.models
        now = datetime.now(UTC).replace(tzinfo=None)
        T, S = M.TrialModel.__table__, M.StudyModel.__table__
        with self.engine.begin() as conn:
            # The study's write lock, held to commit: concurrent writers number their batches one after another.
            conn.execute(S.update().where(S.c.study_id == self.study_id).values(study_name=S.c.study_name))
            last = conn.execute(
                sa.select(sa.func.max(T.c.number)).where(T.c.study_id == self.study_id)
            ).scalar()
            first = 0 if last is None else int(last) + 1
            sid = self.study_id
            self._insert(conn, T, ("number", "study_id", "state", "datetime_start", "datetime_complete"),
                         [(first + i, sid, TS.COMPLETE if r.values is not None else TS.FAIL, now, now)
                          for i, r in enumerate(rows)])
            ids = dict(conn.execute(
                T.select().with_only_columns(T.c.number, T.c.trial_id)
                .where(T.c.study_id == self.study_id).where(T.c.number >= first)
            ).all())
            params, values, uattrs, sattrs = self._child_rows(rows, [ids[first + i] for i in range(len(rows))])
            self._insert(conn, M.TrialParamModel.__table__,
                         ("trial_id", "param_name", "param_value", "distribution_json"), params)
            self._insert(conn, M.TrialValueModel.__table__, ("trial_id", "objective", "value", "value_type"),
                         values)
            self._insert(conn, M.TrialUserAttributeModel.__table__, ("trial_id", "key", "value_json"), uattrs)
            self._insert(conn, M.TrialSystemAttributeModel.__table__, ("trial_id", "key", "value_json"), sattrs)

    def _child_rows(self, rows: Sequence[TrialRow], tids: list[int]) -> tuple[list[tuple[Any, ...]], ...]:
        """The parameter, value, user-attribute and system-attribute rows of `rows` (trial ids `tids`)."""
        VT = self.models.TrialValueModel.TrialValueType
        params: list[tuple[Any, ...]] = []
        values: list[tuple[Any, ...]] = []
        uattrs: list[tuple[Any, ...]] = []
        sattrs: list[tuple[Any, ...]] = []
        names, dists = self._names, self._dist_json
        for tid, r in zip(tids, rows, strict=True):
            params.extend([(tid, name, float(v), dj)
                           for name, dj, v in zip(names, dists, r.point.tolist(), strict=True)])
            if r.values is not None:
                for k, v in enumerate(r.values):
                    vt = VT.FINITE if math.isfinite(v) else (VT.INF_POS if v > 0 else VT.INF_NEG)
                    values.append((tid, k, v if math.isfinite(v) else None, vt))
            attrs = dict(r.attrs)
            attrs["violation"] = r.violation if math.isfinite(r.violation) else "inf"
            if r.reason is not None:
                attrs["reason"] = r.reason
                sattrs.append((tid, "fail_reason", _compact(r.reason)))
            uattrs.extend([(tid, key, _compact(val)) for key, val in attrs.items()])
        return params, values, uattrs, sattrs

    def _insert(self, conn: Any, table: Any, cols: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` (tuples in the order of `cols`) into `table` with one Core insert (SQLAlchemy batches it
        into multi-row statements on PostgreSQL).

        Passing the tuples to the SQLite driver's ``executemany`` directly was tried: it made the write about a
        third cheaper, but eight concurrent workers on one SQLite file then failed with "database is locked"
        (tests/explore/test_storage.py), so every database takes the Core insert."""
        if rows:
            conn.execute(table.insert(), [dict(zip(cols, r, strict=True)) for r in rows])

    # ---- read --------------------------------------------------------------------------------------------------

    def history(self) -> History:
        """Every stored trial's point, values and violation, in trial order (a few bulk queries).

        Trials other writers commit between the queries are left out: the trial list read first decides."""
        optuna = _optuna()
        M = self.models
        T, P = M.TrialModel.__table__, M.TrialParamModel.__table__
        V, U = M.TrialValueModel.__table__, M.TrialUserAttributeModel.__table__
        TS = optuna.trial.TrialState
        sid = self.study_id
        col = {n: i for i, n in enumerate(self._names)}
        with self.engine.connect() as conn:
            trials = conn.execute(
                T.select().with_only_columns(T.c.trial_id, T.c.number, T.c.state)
                .where(T.c.study_id == sid).order_by(T.c.number)
            ).all()
            tids = [t[0] for t in trials]
            pos = {tid: i for i, tid in enumerate(tids)}
            sub = T.select().with_only_columns(T.c.trial_id).where(T.c.study_id == sid).scalar_subquery()
            points = np.zeros((len(trials), len(self._names)), dtype=np.int64)
            for tid, name, val in conn.execute(
                P.select().with_only_columns(P.c.trial_id, P.c.param_name, P.c.param_value)
                .where(P.c.trial_id.in_(sub))
            ):
                if name in col and tid in pos:
                    points[pos[tid], col[name]] = int(round(val))
            vals: dict[int, dict[int, float]] = {}
            for tid, obj, val, vtype in conn.execute(
                V.select().with_only_columns(V.c.trial_id, V.c.objective, V.c.value, V.c.value_type)
                .where(V.c.trial_id.in_(sub))
            ):
                name = getattr(vtype, "name", str(vtype))
                if tid not in pos:
                    continue
                v = val if name == "FINITE" else (math.inf if name == "INF_POS" else -math.inf)
                vals.setdefault(tid, {})[int(obj)] = float(v)
            viol = np.zeros(len(trials))
            for tid, vj in conn.execute(
                U.select().with_only_columns(U.c.trial_id, U.c.value_json)
                .where(U.c.trial_id.in_(sub)).where(U.c.key == "violation")
            ):
                if tid not in pos:
                    continue
                v = json.loads(vj)
                viol[pos[tid]] = math.inf if v == "inf" else float(v)
        values: list[tuple[float, ...] | None] = []
        for tid, _num, state in trials:
            is_complete = state == TS.COMPLETE or getattr(state, "name", state) == "COMPLETE"
            if is_complete and tid in vals:
                d = vals[tid]
                values.append(tuple(d[k] for k in sorted(d)))
            else:
                values.append(None)
        return History(
            numbers=np.array([t[1] for t in trials], dtype=np.int64),
            points=points,
            values=values,
            violations=viol,
            trial_ids=np.array(tids, dtype=np.int64),
        )

    def trial_attrs(self, trial_id: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        U = self.models.TrialUserAttributeModel.__table__
        q = U.select().with_only_columns(U.c.key, U.c.value_json).where(U.c.trial_id == int(trial_id))
        if keys is not None:
            q = q.where(U.c.key.in_(list(keys)))
        with self.engine.connect() as conn:
            return {k: json.loads(v) for k, v in conn.execute(q)}

    def trial(self, number: int) -> StoredTrial:
        """Trial `number` (its point in `set_dimensions` order, values, state and user attributes).

        Raises:
            StudyError: the study holds no trial of that number."""
        M = self.models
        T, P = M.TrialModel.__table__, M.TrialParamModel.__table__
        V, U = M.TrialValueModel.__table__, M.TrialUserAttributeModel.__table__
        with self.engine.connect() as conn:
            row = conn.execute(
                T.select().with_only_columns(T.c.trial_id, T.c.state)
                .where(T.c.study_id == self.study_id).where(T.c.number == int(number))
            ).first()
            if row is None:
                n = conn.execute(sa.select(sa.func.count()).select_from(T).where(T.c.study_id == self.study_id)
                                 ).scalar()
                raise StudyError(f"study {self.study_name!r} has no trial {number} (it holds trials 0 to {n - 1})"
                                 if n else f"study {self.study_name!r} holds no trials yet")
            tid, state = row
            params = dict(conn.execute(
                P.select().with_only_columns(P.c.param_name, P.c.param_value).where(P.c.trial_id == tid)).all())
            vals = conn.execute(
                V.select().with_only_columns(V.c.objective, V.c.value, V.c.value_type).where(V.c.trial_id == tid)
                .order_by(V.c.objective)).all()
            attrs = {k: json.loads(v) for k, v in conn.execute(
                U.select().with_only_columns(U.c.key, U.c.value_json).where(U.c.trial_id == tid))}
        state_name = getattr(state, "name", str(state))
        values: tuple[float, ...] | None = None
        if state_name == "COMPLETE" and vals:
            values = tuple(
                float(v) if getattr(t, "name", str(t)) == "FINITE"
                else (math.inf if getattr(t, "name", str(t)) == "INF_POS" else -math.inf)
                for _, v, t in vals)
        missing = [n for n in self._names if n not in params]
        if missing:
            raise StudyError(f"trial {number} of study {self.study_name!r} has no parameter {missing[0]!r}: the study "
                             "was run on another space")
        point = np.array([int(round(params[n])) for n in self._names], dtype=np.int64)
        return StoredTrial(number=int(number), state=state_name, point=point, values=values, attrs=attrs)

    def close(self) -> None:
        self.engine.dispose()
