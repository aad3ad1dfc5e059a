"""Every figure the README and docs quote between `<!-- figure: NAME -->` markers is what its command prints now.

When this fails, run ``python -m tests.docs.figures --write`` and commit the rewritten text with the change that
moved the figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs import figures

CASES = [(path, name) for path in figures.DOCS for name, _ in figures.markers(path)]


def test_the_readme_quotes_generated_figures() -> None:
    names = {name for path, name in CASES if path.name == "README.md"}
    assert {"examples", "validation", "exhaustive-best"} <= names
    assert all(name in figures.GENERATORS for _, name in CASES)


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p.name}:{n}" for p, n in CASES])
def test_figure_is_current(path: Path, name: str) -> None:
    if name in figures.NEEDS_SHARED and not figures.SHARED.is_dir():
        pytest.skip(f"{figures.SHARED} is absent: the validation figures cannot be recomputed")
    stale = figures.stale(path, {name})
    assert not stale, (f"{path.name}: figure {name!r} is stale; run `python -m tests.docs.figures --write`\n"
                       f"file: {stale[0][1]!r}\nnow:  {stale[0][2]!r}")


def test_rewrite_restores_a_tampered_figure(tmp_path: Path) -> None:
    text = "a <!-- figure: megatron-step -->99.9 s<!-- /figure --> b\n"
    p = tmp_path / "x.md"
    p.write_text(text)
    assert figures.stale(p)[0][1] == "99.9 s"
    assert figures.rewrite(p) == 1
    assert p.read_text() == f"a <!-- figure: megatron-step -->{figures.megatron_step()}<!-- /figure --> b\n"
    assert figures.stale(p) == [] and figures.rewrite(p) == 0
