"""`cosmic validate` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cosmic.cli import app

runner = CliRunner()


def test_json_report_keys(data_dir: Path) -> None:
    res = runner.invoke(app, ["validate", str(data_dir / "synthetic_training.csv"), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for key in ("rows_total", "rows_compared", "median_ape_pct", "p90_ape_pct", "max_ape_pct", "rows"):
        assert key in d
    assert d["rows_total"] == 13 and d["rows_compared"] == 9
    for r in d["rows"]:
        assert "row_id" in r
        assert ("skipped_reason" in r) or all(k in r for k in ("predicted", "measured", "metric", "error_pct"))


def test_table_output_and_plot(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.html"
    res = runner.invoke(app, ["validate", str(data_dir / "synthetic_collectives.csv"), "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert "rows not compared" in res.stdout and "X3" in res.stdout
    html = out.read_text()
    assert "predicted vs measured" in html and "signed error by study" in html


def test_malformed_csv_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.csv"
    bad.write_text("row_id,model,num_accel,accel,seq_len,step_time_s\nA,m,8,H100,2048,fast\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from cosmic.cli import main; main()", "validate", str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 2, column 'step_time_s'" in lines[0]
