"""The README's commands run as a new user runs them: on the base install, from a clone's top folder.

Every line of the README's plain code blocks that starts with ``cosmic `` is run in order, in one scratch folder
laid out like a clone (``examples/`` and ``benchmarks/`` linked, ``../shared`` linked when it exists), with
``--budget N`` replaced by ``--budget max(10, N // 50)`` and ``--budget 100`` added to ``explore``, ``study`` and
``demo`` lines that give none, so that the tour takes about a minute. The extras (torch, scipy, stable-baselines3,
ray, psycopg2) cannot be imported by these processes, as on ``pip install .``. Each line must exit 0.

The README's Python blocks run the same way, from a folder outside the clone: the package alone must be enough.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

README = ROOT / "README.md"
EXTRAS = ("torch", "scipy", "stable_baselines3", "ray", "psycopg2")
BLOCKER = f'''"""Make the optional extras unimportable, as on a base install (written by {Path(__file__).name})."""
import importlib.abc
import sys

_BLOCKED = {EXTRAS!r}


class _Base(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (base install: extras not installed)")
        return None


sys.meta_path.insert(0, _Base())
'''


def blocks(kind: str) -> list[str]:
    """The README's fenced blocks: plain ones (kind "") or of a language ("python")."""
    text = README.read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
            if m.group(1) == kind]


def tour() -> list[list[str]]:
    cmds = []
    for block in blocks(""):
        for line in block.splitlines():
            if not line.startswith("cosmic "):
                continue
            args = shlex.split(line, comments=True)
            cmds.append(_small(args))
    return cmds


def _small(args: list[str]) -> list[str]:
    args = list(args)
    if "--budget" in args:
        i = args.index("--budget") + 1
        args[i] = str(max(10, int(args[i]) // 50))
    elif len(args) > 1 and args[1] in ("explore", "study", "demo") and "--show" not in args:
        args += ["--budget", "100"]
    return args


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("base-install")
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    src = str(ROOT / "src")
    path = os.pathsep.join(p for p in (str(site), src, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "100"}
    env.pop("COSMIC_HOME", None)
    return env


def test_the_blocker_hides_the_extras(base_env: dict[str, str]) -> None:
    p = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=base_env)
    assert p.returncode != 0 and "base install" in p.stderr


def test_the_tour_is_there() -> None:
    names = [c[1] for c in tour()]
    for sub in ("simulate", "schema", "catalog", "psa", "explore", "study", "validate", "collective", "demo"):
        assert sub in names or sub in [c[2] for c in tour() if len(c) > 2], sub


def test_every_cosmic_line_of_the_readme_runs(tmp_path: Path, base_env: dict[str, str]) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    for d in ("examples", "benchmarks"):
        (clone / d).symlink_to(ROOT / d)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    exe = [sys.executable, "-m", "cosmic.cli"]
    failed = []
    for args in tour():
        if any("../shared" in a for a in args) and not SHARED.is_dir():
            continue  # the validation data is not there to read
        p = subprocess.run([*exe, *args[1:]], capture_output=True, text=True, cwd=clone, env=base_env, timeout=900)
        if p.returncode != 0:
            failed.append(f"{shlex.join(args)} -> exit {p.returncode}: {p.stderr.strip()[-400:]}")
    assert not failed, "\n".join(failed)


def test_the_readme_python_runs_outside_the_clone(tmp_path: Path, base_env: dict[str, str]) -> None:
    code = blocks("python")
    assert code and any("cosmic.simulate" in c for c in code)
    for c in code:
        p = subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, cwd=tmp_path, env=base_env,
                           timeout=300)
        assert p.returncode == 0, p.stderr
