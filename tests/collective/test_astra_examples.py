"""The input files of ASTRA-sim's own ``examples/`` directory as a client: the analytical network files and the
native-collective system files import and run every collective; the custom-collective system file (MSCCL-style
algorithms from Chakra ET files) is refused in one line that says so.

The files are rebuilt here from their settings (github astra-sim/astra-sim, ``examples/network/analytical``,
``examples/system/native_collectives``, ``examples/system/custom_collectives``), not copied.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cosmic.collective.algorithms import Collective
from cosmic.commands.collective import run_collective
from cosmic.errors import ConfigError

NETWORKS = {
    "HGX-H100-validated.yml": ("Switch", 8, 400.0, 936.25),
    "Ring_4npus.yml": ("Ring", 4, 50.0, 500.0),
    "Ring_8npus.yml": ("Ring", 8, 50.0, 500.0),
    "Ring_16npus.yml": ("Ring", 16, 50.0, 500.0),
}
_NATIVE = {f"{k}-implementation": ["ring"] for k in ("all-reduce", "all-gather", "reduce-scatter", "all-to-all")}
SYSTEMS = {
    "HGX-H100-validated.json": {
        "scheduling-policy": "LIFO", "endpoint-delay": 10, "active-chunks-per-dimension": 2,
        "preferred-dataset-splits": 4, **_NATIVE, "collective-optimization": "localBWAware", "local-mem-bw": 3350,
        "boost-mode": 0,
    },
    "Ring_4chunks.json": {
        "scheduling-policy": "LIFO", "endpoint-delay": 10, "active-chunks-per-dimension": 1,
        "preferred-dataset-splits": 4, **_NATIVE, "collective-optimization": "localBWAware", "local-mem-bw": 1600,
        "boost-mode": 0, "roofline-enabled": 0, "peak-perf": 900,
    },
}
CUSTOM = {
    "scheduling-policy": "FIFO",
    "preferred-dataset-splits": 1,
    "all-reduce-implementation-custom": ["custom_ring_allreduce_8npus_1MB/custom_allreduce"],
    "local-mem-bw": 50,
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("astra_examples")
    for name, (topo, npus, bw, lat) in NETWORKS.items():
        (d / name).write_text(f"topology: [ {topo} ]\nnpus_count: [ {npus} ]\nbandwidth: [ {bw} ]  # GB/s\n"
                              f"latency: [ {lat} ]  # ns\n")
    for name, data in {**SYSTEMS, "custom_collective.json": CUSTOM}.items():
        (d / name).write_text(json.dumps(data, indent=4))
    return d


@pytest.mark.parametrize("net", sorted(NETWORKS))
@pytest.mark.parametrize("system", sorted(SYSTEMS))
@pytest.mark.parametrize("kind", list(Collective))
def test_every_native_example_runs(examples: Path, net: str, system: str, kind: Collective) -> None:
    rec = run_collective(kind, 2**20, examples / net, examples / system)
    assert isinstance(rec["time_ns"], int) and rec["time_ns"] > 0
    assert rec["npus"] == NETWORKS[net][1]


def test_ring_8npus_with_4_chunks_hand_worked(examples: Path) -> None:
    """1 MiB all-reduce on Ring_8npus with Ring_4chunks: 4 chunks of 2^18 B, one active, one dimension.
    m = 2^15: N = floor(500 + 32768 / 53.687091) = 1110, R = 3 floor(32768 / 1600) = 60,
    one chunk = E + 14 (N + E) + 7 R = 10 + 15680 + 420 = 16110, four in a row: 64440 ns."""
    b = 50 * 2**30 / 1e9
    n, r = math.floor(500 + 2**15 / b), 3 * (2**15 // 1600)
    assert (n, r) == (1110, 60)
    rec = run_collective(Collective.ALL_REDUCE, 2**20, examples / "Ring_8npus.yml", examples / "Ring_4chunks.json")
    assert rec["time_ns"] == 4 * (10 + 14 * (n + 10) + 7 * r) == 64440


def test_custom_collective_file_is_refused_plainly(examples: Path) -> None:
    net, sysf = examples / "Ring_8npus.yml", examples / "custom_collective.json"
    with pytest.raises(ConfigError) as exc:
        run_collective(Collective.ALL_REDUCE, 2**20, net, sysf)
    msg = str(exc.value)
    assert msg.startswith(f"{sysf}: all-reduce-implementation-custom: custom collectives defined by Chakra ET files")
    assert "not supported by cosmic" in msg and "ring, direct, halvingDoubling or doubleBinaryTree" in msg
    # the file gives no native all-gather either: ASTRA-sim would stop when an all-gather runs, and so does cosmic
    with pytest.raises(ConfigError, match="all-gather-implementation: required to run an all-gather, and missing"):
        run_collective(Collective.ALL_GATHER, 2**20, net, sysf)
    p = subprocess.run([sys.executable, "-m", "cosmic.cli", "collective", "all-reduce", "--size", "1MB",
                        "--network", str(net), "--system", str(sysf)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
