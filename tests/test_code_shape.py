"""Size limits of the simulator's code: functions of at most 80 lines, classes under 400, `sim/engine.py` at most
500 lines, in the packages where the step's formulas live (and in `cosmic.psa`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cosmic"
PACKAGES = ("sim", "serving", "workload", "collective", "psa")
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 400
MAX_ENGINE_LINES = 500


def _files() -> list[Path]:
    return sorted(f for pkg in PACKAGES for f in (SRC / pkg).rglob("*.py"))


def too_long(source: str) -> list[str]:
    """The functions and classes of `source` over the limits, as ``"name: N lines"``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        elif isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        else:
            continue
        n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
        if n > limit:
            out.append(f"{node.name}: {n} lines")
    return out


def test_the_checker_finds_long_functions_and_classes() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert too_long(f"def f():\n{body}\n") == [f"f: {MAX_FUNCTION_LINES + 1} lines"]
    assert too_long(f"def f():\n{body[: body.rindex(chr(10))]}\n") == []
    methods = "\n".join(f"    def m{i}(self):\n        pass" for i in range(MAX_CLASS_LINES // 2))
    assert too_long(f"class C:\n{methods}\n") == [f"C: {MAX_CLASS_LINES + 1} lines"]


def test_the_packages_are_found() -> None:
    files = _files()
    for pkg in PACKAGES:
        assert any(f.parent.name == pkg for f in files), pkg
    assert SRC / "workload" / "layers.py" in files


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SRC)))
def test_functions_and_classes_are_short(path: Path) -> None:
    assert too_long(path.read_text()) == []


def test_engine_is_short() -> None:
    assert len((SRC / "sim" / "engine.py").read_text().splitlines()) <= MAX_ENGINE_LINES
