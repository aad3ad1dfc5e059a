"""`cosmic serve`: tables, JSON, the HTML report, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "serving" / "llama3-70b-8xh100.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, timeout=300)


def test_serve_json_keys() -> None:
    p = run("serve", str(EXAMPLE), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("requests_per_s", "input_tokens_per_s", "output_tokens_per_s", "goodput_requests_per_s",
                "usd_per_million_tokens", "memory", "latency"):
        assert key in d
    for m in ("ttft", "tpot", "e2e"):
        assert d["latency"][f"{m}_p50_s"] <= d["latency"][f"{m}_p90_s"] <= d["latency"][f"{m}_p99_s"]


def test_serve_tables_and_report(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    p = run("serve", str(EXAMPLE), "--report", str(out))
    assert p.returncode == 0, p.stderr
    assert "goodput" in p.stdout and "TTFT" in p.stdout
    page = out.read_text()
    assert "Latency CDF" in page and "offered rate" in page
    assert "<script src=" not in page  # plotly.js inlined: the page opens offline


def test_serve_error_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("model: llama3-70b\naccelerator: h100-sxm\nnetwork: {dims: [{topology: Switch, npus: 8, "
                 "fabric: nvlink4}]}\nserving: {replicas: {tp: 3, count: 2}, workload: {arrival: offline, "
                 "input: 10, output: 10}}\n")
    p = run("serve", str(f))
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0
    assert "serving.replicas.tp: tp=3 must divide" in p.stderr
