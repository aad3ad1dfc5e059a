"""The stored rows of a batch of evaluations, read from the batch's columns.

`trial_rows(space, eb)` gives, row for row, what ``_row(space, eb.evaluation(i, config=False))`` gives (the
same knobs, status, figures, values, violation and reason), without materialising a `Result` per row: each figure
column is turned into Python numbers once (``tolist``) and the rows are cut from those lists. Rows the batch did
not price or time (evaluated one at a time, or memory-infeasible and not timed) take the per-row path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cosmic.explore._objective import MEMORY, OK, STATUS_NAMES, EvalBatch, memory_reason
from cosmic.explore._storage import TrialRow
from cosmic.sim.result import BREAKDOWN_KEYS, MOE_BREAKDOWN_KEYS

_FLOATS = ("step_time_s", "tokens_per_s", "mfu", "hfu", "weights_bytes", "gradients_bytes", "optimizer_bytes",
           "activations_bytes", "memory_capacity_bytes")
_NET = ("network_cost_usd", "total_bandwidth_gbps")
_INTS = ("n_npus", "micro_batches", "critical_stage")


def _num(v: float) -> Any:
    """A float figure as JSON (`cosmic.explore._trials.figures`: non-finite floats as strings)."""
    return v if math.isfinite(v) else str(v)


def _figure_rows(eb: EvalBatch, idx: list[int]) -> list[dict[str, Any]]:
    """`cosmic.explore._trials.figures(eb.batch.result(i))` for the rows `idx` the batch timed."""
    b = eb.batch
    f = b.figures
    sel = np.asarray(idx, dtype=np.int64)
    cols: list[tuple[str, list[Any], bool]] = []  # (key, values of the selected rows, may be non-finite)
    for k in _FLOATS:
        cols.append((k, _pick(f[k], sel, float), True))
    cols.append(("fits_memory", _pick(f["fits_memory"], sel, bool), False))
    for k in _NET:
        cols.append((k, _pick(f[k], sel, float), True))
    c = b.columns
    moe = [c.models[m].moe is not None for m in c.model[sel].tolist()]
    keys = MOE_BREAKDOWN_KEYS if any(moe) else BREAKDOWN_KEYS
    bd = {k: _pick(b.breakdown[k], sel, float) for k in keys}
    per_dim = b.comm_by_network_dim_s[sel].tolist()
    tail = [(k, _pick(f[k], sel, int)) for k in _INTS] + [("model_flops_per_step",
                                                           _pick(f["model_flops_per_step"], sel, float))]
    out = []
    for r, i in enumerate(idx):
        row: dict[str, Any] = {}
        for k, vals, maybe_inf in cols:
            row[k] = _num(vals[r]) if maybe_inf else vals[r]
        for k in (MOE_BREAKDOWN_KEYS if moe[r] else BREAKDOWN_KEYS):
            row[k] = _num(bd[k][r])
        for d, t in enumerate(per_dim[r]):
            row[f"comm_dim{d}_s"] = _num(float(t))
        for k, vals in tail:
            row[k] = _num(vals[r]) if k == "model_flops_per_step" else vals[r]
        row["evidence"] = b.evidence(i).to_record()
        out.append(row)
    return out


def _pick(col: Any, sel: np.ndarray, cast: Callable[[Any], Any]) -> list[Any]:
    """The values of a figure column (or a constant) at the rows `sel`, as Python values of type `cast`."""
    if np.ndim(col) == 0:
        return [cast(col)] * len(sel)
    return [cast(x) for x in np.asarray(col)[sel].tolist()]


def trial_rows(space: Any, eb: EvalBatch, row: Callable[[Any, Any], TrialRow]) -> list[TrialRow]:
    """The `TrialRow` of every row of `eb` (see the module docstring); `row(space, evaluation)` is the per-row
    path (`cosmic.explore._study._row`), used for the rows the batch did not time."""
    from cosmic.explore._study import jsonable

    n = len(eb)
    b = eb.batch
    timed = np.zeros(n, dtype=bool)
    if b is not None:
        timed = np.asarray(b.ok, dtype=bool) & (np.ones(n, dtype=bool) if b.timed is None else b.timed)
        for i in eb.one:
            timed[i] = False
    fast = np.flatnonzero(timed).tolist()
    figs = dict(zip(fast, _figure_rows(eb, fast), strict=True)) if fast else {}
    status = eb.status.tolist()
    values, raw, viol = eb.values.tolist(), eb.raw.tolist(), eb.violation.tolist()
    cap = memory = None
    if fast:
        everything = np.arange(n)
        cap = _pick(b.figures["memory_capacity_bytes"], everything, float)
        memory = _pick(b.figures["memory_bytes"], everything, float)
    out = []
    for i in range(n):
        fig = figs.get(i)
        if fig is None:
            out.append(row(space, eb.evaluation(i, config=False)))
            continue
        st = status[i]
        attrs: dict[str, Any] = {"knobs": jsonable(space.knobs(eb.points[i])), "status": STATUS_NAMES[st],
                                 "figures": fig}
        reason = None
        if st == MEMORY:
            assert cap is not None and memory is not None
            reason = memory_reason(memory[i], cap[i], timed=True)
        elif st != OK:
            reason = f"objective not finite: {tuple(raw[i])}"
        if st != OK:
            attrs["unconstrained_values"] = list(raw[i])
        out.append(TrialRow(point=eb.points[i], values=tuple(values[i]) if st == OK else None,
                            violation=viol[i], reason=reason, attrs=attrs))
    return out
