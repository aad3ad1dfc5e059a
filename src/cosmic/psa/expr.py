"""A small, safe expression language for PSA constraints (never Python's `eval`).

The text is parsed with :mod:`ast` and only these forms are accepted, then compiled into closures:

* literals: integers, floats, strings, true/false (``True``/``False``), lists ``[a, b]``;
* names: knobs (searched, derived or fixed by the base), facts of the base (``n_npus``, ``n_dims``, ``heads``,
  ``kv_heads``, ``layers``, ``hidden``, ``ffn_hidden``, ``seq_len``, ``global_batch``) and the spellings ``Ring``,
  ``Switch``, ``FullyConnected``, ``LIFO``, ``FIFO``;
* ``x[i]`` with a constant integer index (a per-dimension knob in dimension i);
* arithmetic ``+ - * / // % **``, comparisons (chains allowed) including ``in`` / ``not in``, ``and``, ``or``,
  ``not``, and ``a if c else b``;
* functions ``prod, sum, min, max, len, abs, count(seq, value), all, any``.

Example:
    >>> e = compile_expr("topology[0] != 'Switch' and prod(npus) == n_npus", {"topology", "npus", "n_npus"})
    >>> e.fn({"topology": ("Ring", "Switch"), "npus": (4, 2), "n_npus": 8})
    True
    >>> sorted(e.refs)
    [('n_npus', None), ('npus', None), ('topology', 0)]
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Fn = Callable[[dict[str, Any]], Any]


class ExprError(ValueError):
    """The expression is not in the language (message says why)."""


def _count(seq: Iterable[Any], value: Any) -> int:
    return sum(1 for x in seq if x == value)


_MAX_INT_BITS = 1024
"""Largest integer a constraint may build by ``**`` (a constraint is evaluated for every enumerated point, so one
huge power repeated 100,000 times would hang compilation)."""
_MAX_SEQ = 10_000
"""Longest string or list a constraint may build by repetition (``'a' * 10**12`` would exhaust memory)."""


def _pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > 64:
        raise ExprError("exponent larger than 64")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a).bit_length() * b > _MAX_INT_BITS:
        raise ExprError(f"power larger than 2^{_MAX_INT_BITS}")
    return a**b


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, tuple, list)) and isinstance(n, int) and len(seq) * n > _MAX_SEQ:
            raise ExprError(f"repetition longer than {_MAX_SEQ:,} items")
    return a * b


_FUNCS: dict[str, Callable[..., Any]] = {
    "prod": lambda xs: math.prod(xs),
    "sum": lambda xs: sum(xs),
    "min": min,
    "max": max,
    "len": len,
    "abs": abs,
    "count": _count,
    "all": lambda xs: all(xs),
    "any": lambda xs: any(xs),
}
_BIN = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: _pow,
}
_CMP = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Expr:
    """A compiled expression: `fn(values) -> value`; `refs` = (name, dimension index or None for all)."""

    text: str
    fn: Fn
    refs: frozenset[tuple[str, int | None]]


def compile_expr(text: str, names: Iterable[str]) -> Expr:
    """Parse and compile `text`; raises ExprError naming the first problem."""
    if not isinstance(text, str):
        raise ExprError(f"a constraint must be a string expression, got {type(text).__name__}")
    if len(text) > 2000:
        raise ExprError("expression longer than 2000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error at column {exc.offset or 0}: {exc.msg}") from None
    known = set(names)
    refs: set[tuple[str, int | None]] = set()
    fn = _compile(tree.body, known, refs)
    return Expr(text, fn, frozenset(refs))


def _name(node: ast.Name, known: set[str], refs: set[tuple[str, int | None]], index: int | None) -> Fn:
    n = node.id
    if n not in known:
        hint = difflib.get_close_matches(n, sorted(known), n=1)
        raise ExprError(f"unknown name {n!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    refs.add((n, index))
    if index is None:
        return lambda v: v[n]
    i = index

    def get(v: dict[str, Any]) -> Any:
        seq = v[n]
        if not isinstance(seq, (tuple, list)):
            raise ExprError(f"{n!r} is not a per-dimension knob and cannot be indexed")
        if not -len(seq) <= i < len(seq):
            raise ExprError(f"{n}[{i}]: index out of range ({len(seq)} dimensions)")
        return seq[i]

    return get


def _compile(node: ast.AST, known: set[str], refs: set[tuple[str, int | None]]) -> Fn:
    if isinstance(node, ast.Constant):
        const = node.value
        if isinstance(const, (bool, int, float, str)):
            return lambda v: const
        raise ExprError(f"literal {const!r} is not allowed")
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            flag = node.id == "true"
            return lambda v: flag
        return _name(node, known, refs, None)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_compile(e, known, refs) for e in node.elts]
        return lambda v: tuple(f(v) for f in items)
    if isinstance(node, ast.Subscript):
        return _subscript(node, known, refs)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(e, known, refs) for e in node.values]
        if isinstance(node.op, ast.And):
            return lambda v: all(p(v) for p in parts)
        return lambda v: any(p(v) for p in parts)
    if isinstance(node, ast.UnaryOp):
        a = _compile(node.operand, known, refs)
        if isinstance(node.op, ast.Not):
            return lambda v: not a(v)
        if isinstance(node.op, ast.USub):
            return lambda v: -a(v)
        if isinstance(node.op, ast.UAdd):
            return a
        raise ExprError(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.BinOp):
        op = _BIN.get(type(node.op))
        if op is None:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed")
        a, b = _compile(node.left, known, refs), _compile(node.right, known, refs)
        return lambda v: op(a(v), b(v))
    if isinstance(node, ast.Compare):
        return _compare(node, known, refs)
    if isinstance(node, ast.IfExp):
        t, c, e = (_compile(x, known, refs) for x in (node.body, node.test, node.orelse))
        return lambda v: t(v) if c(v) else e(v)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
            what = f"function {node.func.id!r} is" if isinstance(node.func, ast.Name) else "calling an expression is"
            raise ExprError(f"{what} not allowed; only {', '.join(_FUNCS)} may be called")
        if node.keywords:
            raise ExprError("keyword arguments are not allowed")
        f = _FUNCS[node.func.id]
        args = [_compile(a, known, refs) for a in node.args]
        return lambda v: f(*(a(v) for a in args))
    raise ExprError(f"{type(node).__name__} is not allowed in a constraint")


def _subscript(node: ast.Subscript, known: set[str], refs: set[tuple[str, int | None]]) -> Fn:
    """``name[i]`` or ``name[-i]`` with a constant integer i (the only indexing allowed)."""
    sl = node.slice
    if (
        isinstance(node.value, ast.Name)
        and isinstance(sl, ast.Constant)
        and isinstance(sl.value, int)
        and not isinstance(sl.value, bool)
    ):
        return _name(node.value, known, refs, sl.value)
    if (
        isinstance(node.value, ast.Name)
        and isinstance(sl, ast.UnaryOp)
        and isinstance(sl.op, ast.USub)
        and isinstance(sl.operand, ast.Constant)
        and isinstance(sl.operand.value, int)
    ):
        return _name(node.value, known, refs, -sl.operand.value)
    raise ExprError("only name[constant integer] indexing is allowed")


def _compare(node: ast.Compare, known: set[str], refs: set[tuple[str, int | None]]) -> Fn:
    """A chained comparison ``a < b <= c``, evaluated left to right and stopping at the first false link."""
    first = _compile(node.left, known, refs)
    ops = []
    for o, r in zip(node.ops, node.comparators, strict=True):
        f = _CMP.get(type(o))
        if f is None:
            raise ExprError(f"comparison {type(o).__name__} is not allowed")
        ops.append((f, _compile(r, known, refs)))

    def cmp(v: dict[str, Any]) -> bool:
        left = first(v)
        for f, r in ops:
            right = r(v)
            if not f(left, right):
                return False
            left = right
        return True

    return cmp
