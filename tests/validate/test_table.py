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


def test_a_bad_cell_marks_its_row_with_line_column_and_value_and_the_rest_is_read(tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s,tp\n"
                         "A,m,8,H100,2048,1.0,2\n"
                         "B,m,8,H100,2048,1.0,eight\n"
                         "C,m,8,H100,2048,1.0,4\n")
    _, rows = read_table(p)
    assert [r.row_id for r in rows] == ["A", "B", "C"]
    assert rows[0].problems == [] and rows[2].problems == [] and rows[2].i("tp") == 4
    (msg,) = rows[1].problems
    assert msg == "line 3, column 'tp': 'eight' is not a count such as 2048, 1,024, 16M, 1.5B or 4 Mi"


def test_quoted_multiline_cells_keep_line_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path, 'row_id,model,num_accel,accel,seq_len,step_time_s,notes\n'
                         'A,m,8,H100,2048,1.0,"two\nlines"\n'
                         'B,m,x,H100,2048,1.0,\n')
    _, rows = read_table(p)
    assert rows[1].problems and rows[1].problems[0].startswith("line 4, column 'num_accel': 'x' is not a count")


def test_count_columns_take_paper_suffixes_and_real_columns_do_not(tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s,global_batch_tokens,vocab,mfu_pct\n"
                         'A,m,"1,024",H100,4K,1.5,16M,"50,257",41.5%\n'
                         "B,m,8,H100,2048,1.5s,4 Mi,,\n")
    _, rows = read_table(p)
    a, b = rows
    assert a.problems == []
    assert (a.i("num_accel"), a.i("seq_len"), a.i("global_batch_tokens"), a.i("vocab"), a.n("mfu_pct")) == \
        (1024, 4000, 16_000_000, 50257, 41.5)
    assert b.n("global_batch_tokens") == 4 * 2**20
    assert b.problems == ["line 3, column 'step_time_s': '1.5s' is not a number such as 1.5 or 1,024"]


def test_the_words_of_a_count_or_text_column_are_kept_as_text(data_dir: Path, tmp_path: Path) -> None:
    p = _write(tmp_path, "row_id,collective,num_ranks,num_nodes,busbw_GBps,message_bytes\n"
                         "X,all_reduce,16,multi,100,64MiB\n"
                         "Y,all_reduce,16,several,100,1K\n")
    _, (x, y) = read_table(p)
    assert x.problems == [] and x.n("num_nodes") is None and x.n("message_bytes") == 64 * 2**20
    assert y.n("message_bytes") == 1000
    assert y.problems == ["line 3, column 'num_nodes': 'several' is not a count such as 2048, 1,024, 16M, 1.5B or "
                          "4 Mi or one of: multi"]


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


def test_negative_cell_and_too_many_cells_mark_the_row(tmp_path: Path) -> None:
    _, rows = read_table(_write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s\n"
                                          "A,m,8,H100,2048,-1\nB,m,8,H100,2048,1,9\nC,m,8,H100,2048,1\n"))
    assert rows[0].problems == ["line 2, column 'step_time_s': '-1' must not be negative"]
    assert rows[1].problems == ["line 3: 7 cells but the header has 6 columns"]
    assert rows[2].problems == []


def test_a_file_that_is_not_utf8_says_so_and_where(tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("row_id,model,num_accel,accel,seq_len,step_time_s\nA,Café,8,H100,2048,1\n".encode("latin-1"))
    with pytest.raises(ConfigError) as exc:
        read_table(p)
    assert str(exc.value) == (f"{p}: not UTF-8 text: byte 0xe9 at offset 54 (line 2, column 6) is not valid UTF-8; "
                              "save the file as UTF-8 (it may be Latin-1 or Windows-1252)")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfrow_id,model\n\xe2\x82\xac,\xff\n")
    with pytest.raises(ConfigError, match=r"byte 0xff at offset 20 \(line 2, column 3\)"):
        read_table(bom)
    u16 = tmp_path / "u16.csv"
    u16.write_text("row_id,model\n", encoding="utf-16")
    with pytest.raises(ConfigError, match="not UTF-8 text: the file is UTF-16"):
        read_table(u16)
    _, rows = read_table(_write(tmp_path, "row_id,model,num_accel,accel,seq_len,step_time_s\nA,Café,8,H,1,1\n"))
    assert rows[0].get("model") == "Café"  # UTF-8 itself reads
