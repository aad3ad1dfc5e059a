"""CSV reading: kind by header, typed cells, one-line errors naming line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmic.errors import ConfigError
from cosmic.validate.table import Kind, read_table


def test_kind_is_chosen_by_header(data_dir: Path) -> None:
    kind, rows = read_table(data_dir / "synthetic_training.csv")
    assert kind is Kind.TRAINING and len(rows) == 13
    kind, rows = read_table(data_dir / "synthetic_collectives.csv")
    assert kind is Kind.COLLECTIVES and len(rows) == 5


def test_cells_are_typed_and_lines_counted(data_dir: Path) -> None:
    _, rows = read_table(data_dir / "synthetic_training.csv")
    s1 = rows[0]
    assert s1.line == 2 and s1.i("num_accel") == 16 and s1.n("step_time_s") == 1.0
    assert s1.n("ffn_hidden") is None and s1.get("accel") == "A100 SXM 40GB"
    _, crow = read_table(data_dir / "synthetic_collectives.csv")
    assert crow[3].n("num_nodes") is None and crow[3].get("num_nodes") == "multi"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s,tp\n"
                         "A,m,8,H100,2048,1.0,2\n"
                         "B,m,8,H100,2048,1.0,eight\n")
    with pytest.raises(ConfigError) as exc:
        read_table(p)
    msg = str(exc.value)
    assert "line 3" in msg and "'tp'" in msg and "'eight'" in msg and "\n" not in msg


def test_quoted_multiline_cells_keep_line_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path, 'row_id,model,num_accel,accel,seq_len,step_time_s,notes\n'
                         'A,m,8,H100,2048,1.0,"two\nlines"\n'
                         'B,m,x,H100,2048,1.0,\n')
    with pytest.raises(ConfigError, match=r"line 4, column 'num_accel'"):
        read_table(p)


def test_missing_required_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,model,accel,seq_len,step_time_s\nA,m,H100,2048,1.0\n")
    with pytest.raises(ConfigError, match=r"line 1: required column 'num_accel' is missing"):
        read_table(p)
    p = _write(tmp_path, "row_id,collective,busbw_GBps\nA,all_reduce,1\n")
    with pytest.raises(ConfigError, match=r"required column 'num_ranks'"):
        read_table(p)


def test_training_file_without_any_metric_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,model,num_accel,accel,seq_len\nA,m,8,H100,2048\n")
    with pytest.raises(ConfigError, match="no measured-metric column"):
        read_table(p)


def test_unknown_header_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a training-runs CSV"):
        read_table(_write(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(ConfigError, match="empty file"):
        read_table(_write(tmp_path, ""))
    with pytest.raises(ConfigError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_negative_and_too_many_cells(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2, column 'step_time_s': '-1' must not be negative"):
        read_table(_write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s\nA,m,8,H100,2048,-1\n"))
    with pytest.raises(ConfigError, match=r"line 2: 7 cells but the header has 6"):
        read_table(_write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s\nA,m,8,H100,2048,1,9\n"))
