"""Request lengths, arrivals and trace files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosmic.errors import ConfigError
from cosmic.workload.requests import LengthDist, RequestWorkload, generate, read_trace


def test_lengths_follow_their_distribution() -> None:
    rng = np.random.default_rng(0)
    assert (LengthDist(dist="fixed", mean=7).sample(rng, 5) == 7).all()
    u = LengthDist(dist="uniform", min=10, max=20).sample(rng, 10_000)
    assert u.min() == 10 and u.max() == 20
    ln = LengthDist(dist="lognormal", mean=500, sigma=0.5).sample(rng, 200_000)
    assert ln.mean() == pytest.approx(500, rel=0.01)
    assert LengthDist(dist="lognormal", mean=500, sigma=1.0, max=600).sample(rng, 1000).max() == 600


def test_poisson_arrivals_have_the_offered_rate() -> None:
    r = generate(RequestWorkload(requests=50_000, rate=4.0, input=10, output=10))
    assert len(r) / r.arrival_s[-1] == pytest.approx(4.0, rel=0.02)
    assert (np.diff(r.arrival_s) >= 0).all()


def test_a_trace_is_read_in_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("arrival_s,input_tokens,output_tokens\n0,5,6\n1.5,7,8\n")
    (tmp_path / "t.jsonl").write_text('{"arrival_s": 0, "input_tokens": 5, "output_tokens": 6}\n\n'
                                      '{"arrival_s": 1.5, "input_tokens": 7, "output_tokens": 8}\n')
    for name in ("t.csv", "t.jsonl"):
        a, i, o = read_trace(tmp_path / name, need_arrival=True)
        assert a.tolist() == [0, 1.5] and i.tolist() == [5, 7] and o.tolist() == [6, 8]
    r = generate(RequestWorkload(arrival="trace", trace=str(tmp_path / "t.csv")))
    assert r.arrival_s.tolist() == [0, 1.5]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.csv", "arrival_s,input_tokens,output_tokens\n0,5,6\n1,x,8\n", "bad.csv: line 3: input_tokens 'x' is not"),
    ("bad.csv", "arrival_s,input_tokens\n0,5\n", "bad.csv: line 1: header lacks column 'output_tokens'"),
    ("bad.csv", "arrival_s,input_tokens,output_tokens\n2,5,6\n1,5,8\n", "bad.csv: line 3: arrival_s 1.0 is before"),
    ("bad.csv", "arrival_s,input_tokens,output_tokens\n0,5,0\n", "bad.csv: line 2: output_tokens '0' must be"),
    ("bad.jsonl", '{"input_tokens": 5, "output_tokens": 6, "arrival_s": 0}\n{"input_tokens": 5\n',
     "bad.jsonl: line 2: not JSON"),
    ("bad.jsonl", '{"output_tokens": 6, "arrival_s": 0}\n', "bad.jsonl: line 1: input_tokens is missing"),
])
def test_trace_errors_name_the_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as exc:
        read_trace(tmp_path / name, need_arrival=True)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_workload_needs_lengths_or_a_trace() -> None:
    with pytest.raises(ValueError, match="poisson arrivals need rate"):
        RequestWorkload(input=1, output=1)
    with pytest.raises(ValueError, match="give input and output lengths"):
        RequestWorkload(arrival="offline")
