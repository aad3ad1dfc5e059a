"""Fuzzing generators and the robustness property, shared by ``tests/fuzz`` and ``benchmarks/fuzz.py``.

Four families of cases, each a hypothesis strategy that yields a :class:`Case`:

* ``config_cases``: a valid `cosmic simulate` config (the examples and `cosmic psa sample` outputs) with one to
  four random mutations at random key paths (replace, delete, insert, wrap, swap, numeric or string tweaks, and a
  coherent scaling that keeps the config valid while pushing NPU counts and batch sizes to extremes);
* ``yaml_cases``: random YAML structures and random text (including binary, alias bombs, deep nesting);
* ``psa_cases``: valid PSA files (a small test space and built-in presets with their base inline) mutated the same
  way, plus PSA-specific values (odd domains, derived rules, constraint expressions from a small grammar);
* ``api_cases``: mutated configs as mappings for ``cosmic.config_from_dict`` + ``cosmic.simulate``.

The property (:func:`check_case`): the CLI exits 0 with finite, non-negative numbers (step time > 0), or exits 2
with exactly one stderr line ``error: <file>: ...``; nothing else, never a traceback, and within a time bound.
The Python API raises nothing but :class:`cosmic.CosmicError`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

import cosmic
from cosmic.psa.knobs import KNOBS, STACKS
from cosmic.sim.config import SystemConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

CASE_LIMIT_S = float(os.environ.get("COSMIC_FUZZ_CASE_LIMIT_S", "30.0"))
"""A case slower than this fails; a case still running after `HANG_LIMIT_S` is interrupted and fails.

In the test suite these catch hangs and blow-ups, not slowness: cases take 0.02-3 s on a 2-core machine and a busy
CI machine runs the suite up to 4x slower. `benchmarks/fuzz.py` holds every case to 10 s."""
HANG_LIMIT_S = 2 * CASE_LIMIT_S

DEEP = 1000
"""Nesting depth of the deeply nested values."""

# ---- seeds: valid inputs to start from ---------------------------------------------------------------------------


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _sampled_configs() -> list[dict[str, Any]]:
    """A few `cosmic psa sample` outputs: complete, fully expanded configurations."""
    import numpy as np

    from cosmic.psa import load_psa

    out = []
    for i, preset in enumerate(("cosmic-s1-gpt3-13b-full", "cosmic-s2-vit-base-full", "cosmic-s3-gpt3-175b-full")):
        space = load_psa(preset)
        for p in space.sample(np.random.default_rng(i), 2):
            out.append(space.decode(p).to_yaml_dict())
    return out


def _tiny_psa() -> dict[str, Any]:
    from tests.psa.psa_testdata import TINY_PSA

    return copy.deepcopy(TINY_PSA)


def _preset_psas() -> list[dict[str, Any]]:
    from cosmic.psa.presets import preset_data

    names = ("cosmic-s1-gpt3-13b-workload", "cosmic-s2-gpt3-175b-collective", "cosmic-s3-vit-large-network",
             "cosmic-s1-vit-base-full")
    return [preset_data(n)[1] for n in names]


_EXAMPLES = [_load(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
EXPANDED_SEEDS: list[dict[str, Any]] = [cosmic.config_from_dict(d).to_yaml_dict() for d in _EXAMPLES] + \
    _sampled_configs()
"""Valid configurations with every section written out (no catalog names), so every number can be tweaked."""
CONFIG_SEEDS: list[dict[str, Any]] = _EXAMPLES + EXPANDED_SEEDS
PSA_SEEDS: list[dict[str, Any]] = [_tiny_psa(), *_preset_psas()]
for _s in PSA_SEEDS[1:2]:  # one preset with its base as a path (relative to the PSA file is tested elsewhere)
    _s = copy.deepcopy(_s)
    _s["base"] = str(EXAMPLES / "cosmic-s1-gpt3-175b.yaml")
    PSA_SEEDS.append(_s)


def _schema_keys() -> list[str]:
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "properties" and isinstance(v, dict):
                    keys.update(v)
                walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)

    walk(SystemConfig.model_json_schema())
    return sorted(keys)


CONFIG_KEYS = _schema_keys() + ["base", "astra_sim", "fabric"]
PSA_KEYS = ["name", "description", "base", "knobs", "derived", "constraints", "objectives", "memory_fit", "mode",
            "values", "range", "pow2", "float_range", "step", "num", "rule", "from", *STACKS, *KNOBS]

# ---- values ------------------------------------------------------------------------------------------------------


def deep_list(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = [v]
    return v


def deep_dict(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = {"a": v}
    return v


_SPECIAL = [
    0, -1, 1, 2, 3, 7, 64, 1000, 2**24, 2**24 + 1, 10**9, 10**18, 2**63, 2**64, -(10**9), 10**100,
    0.0, -0.0, 0.5, 1e-300, 1e9, 1e300, -1e300, 5e-324, math.nan, math.inf, -math.inf,
    True, False, None, "", " ", "auto", "none", "Ring", "Switch", "FullyConnected", "fsdp", "interleaved", "1f1b",
    "gpt3-175b", "a100-80gb", "cosmic-s1", "cosmic-s9", "ring", "halvingDoubling", "double_binary_tree", "LIFO",
    "localBWAware", "0", "1e9", "nan", ".inf", "-1", "\x00", "\n", "a\nb", "日本語", "🚀" * 10, "\u202e\u0301",
    "dp,tp,sp,pp", "/", "/dev/null", "../../etc/passwd", "{a: 1}", "[1, 2]", "!!python/object:os.system",
]

scalars = st.one_of(
    st.sampled_from(_SPECIAL),
    st.just(5000).map(lambda n: 10**n),  # more digits than Python prints (built lazily: hypothesis reprs elements)
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.booleans(),
)
huge_strings = st.sampled_from([10**4, 10**6]).map(lambda n: "é" * n)
deep_values = st.sampled_from([50, DEEP]).flatmap(lambda n: st.sampled_from([deep_list(n), deep_dict(n)]))
small_values = st.recursive(
    scalars,
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch, max_size=3),
    max_leaves=6,
)
nasty = st.one_of(scalars, scalars, small_values, huge_strings, deep_values)
keys_config = st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=8), st.sampled_from([0, 1, None, True, 1.5]))
keys_psa = st.one_of(st.sampled_from(PSA_KEYS), st.text(max_size=8), st.sampled_from([0, None, True]))

_NUMS = st.sampled_from([0, 1, 2, 3, 4, 16, 512, 1000, 2**20, 10**6, 10**9, 10**18, 1e300, -1, -5, 0.5, 1.5,
                         math.nan, math.inf, "8", None])
domains = st.one_of(
    st.lists(scalars, max_size=5),
    st.fixed_dictionaries({"values": st.lists(scalars | _NUMS, max_size=6)}),
    st.fixed_dictionaries({"range": st.lists(_NUMS, min_size=0, max_size=3)},
                          optional={"step": _NUMS, "mode": st.sampled_from(["scalar", "per_dim", "shared", "x"])}),
    st.fixed_dictionaries({"pow2": st.lists(_NUMS, min_size=0, max_size=3)}),
    st.fixed_dictionaries({"float_range": st.lists(_NUMS, min_size=2, max_size=2)},
                          optional={"step": _NUMS, "num": _NUMS}),
)
_ATOMS = ["dp", "tp", "pp", "sp", "npus", "topology", "chunks", "n_npus", "n_dims", "heads", "layers", "hidden",
          "seq_len", "global_batch", "npu_bandwidth_gibps", "link_gibps", "all_reduce", "x", "0", "1", "2", "64",
          "9", "1e308", "10**18", "'Switch'", "'a'", "Ring", "true", "[1, 2]", "npus[0]", "topology[1]", "npus[-1]",
          "npus[99]", "prod(npus)", "sum(npus)", "len(npus)", "count(topology, 'Ring')", "max(npus)", "abs(-1)"]
_OPS = [" + ", " - ", " * ", " / ", " // ", " % ", " ** ", " == ", " != ", " < ", " <= ", " in ", " not in ",
        " and ", " or "]
_NASTY_EXPR = ["9**64**64", "(2**64)**64**2", "((9**64)**64)**64", "'a' * 10**12", "[1] * 10**9",
               "'ab' * n_npus**4", "[0] * (n_npus * n_npus * n_npus)", "1/0", "1 % 0", "2.0**1024", "-(2**64)**64",
               "sum([1e308, 1e308]) > 0", "abs('x')", "max()", "len(1)", "__import__('os')", "npus.count",
               "[x for x in npus]", "lambda: 1", "(" * 200 + "1" + ")" * 200, "not " * 500 + "1",
               "- " * 900 + "1", "1 < " * 600 + "2", "a" * 3000, "'" , "\x00", ""]


@st.composite
def expressions(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(_NASTY_EXPR))
    parts = [draw(st.sampled_from(_ATOMS))]
    for _ in range(draw(st.integers(0, 5))):
        parts += [draw(st.sampled_from(_OPS)), draw(st.sampled_from(_ATOMS))]
    text = "".join(parts)
    if draw(st.booleans()):
        text = "not (" + text + ")" if draw(st.booleans()) else "(" + text + ")" + draw(st.sampled_from(_OPS)) + "1"
    return text


psa_values = st.one_of(
    domains,
    expressions(),
    st.fixed_dictionaries({"rule": st.sampled_from(["npus_quotient", "copy", "algorithm_from_topology",
                                                    "per_link", "nope", 3]),
                           "from": st.one_of(st.sampled_from(sorted(KNOBS)),
                                             st.lists(st.sampled_from(sorted(KNOBS)), max_size=4))}),
    st.lists(st.sampled_from(["step_time", "memory", "tokens_per_s_per_usd", "step_time*network_cost", "x",
                              "step_time*total_bandwidth"]), max_size=3),
    st.dictionaries(st.text(max_size=4), expressions(), max_size=3),
)

# ---- mutation ----------------------------------------------------------------------------------------------------


def _paths(tree: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    stack: list[tuple[tuple[Any, ...], Any]] = [((), tree)]
    while stack:
        path, node = stack.pop()
        if len(path) > 12:  # inside a deeply nested value: do not list every level
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((*path, k))
            stack.append(((*path, k), v))
    return out


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def _tweak(draw: st.DrawFn, v: Any) -> Any:
    if isinstance(v, bool):
        return draw(st.sampled_from([not v, 0, 1, 2, "yes", "true", None]))
    if isinstance(v, (int, float)):
        fs: list[Callable[[Any], Any]] = [
            lambda x: 0, lambda x: -x, lambda x: x * 2, lambda x: x * 1000, lambda x: x * 10**9,
            lambda x: x * 1e300, lambda x: x / 3, lambda x: x + 1, lambda x: x - 1, lambda x: float(x),
            lambda x: str(x), lambda x: [x], lambda x: math.nan, lambda x: math.inf, lambda x: x + 0.5,
        ]
        try:
            return draw(st.sampled_from(fs))(v)
        except (OverflowError, ValueError):  # e.g. a 5,000-digit integer times a float
            return draw(nasty)
    if isinstance(v, str):
        fs = [str.upper, lambda x: x + "x", lambda x: x[:-1], lambda x: "", lambda x: x * 1000,
              lambda x: x + "\n" + x, lambda x: x.replace("-", "_"), lambda x: " " + x, lambda x: [x]]
        return draw(st.sampled_from(fs))(v)
    return draw(nasty)


def _scale(draw: st.DrawFn, tree: Any) -> bool:
    """Multiply dp, one network dimension and the global batch by 2^k: stays valid, reaches extreme sizes."""
    if not isinstance(tree, dict):
        return False
    par, net, tr = tree.get("parallel"), tree.get("network"), tree.get("training")
    if not (isinstance(par, dict) and isinstance(net, dict) and isinstance(tr, dict)):
        return False
    dims = net.get("dims")
    if not (isinstance(dims, list) and dims and all(isinstance(d, dict) and isinstance(d.get("npus"), int)
                                                       for d in dims)):
        return False
    what = draw(st.sampled_from(["dp", "pp", "sp", "tp"]))
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (par.get(what, 1), tr.get("global_batch"))):
        return False
    k = draw(st.integers(1, 40))
    i = draw(st.integers(0, len(dims) - 1))
    f = 1 << k
    dims[i]["npus"] *= f
    par[what] = par.get(what, 1) * f
    if what == "dp":
        tr["global_batch"] *= f
    net.pop("npus", None)
    return True


def _deepcopy(x: Any) -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20 * DEEP + 2000))
    try:
        return copy.deepcopy(x)
    finally:
        sys.setrecursionlimit(old)


OPS = ("replace", "replace", "delete", "insert", "wrap", "swap", "tweak", "tweak", "scale", "special")


@st.composite
def mutate(draw: st.DrawFn, seeds: list[Any], keys: st.SearchStrategy[Any],
           special: st.SearchStrategy[Any] | None = None, max_mutations: int = 4) -> Any:
    """A deep copy of one seed with 1..max_mutations random mutations at random key paths."""
    tree = _deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_mutations))):
        op = draw(st.sampled_from(OPS))
        paths = _paths(tree)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        if op == "scale" and _scale(draw, tree):
            continue
        if not path:
            if draw(st.integers(0, 9)) == 0:
                tree = draw(nasty)
            continue
        parent, key = _get(tree, path[:-1]), path[-1]
        if not isinstance(parent, (dict, list)):
            continue
        value = parent[key]
        if op == "delete":
            del parent[key]
        elif op == "insert":
            target = value if isinstance(value, (dict, list)) else parent
            if isinstance(target, dict):
                target[draw(keys)] = draw(nasty)
            else:
                target.insert(draw(st.integers(0, len(target))), draw(nasty))
        elif op == "wrap":
            parent[key] = draw(st.sampled_from([[value], {"base": value}, [value, value], {draw(keys): value}]))
        elif op == "swap":
            other = paths[draw(st.integers(0, len(paths) - 1))]
            parent[key] = _deepcopy(_get(tree, other)) if other[:len(path)] != path else draw(nasty)
        elif op == "tweak":
            parent[key] = _tweak(draw, value)
        elif op == "special" and special is not None:
            parent[key] = draw(special)
        else:
            parent[key] = draw(nasty)
    return tree


# ---- cases -------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One fuzz input: `kind` is config (CLI simulate), psa (CLI psa show) or api (Python API)."""

    kind: str
    data: Any = None
    text: bytes | None = None  # raw file content instead of YAML-dumped data
    json_out: bool = True
    argv: list[str] | None = None  # kind "argv": a command line, FILE standing for a valid config

    def describe(self, limit: int = 300) -> str:
        body = self.text if self.text is not None else self.argv if self.kind == "argv" else self.data
        try:
            s = repr(body)
        except ValueError:  # an integer of more than 4,300 digits
            s = "<unprintable: holds an integer of more than 4,300 digits>"
        return f"{self.kind}: " + (s if len(s) <= limit else s[:limit] + f"... ({len(s):,} chars)")


def dump_yaml(data: Any) -> bytes:
    """YAML text of `data` (deeply nested values need a higher recursion limit while dumping)."""
    old, old_digits = sys.getrecursionlimit(), sys.get_int_max_str_digits()
    sys.setrecursionlimit(max(old, 20 * DEEP + 2000))
    sys.set_int_max_str_digits(0)  # write 10**5000 in full; cosmic reads it under the default limit
    try:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: a 2 MB string in 0.1 s instead of 3 s
        return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False).encode("utf-8")
    except (yaml.YAMLError, ValueError, TypeError):  # e.g. a non-string key that YAML can write but not as plain
        return json.dumps(data, default=str).encode("utf-8", "surrogatepass")
    finally:
        sys.setrecursionlimit(old)
        sys.set_int_max_str_digits(old_digits)


_YAML_TEXTS = [
    b"", b"---\n", b"--- 1\n--- 2\n", b"[", b"{a: 1", b"a: b: c", b"\t- x", b"\xff\xfe\x00",
    b"!!python/object/apply:os.system ['true']",
    b"a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    b"model: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\nnetwork: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
    b"model: &m {base: gpt3-175b}\naccelerator: *m\n",
    b"model: gpt3-175b\nmodel: gpt3-13b\n",
    b"[" * DEEP + b"]" * DEEP, b"{a: " * DEEP + b"1" + b"}" * DEEP, b"- " * 200 + b"x",
    b"model: " + b"9" * 5000 + b"\n", b"system: " + b"x" * 1_000_000 + b"\n",
    b"training: {global_batch: .nan}\n", b"? [1, 2]\n: 3\n", b"1: 2\n", b"null\n", b"%YAML 9.9\n---\na: 1\n",
]
_TOP_CONFIG = ["model", "accelerator", "network", "training", "parallel", "collective", "system", "name"]
random_yaml = st.recursive(
    scalars,
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.sampled_from(_TOP_CONFIG) | keys_config, ch, max_size=5),
    max_leaves=20,
)


def config_cases() -> st.SearchStrategy[Case]:
    return st.builds(Case, st.just("config"), mutate(CONFIG_SEEDS, keys_config), json_out=st.integers(0, 4).map(bool))


_EXTREME = [0, 1, 5e-324, 1e-300, 1e-9, 1e9, 1e12, 1e300, 2**24, 2**31, 2**40, 10**9, math.inf, 1.0000001]


@st.composite
def extremes(draw: st.DrawFn) -> Any:
    """A valid, fully written-out config with one to three numbers set to extremes (and maybe scaled up)."""
    tree = _deepcopy(draw(st.sampled_from(EXPANDED_SEEDS)))
    paths = [p for p in _paths(tree) if p and isinstance(_get(tree, p), (int, float))
             and not isinstance(_get(tree, p), bool)]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        v = draw(st.sampled_from(_EXTREME))
        _get(tree, path[:-1])[path[-1]] = v if isinstance(_get(tree, path), float) or not isinstance(v, float) \
            else draw(st.sampled_from([0, 1, 2**24, 2**40, 10**9, 10**4]))
    if draw(st.booleans()):
        _scale(draw, tree)
    return tree


def extreme_cases() -> st.SearchStrategy[Case]:
    return st.one_of(st.builds(Case, st.just("config"), extremes()), st.builds(Case, st.just("api"), extremes()))


def yaml_cases() -> st.SearchStrategy[Case]:
    texts = st.one_of(st.sampled_from(_YAML_TEXTS), st.binary(max_size=64), st.text(max_size=64).map(str.encode))
    kind = st.sampled_from(["config", "psa"])
    return st.one_of(
        st.builds(Case, kind, random_yaml),
        st.builds(Case, kind, st.dictionaries(st.sampled_from(_TOP_CONFIG), random_yaml, min_size=1, max_size=6)),
        st.builds(lambda k, t: Case(k, text=t), kind, texts),
    )


def psa_cases() -> st.SearchStrategy[Case]:
    return st.builds(Case, st.just("psa"), mutate(PSA_SEEDS, keys_psa, special=psa_values))


def api_cases() -> st.SearchStrategy[Case]:
    return st.builds(Case, st.just("api"), mutate(CONFIG_SEEDS, keys_config))


_ARGS = ["simulate", "psa", "show", "sample", "list", "catalog", "schema", "models", "systems", "nope", "FILE",
         "FILE", "cosmic-s1-gpt3-13b-network", "cosmic-s9-x", "-n", "--n", "0", "-1", "3", "1e9", "x", "--seed",
         "--json", "--json", "--help", "--out", "-", "--", "", "é", "/", "/dev/null", "missing.yaml"]


def argv_cases() -> st.SearchStrategy[Case]:
    """Command lines built from the real commands, options and odd values (usage errors must be one line)."""
    first = st.sampled_from([["simulate"], ["psa", "show"], ["psa", "sample"], ["catalog"], ["psa"], []])
    rest = st.lists(st.sampled_from(_ARGS), max_size=5)
    return st.builds(lambda a, b: Case("argv", argv=a + b), first, rest)


def all_cases() -> st.SearchStrategy[Case]:
    return st.one_of(config_cases(), extreme_cases(), yaml_cases(), psa_cases(), psa_cases(), api_cases(),
                     argv_cases())


# ---- running a case ----------------------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm inside a case that runs longer than HANG_LIMIT_S."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only; elsewhere only the elapsed time is checked)."""
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    error: str | None = None  # traceback of an escaped exception, or "timeout"
    problems: list[str] = field(default_factory=list)


def run_cli(args: list[str]) -> Outcome:
    """`cosmic ARGS` in-process through `cosmic.cli.main` (the one-line error wrapper), capturing both streams."""
    from cosmic import cli

    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    error = None
    old_argv = sys.argv
    sys.argv = ["cosmic", *args]
    cli._DEBUG["on"] = False
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(HANG_LIMIT_S):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CaseTimeout:
        code, error = None, f"timeout: still running after {HANG_LIMIT_S:.0f} s"
    except BaseException:
        code, error = None, traceback.format_exc()
    finally:
        sys.argv = old_argv
    return Outcome(code, out.getvalue(), err.getvalue(), time.perf_counter() - t0, error)


def _numbers(x: Any) -> Iterator[float]:
    if isinstance(x, bool):
        return
    if isinstance(x, (int, float)):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, list):
        for v in x:
            yield from _numbers(v)


def result_problems(d: dict[str, Any]) -> list[str]:
    """Problems of a result dict: non-finite or negative numbers, non-positive step time; the evidence's signed
    errors may be negative (cosmic too fast) but are finite and above -100% (a step time cannot be negative)."""
    figures = {k: v for k, v in d.items() if k != "evidence"}
    probs = [f"bad number {v!r}" for v in _numbers(figures) if not (math.isfinite(v) and v >= 0)]
    ev = d.get("evidence")
    if isinstance(ev, dict):
        errs = [ev.get("p50_error_pct"), ev.get("p90_error_pct")]
        probs += [f"bad evidence error {e!r}" for e in errs if e is not None and not (math.isfinite(e) and e > -100)]
        if not (isinstance(ev.get("runs"), int) and ev["runs"] >= 0):
            probs.append(f"bad evidence runs {ev.get('runs')!r}")
    st_ = d.get("step_time_s")
    if not (isinstance(st_, (int, float)) and st_ > 0):
        probs.append(f"step_time_s = {st_!r}")
    return probs


def _check_exit(o: Outcome, file: str, what: str) -> None:
    if o.error is not None:
        o.problems.append(o.error)
        return
    if o.elapsed_s > CASE_LIMIT_S:
        o.problems.append(f"took {o.elapsed_s:.1f} s (limit {CASE_LIMIT_S:.0f} s)")
    if "Traceback" in o.stderr or "Traceback" in o.stdout:
        o.problems.append("traceback printed")
    if o.code == 2:
        lines = o.stderr.splitlines()
        if len(lines) != 1:
            o.problems.append(f"exit 2 with {len(lines)} stderr lines: {o.stderr[:300]!r}")
        elif not lines[0].startswith("error: "):
            o.problems.append(f"error line does not start with 'error: ': {lines[0][:200]!r}")
        elif file not in lines[0]:
            o.problems.append(f"error line does not name the file: {lines[0][:200]!r}")
    elif o.code == 0:
        if o.stderr.strip():
            o.problems.append(f"exit 0 but stderr: {o.stderr[:200]!r}")
    else:
        o.problems.append(f"{what}: exit code {o.code}; stderr {o.stderr[:300]!r}")


def _check_simulate(o: Outcome, json_out: bool) -> None:
    if o.code != 0 or o.problems:
        return
    if not json_out:
        if "step time" not in o.stdout:
            o.problems.append("table output without a step time")
        return
    try:
        d = json.loads(o.stdout)
    except ValueError as exc:
        o.problems.append(f"stdout is not JSON: {exc}")
        return
    o.problems += result_problems(d)


def _check_psa(o: Outcome, file: str) -> None:
    """After `psa show` succeeded: its sizes are sane, and configs sampled from the space simulate."""
    if o.code != 0 or o.problems:
        return
    try:
        d = json.loads(o.stdout)
    except ValueError as exc:
        o.problems.append(f"stdout is not JSON: {exc}")
        return
    for k in ("space_size_total", "space_size_feasible", "encoded_box_size"):
        if not (isinstance(d.get(k), int) and d[k] >= 1):
            o.problems.append(f"{k} = {d.get(k)!r}")
    import numpy as np

    from cosmic.psa import load_psa

    t0 = time.perf_counter()
    try:
        with time_limit(HANG_LIMIT_S):
            space = load_psa(Path(file))
            for p in space.sample(np.random.default_rng(0), 2):
                try:
                    r = cosmic.simulate(space.decode(p))
                except cosmic.CosmicError:
                    continue
                o.problems += [f"sampled config: {p}" for p in result_problems(r.to_dict())]
    except cosmic.CosmicError:
        pass
    except CaseTimeout:
        o.problems.append(f"sampling: timeout after {HANG_LIMIT_S:.0f} s")
    except Exception:
        o.problems.append("sampling: " + traceback.format_exc())
    if time.perf_counter() - t0 > CASE_LIMIT_S:
        o.problems.append(f"sampling took {time.perf_counter() - t0:.1f} s")


def _run_argv(argv: list[str], workdir: Path) -> Outcome:
    """Any exit code but 0 or 2 is wrong; exit 2 prints one `error: ` line; help (exit 0) may print anything."""
    valid = str(EXAMPLES / "cosmic-s1-gpt3-175b.yaml")
    args = [valid if a == "FILE" else str(workdir / "out") if a == "-" else a for a in argv]
    with contextlib.chdir(workdir):  # a relative `--out` or file name stays inside the scratch folder
        o = run_cli(args)
    if o.error is not None:
        o.problems.append(o.error)
    elif o.code == 2:
        lines = o.stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("error: "):
            o.problems.append(f"exit 2 without one error line: {o.stderr[:300]!r}")
    elif o.code != 0:
        o.problems.append(f"exit code {o.code}; stderr {o.stderr[:300]!r}")
    if o.elapsed_s > CASE_LIMIT_S:
        o.problems.append(f"took {o.elapsed_s:.1f} s (limit {CASE_LIMIT_S:.0f} s)")
    return o


def run_api(data: Any) -> Outcome:
    """`config_from_dict` + `simulate`: only CosmicError may escape, its message one line; results sane."""
    t0 = time.perf_counter()
    o = Outcome(0, "", "", 0.0)
    try:
        with time_limit(HANG_LIMIT_S):
            cfg = cosmic.config_from_dict(data)
            r = cosmic.simulate(cfg)
        o.problems += result_problems(r.to_dict())
    except cosmic.CosmicError as exc:
        o.code = 2
        if "\n" in str(exc) or not str(exc):
            o.problems.append(f"{type(exc).__name__} message is not one line: {str(exc)[:200]!r}")
    except CaseTimeout:
        o.code, o.error = None, "timeout"
        o.problems.append(f"timeout: still running after {HANG_LIMIT_S:.0f} s")
    except BaseException:
        o.code = None
        o.problems.append(traceback.format_exc())
    o.elapsed_s = time.perf_counter() - t0
    if o.elapsed_s > CASE_LIMIT_S:
        o.problems.append(f"took {o.elapsed_s:.1f} s (limit {CASE_LIMIT_S:.0f} s)")
    return o


def check_case(case: Case, workdir: Path | None = None) -> Outcome:
    """Run one case and return its outcome; `outcome.problems` is empty when the property holds."""
    if case.kind == "api":
        return run_api(case.data)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cosmic-fuzz-")))
        if case.kind == "argv":
            return _run_argv(case.argv or [], workdir)
        path = workdir / ("space.yaml" if case.kind == "psa" else "config.yaml")
        path.write_bytes(case.text if case.text is not None else dump_yaml(case.data))
        if case.kind == "psa":
            o = run_cli(["psa", "show", str(path), "--json"])
            _check_exit(o, str(path), "psa show")
            _check_psa(o, str(path))
        else:
            args = ["simulate", str(path)] + (["--json"] if case.json_out else [])
            o = run_cli(args)
            _check_exit(o, str(path), "simulate")
            _check_simulate(o, case.json_out)
        return o
