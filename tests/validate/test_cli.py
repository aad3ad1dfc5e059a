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
    bad.write_text("row_id,model,accel,seq_len,step_time_s\nA,m,H100,2048,1\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from cosmic.cli import main; main()", "validate", str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 1: required column 'num_accel' is missing" in lines[0]


def test_one_malformed_cell_skips_its_row_and_the_rest_is_compared(data_dir: Path, tmp_path: Path) -> None:
    """The issue's case: '16M' used to abort the file; now it is read, and a cell that is no number skips its row
    only, listed with the line, the column and the value."""
    lines = (data_dir / "synthetic_training.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].strip().split(",")
    col = header.index("num_accel")
    bad = lines[1].split(",")
    bad[col] = "sixteen"
    text = "".join([lines[0], ",".join(bad), *lines[2:]])
    p = tmp_path / "one_bad.csv"
    p.write_text(text, encoding="utf-8")
    res = runner.invoke(app, ["validate", str(p), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    good = json.loads(runner.invoke(app, ["validate", str(data_dir / "synthetic_training.csv"), "--json"]).stdout)
    assert d["rows_total"] == good["rows_total"] == 13
    first = d["rows"][0]
    assert first["skipped_reason"] == ("line 2, column 'num_accel': 'sixteen' is not a count such as 2048, 1,024, "
                                       "16M, 1.5B or 4 Mi")
    assert d["rows"][1:] == good["rows"][1:]  # every other row compared exactly as before
    assert d["rows_compared"] == good["rows_compared"] - 1
    table = runner.invoke(app, ["validate", str(p)])
    assert table.exit_code == 0 and "rows not compared" in table.stdout and "'sixteen'" in table.stdout


def test_paper_suffixes_give_the_same_comparison_as_plain_numbers(data_dir: Path, tmp_path: Path) -> None:
    src = (data_dir / "synthetic_training.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = src[0].strip().split(",")
    cols = [header.index(c) for c in ("num_accel", "seq_len", "global_batch_tokens", "hidden", "vocab",
                                      "tokens_per_s")]
    rows, changed = [], 0
    for line in src[1:]:
        cells = line.rstrip("\n").split(",")
        for col in cols:
            if not cells[col].isdigit():
                continue
            n = int(cells[col])
            if n % 1024 == 0:
                cells[col] = f"{n // 1024} Ki"
            elif n % 1000 == 0:
                cells[col] = f"{n // 1000}K"
            elif n >= 1000:
                cells[col] = f'"{n:,}"'
            changed += 1
        rows.append(",".join(cells) + "\n")
    assert changed > 20
    p = tmp_path / "suffixed.csv"
    p.write_text(src[0] + "".join(rows), encoding="utf-8")
    a = json.loads(runner.invoke(app, ["validate", str(p), "--json"]).stdout)
    b = json.loads(runner.invoke(app, ["validate", str(data_dir / "synthetic_training.csv"), "--json"]).stdout)
    assert a["rows"] == b["rows"]


def test_not_utf8_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"row_id,model,num_accel,accel,seq_len,step_time_s\nA,caf\xe9,8,H100,2048,1\n")
    proc = subprocess.run([sys.executable, "-c", "from cosmic.cli import main; main()", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "not UTF-8 text: byte 0xe9 at offset 54 (line 2, column 6)" in line and "UnicodeDecodeError" not in line


def test_absent_shared_data_is_said_once_at_the_end_of_the_run(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "COSMIC_SHARED_DIR": str(tmp_path / "nowhere")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(Path(__file__).parent / "test_training.py"), "-k", "target"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2], timeout=600)
    assert proc.stdout.count("validation data absent") == 1, proc.stdout[-3000:]
    assert f"{tmp_path / 'nowhere' / 'validation'} has no training_runs.csv" in proc.stdout
    assert "skipped" in proc.stdout
