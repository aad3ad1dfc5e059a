"""Every HTML page cosmic writes opens offline: plotly.js is inlined, no <script> loads anything from the network.

The explore report, the case-study report and the validation plot are each written and read back; and a scan of
the package's source refuses any plotly call that would link plotly.js instead of inlining it, so a new HTML
writer is caught too.
"""

from __future__ import annotations

import re
from pathlib import Path

import cosmic

_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(https?:)?//", re.IGNORECASE)
_LINKED_PLOTLYJS = re.compile(r"include_plotlyjs\s*=\s*[\"'](cdn|require|directory|https?:|[^\"']*\.js)",
                              re.IGNORECASE)


def _offline(html: str) -> None:
    assert "<html" in html.lower()
    assert not _EXTERNAL_SCRIPT.search(html), _EXTERNAL_SCRIPT.search(html)
    assert "Plotly.newPlot" in html or "Plotly.react" in html
    assert len(html) > 1_000_000  # plotly.js itself (~3.5 MB) is in the page


def test_the_external_script_pattern_catches_a_cdn_page() -> None:
    assert _EXTERNAL_SCRIPT.search('<script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>')
    assert _EXTERNAL_SCRIPT.search("<script charset='utf-8' src='//cdn.plot.ly/x.js'>")
    assert not _EXTERNAL_SCRIPT.search("<script>var u = 'https://cdn.plot.ly';</script>")


def test_validation_plot_is_offline(tmp_path: Path) -> None:
    from cosmic.validate import validate_file
    from cosmic.validate.plot import write_plot

    out = tmp_path / "v.html"
    write_plot(validate_file(Path(__file__).parent / "validate" / "data" / "synthetic_training.csv"), out)
    _offline(out.read_text(encoding="utf-8"))


def test_explore_report_is_offline(tmp_path: Path) -> None:
    from cosmic.explore import run_study
    from cosmic.psa import load_psa
    from cosmic.report import write_report

    s = run_study(load_psa("cosmic-s1-gpt3-175b-collective"), "random", budget=20, seed=0, persist=False)
    _offline(write_report(s, tmp_path / "r.html").read_text(encoding="utf-8"))


def test_study_report_is_offline(tmp_path: Path) -> None:
    from cosmic.explore.backends import LocalBackend
    from cosmic.study import run_case_study

    summary = run_case_study("cosmic-paper", tmp_path, backend=LocalBackend(1), agents=["random"], budget=12,
                             models=["vit-base"], systems=["s3"])
    _offline(Path(summary["files"]["report"]).read_text(encoding="utf-8"))


def test_no_source_links_plotlyjs() -> None:
    files = sorted(Path(cosmic.__file__).parent.rglob("*.py"))
    assert len(files) > 50
    linked = [str(p) for p in files if _LINKED_PLOTLYJS.search(t := p.read_text(encoding="utf-8"))
              or "cdn.plot.ly" in t]
    assert linked == [], f"plotly.js must be inlined (include_plotlyjs=True): {linked}"
    assert _LINKED_PLOTLYJS.search('fig.write_html(str(path), include_plotlyjs="cdn")')
