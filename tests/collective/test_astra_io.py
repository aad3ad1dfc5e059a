"""Import and export of ASTRA-sim network.yml / system.json, the config hooks and `cosmic collective`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cosmic
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.astra import AstraDim, AstraParams, astra_collective_time, simulate_collective
from cosmic.collective.astra_io import (
    export_astra,
    network_from_dict,
    read_network,
    read_system,
    system_from_dict,
)
from cosmic.collective.model import MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Topology
from cosmic.sim.config import config_from_dict, load_config
from tests.conftest import EXAMPLES

DATA = Path(__file__).parent / "data"
NET3, SYS3 = DATA / "network_3d.yml", DATA / "system_3d.json"
NET2, SYS2 = DATA / "network_ring_switch.yml", DATA / "system_ring_switch.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, timeout=120)


def write(tmp: Path, name: str, data: dict) -> Path:
    p = tmp / name
    if name.endswith(".json"):
        p.write_text(json.dumps(data))
    else:
        import yaml

        p.write_text(yaml.safe_dump(data))
    return p


SYS_OK = {
    "scheduling-policy": "LIFO",
    "endpoint-delay": 10,
    "active-chunks-per-dimension": 1,
    "preferred-dataset-splits": 4,
    "collective-optimization": "baseline",
    "local-mem-bw": 1600,
    "all-reduce-implementation": ["ring", "direct"],
    "all-gather-implementation": ["ring", "direct"],
    "reduce-scatter-implementation": ["ring", "direct"],
    "all-to-all-implementation": ["ring", "direct"],
}
NET_OK = {"topology": ["Ring", "Switch"], "npus_count": [4, 6], "bandwidth": [50, 25], "latency": [500, 700]}


# ---- reading -------------------------------------------------------------------------------------------------------


def test_read_network_units() -> None:
    net = read_network(NET3)
    assert [d.topology for d in net.dims] == [Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH]
    assert net.n_npus == 4 * 8 * 16
    assert net.dims[2].link_gibps == 50.0 and net.dims[2].link_bytes_per_s == 50.0 * 2**30
    assert net.dims[1].latency_ns == 500.0


def test_read_system_spellings() -> None:
    s = read_system(SYS3)
    assert s.algorithms(Collective.ALL_REDUCE) == (Algorithm.RING, Algorithm.DIRECT, Algorithm.HALVING_DOUBLING)
    rs = s.implementations[Collective.REDUCE_SCATTER]
    assert rs[0].spelling == "oneRing" and rs[0].algorithm is Algorithm.RING
    assert rs[1].algorithm is Algorithm.DIRECT and rs[1].window == 7
    assert (s.splits, s.active_chunks, s.multidim, s.endpoint_delay_ns) == (8, 2, MultiDim.LOCAL_BW_AWARE, 10)


@pytest.mark.parametrize(
    "change,key,words",
    [
        ({"preferred-dataset-splits": 0}, "preferred-dataset-splits", "at least 1"),
        ({"all-reduce-implementation": ["ring", "tree"]}, "all-reduce-implementation[1]", "unknown implementation"),
        # names are checked when ASTRA-sim loads the file, in every list, even one no collective of the run uses
        ({"all-to-all-implementation": ["ring", "Direct8"]}, "all-to-all-implementation[1]", "stops when it loads"),
        ({"collective-optimization": "fast"}, "collective-optimization", "baseline or localBWAware"),
        ({"scheduling-policy": "RANDOM"}, "scheduling-policy", "LIFO, FIFO or EXPLICIT"),
        ({"all-reduce-implementation-custom": ["a", "b"]}, "all-reduce-implementation-custom", "exactly one"),
        ({"model-shared-bus": 1}, "model-shared-bus", "not modelled"),
    ],
)
def test_system_errors_at_load_name_file_and_key(tmp_path: Path, change: dict, key: str, words: str) -> None:
    data = dict(SYS_OK, **change)
    f = write(tmp_path, "system.json", data)
    with pytest.raises(ConfigError) as exc:
        read_system(f)
    assert str(exc.value).startswith(f"{f}: {key}: ") and words in str(exc.value)


AR, AG, RS, A2A = Collective.ALL_REDUCE, Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL


@pytest.mark.parametrize(
    "change,fails,key,words",
    [
        # ASTRA-sim reads each list only when that collective runs (a localBWAware all-reduce runs its reduce-scatter
        # and all-gather phases with the all-reduce list), and only on the dimensions it crosses
        ({"all-to-all-implementation": ["ring", "halvingDoubling"]}, A2A, "all-to-all-implementation[1]",
         "rejects halvingDoubling"),
        ({"all-gather-implementation": ["ring", "halvingDoubling"], "npus_count": [4, 6]}, AG,
         "all-gather-implementation[1]", "never finishes"),
        ({"reduce-scatter-implementation": ["doubleBinaryTree", "ring"], "npus_count": [6, 4]}, RS,
         "reduce-scatter-implementation[0]", "crashes"),
        ({"all-to-all-implementation": None}, A2A, "all-to-all-implementation", "no collective implementation found"),
        ({"all-gather-implementation": ["ring"]}, AG, "all-gather-implementation", "has 1 entries"),
        ({"reduce-scatter-implementation": ["ring", "direct3"], "npus_count": [4, 8]}, RS,
         "reduce-scatter-implementation[1]", "window of 3"),
        ({"local-mem-bw": None}, AR, "local-mem-bw", "divides every local reduction by zero"),
    ],
)
@pytest.mark.parametrize("multidim", ["baseline", "localBWAware"])
def test_keys_read_when_a_collective_runs_fail_only_then(
    tmp_path: Path, change: dict, fails: Collective, key: str, words: str, multidim: str
) -> None:
    from cosmic.commands.collective import run_collective

    data = dict(SYS_OK, **{"collective-optimization": multidim})
    net = dict(NET_OK, npus_count=change.get("npus_count", [4, 8]))
    for k, v in change.items():
        if k == "npus_count":
            continue
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    sysf, netf = write(tmp_path, "system.json", data), write(tmp_path, "network.yml", net)
    read_system(sysf)  # loads
    runs = [k for k in (AR, AG, RS, A2A) if k is not fails]
    if fails is AR:
        runs = [AG, A2A]  # a missing local-mem-bw only matters where data is reduced
    for kind in runs:
        assert run_collective(kind, 2**20, netf, sysf)["time_ns"] > 0
    with pytest.raises(ConfigError) as exc:
        run_collective(fails, 2**20, netf, sysf)
    assert str(exc.value).startswith(f"{sysf}: {key}: ") and words in str(exc.value)


def test_missing_splits_fails_when_any_collective_runs(tmp_path: Path) -> None:
    from cosmic.commands.collective import run_collective

    data = dict(SYS_OK)
    data.pop("preferred-dataset-splits")
    sysf, netf = write(tmp_path, "system.json", data), write(tmp_path, "network.yml", dict(NET_OK, npus_count=[4, 8]))
    assert read_system(sysf).splits is None
    for kind in Collective:
        with pytest.raises(ConfigError, match=r"preferred-dataset-splits: required to run an .*divides by zero"):
            run_collective(kind, 2**20, netf, sysf)


@pytest.mark.parametrize(
    "impl,sizes,words",
    [
        (["ring"], (4, 8), "has 1 entries but the network has 2 dimensions"),
        (["ring", "halvingDoubling"], (4, 6), r"not a power of two\) never finishes"),
        (["doubleBinaryTree", "ring"], (12, 8), r"not a power of two\) crashes"),
        (["ring", "direct3"], (4, 8), "window of 3"),
    ],
)
def test_system_checked_against_network_when_it_runs(impl: list[str], sizes: tuple[int, ...], words: str) -> None:
    data = dict(SYS_OK, **{"all-reduce-implementation": impl})
    s = system_from_dict(data, file="sys.json")
    s.check(sizes)  # ASTRA-sim loads the file on this network ...
    with pytest.raises(ConfigError, match=words):
        s.implementation(AR, sizes)  # ... and fails when the all-reduce runs


def test_list_longer_than_the_network_is_refused_at_load() -> None:
    """GeneralComplexTopology asserts collective_impl.size() <= dimension_size.size() for all four lists when the
    system starts (the analytical build keeps asserts on: its Release flags are plain -O3)."""
    s = system_from_dict(SYS_OK, file="sys.json")
    s.check((4, 8))
    with pytest.raises(ConfigError, match=r"sys.json: all-reduce-implementation: has 2 entries but the network "
                                          r"has 1 dimensions \(ASTRA-sim asserts when it starts\)"):
        s.check((8,))


def test_ignored_scheduling_keys_are_accepted_with_a_note(tmp_path: Path) -> None:
    from cosmic.commands.collective import run_collective

    data = dict(SYS_OK, **{"inter-dimension-scheduling": "themis", "intra-dimension-scheduling": "SCF",
                           "scheduling-policy": "EXPLICIT"})
    sysf, netf = write(tmp_path, "system.json", data), write(tmp_path, "network.yml", dict(NET_OK, npus_count=[4, 8]))
    base = run_collective(AR, 2**20, netf, write(tmp_path, "plain.json", SYS_OK))
    rec = run_collective(AR, 2**20, netf, sysf)
    assert rec["time_ns"] == base["time_ns"]  # none of them changes one collective
    assert any("inter-dimension-scheduling is not read by ASTRA-sim" in n for n in rec["notes"])


def test_network_errors_name_key() -> None:
    bad = dict(NET_OK, bandwidth=[50])
    with pytest.raises(ConfigError, match=r"net.yml: bandwidth: has 1 entries but topology has 2"):
        network_from_dict(bad, file="net.yml")
    with pytest.raises(ConfigError, match=r"net.yml: topology\[1\]: unknown topology 'Torus'"):
        network_from_dict(dict(NET_OK, topology=["Ring", "Torus"]), file="net.yml")
    with pytest.raises(ConfigError, match=r"net.yml: npus_count\[0\]"):
        network_from_dict(dict(NET_OK, npus_count=[0, 6]), file="net.yml")


# ---- round trips ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net_file,sys_file", [(NET3, SYS3), (NET2, SYS2)])
def test_import_export_import_round_trip(tmp_path: Path, net_file: Path, sys_file: Path) -> None:
    cfg = config_from_dict(
        {
            "accelerator": "cosmic-s1-npu",
            "model": "gpt3-175b",
            "network": {"astra_sim": str(net_file)},
            "collective": {"astra_sim": str(sys_file)},
            "parallel": {"dp": read_network(net_file).n_npus},
            "training": {"global_batch": 4096},
        }
    )
    net_out, sys_out = export_astra(cfg.network, cfg.collective, tmp_path)
    assert read_network(net_out) == read_network(net_file)
    again, first = read_system(sys_out), read_system(sys_file)
    for kind in Collective:
        # `one*` and `directN` spellings are written in their plain form
        assert again.algorithms(kind) == first.algorithms(kind)
    for attr in ("scheduling", "endpoint_delay_ns", "active_chunks", "splits", "multidim", "local_mem_bw_gbps"):
        assert getattr(again, attr) == getattr(first, attr)
    # and the re-imported files time every collective identically, except one whose list has oneRing: cosmic's
    # config has no flat-ring-over-every-NPU algorithm, so it is written back as a ring on each dimension
    for kind in Collective:
        a = run_record(kind, net_file, sys_file)
        b = run_record(kind, net_out, sys_out)
        if any(i.spelling == "oneRing" for i in first.implementations[kind]):
            assert a["phases"][0]["npus"] == read_network(net_file).n_npus
            continue
        assert a["time_ns"] == b["time_ns"]


def run_record(kind: Collective, net: Path, sysf: Path, fidelity: str = "astra-sim") -> dict:
    from cosmic.commands.collective import run_collective

    return run_collective(kind, 2**24, net, sysf, fidelity)


def test_export_of_decimal_bandwidth_and_catalog_system(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "cosmic-s1-gpt3-175b.yaml")
    net_out, sys_out = export_astra(cfg.network, cfg.collective, tmp_path)
    net = read_network(net_out)
    for a, b in zip(net.dims, cfg.network.dims, strict=True):
        assert a.link_bytes_per_s == pytest.approx(b.link_bytes_per_s, rel=1e-12)
        assert (a.topology, a.npus, a.latency_ns) == (b.topology, b.npus, b.latency_ns)
    d = json.loads(sys_out.read_text())
    assert d["all-reduce-implementation"] == ["ring", "direct", "ring", "halvingDoubling"]
    assert d["collective-optimization"] == "localBWAware" and d["preferred-dataset-splits"] == 4
    # all-to-all inherits halving_doubling from all_reduce in cosmic; ASTRA-sim would reject it, so direct is written
    assert d["all-to-all-implementation"][3] == "direct"


# ---- config hooks and `cosmic simulate` ----------------------------------------------------------------------------


def test_config_with_astra_files_relative_paths() -> None:
    cfg = load_config(DATA / "astra-s1-gpt3.yaml")
    assert cfg.network == read_network(NET2)
    assert cfg.collective.scheduling.value == "FIFO" and cfg.collective.chunks == 4
    assert cfg.collective.fidelity.value == "astra-sim"  # override next to astra_sim:
    r = cosmic.simulate(cfg)
    assert r.step_time_s > 0


def test_config_hook_errors_name_the_astra_file(tmp_path: Path) -> None:
    write(tmp_path, "sys.json", dict(SYS_OK, **{"all-reduce-implementation": ["ring", "halvingDoubling"]}))
    write(tmp_path, "net.yml", NET_OK)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "accelerator: cosmic-s1-npu\nmodel: gpt3-175b\nnetwork: {astra_sim: net.yml}\n"
        "collective: {astra_sim: sys.json}\nparallel: {dp: 24}\ntraining: {global_batch: 48}\n"
    )
    p = run("simulate", str(cfg))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(tmp_path / "sys.json") in lines[0] and "all-reduce-implementation[1]" in lines[0]
    (tmp_path / "c.yaml").write_text(cfg.read_text().replace("net.yml", "missing.yml"))
    p = run("simulate", str(cfg))
    assert p.returncode == 2 and "missing.yml: network file not found" in p.stderr


@pytest.mark.parametrize("example", ["cosmic-s1-gpt3-175b.yaml", "cosmic-s2-gpt3-175b.yaml"])
def test_simulate_with_astra_fidelity(tmp_path: Path, example: str) -> None:
    text = (EXAMPLES / example).read_text() + "collective:\n  fidelity: astra-sim\n"
    f = tmp_path / example
    f.write_text(text)
    p = run("simulate", str(f), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["step_time_s"] > 0 and d["fidelity"] == "astra-sim"


def test_astra_fidelity_checks_in_config(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        (EXAMPLES / "cosmic-s1-gpt3-175b.yaml").read_text()
        + "collective:\n  fidelity: astra-sim\n  all_to_all: halving_doubling\n"
    )
    p = run("simulate", str(f))
    assert p.returncode == 2 and "collective.all_to_all: ASTRA-sim rejects halving_doubling" in p.stderr


# ---- sub-groups inside `cosmic simulate` ---------------------------------------------------------------------------


def _system(cfg):
    """The collective settings, topologies and NPU count that astra_collective_time takes from a config."""
    return cfg.collective, tuple(d.topology for d in cfg.network.dims), cfg.n_npus


def test_whole_network_group_uses_per_dimension_algorithms() -> None:
    cfg = load_config(DATA / "astra-s1-gpt3.yaml")
    g = (
        GroupDim(0, Topology.RING, 4, 1, 4, 187.5 * 2**30, 20e-9),
        GroupDim(1, Topology.SWITCH, 8, 1, 8, 100 * 2**30, 1700e-9),
    )
    ct = astra_collective_time(Collective.ALL_REDUCE, 2**26, g, *_system(cfg))
    dims = (AstraDim.from_gib(Topology.RING, 4, 187.5, 20, 0), AstraDim.from_gib(Topology.SWITCH, 8, 100, 1700, 1))
    ref = simulate_collective(
        Collective.ALL_REDUCE, 2**26, dims, (Algorithm.RING, Algorithm.HALVING_DOUBLING),
        AstraParams(4, 1, 10, 1600, MultiDim.LOCAL_BW_AWARE),
    )
    assert ct.total_s == pytest.approx(ref.time_ns * 1e-9, rel=1e-12)
    assert sum(t for _, t in ct.per_dim_s) == pytest.approx(ct.total_s)


def test_sub_group_is_one_flat_ring_on_the_innermost_link() -> None:
    """DP over dim 1 only (8 of 32 NPUs): ASTRA-sim runs one ring over the group's ids, charged on dim 1's link."""
    cfg = load_config(DATA / "astra-s1-gpt3.yaml")
    g = (GroupDim(1, Topology.SWITCH, 8, 1, 8, 100 * 2**30, 1700e-9),)
    ct = astra_collective_time(Collective.ALL_REDUCE, 2**26, g, *_system(cfg))
    # ring all-reduce over 8 NPUs, Switch = 2 hops, 4 chunks of 2^24, one slot: 4 x (E + 14(N + E) + 7R)
    b = 100 * 2**30 / 1e9
    m = 2**24 // 8
    n = int(2 * 1700 + m / b)
    r = 3 * (m // 1600)
    assert round(ct.total_s * 1e9) == 4 * (10 + 14 * (n + 10) + 7 * r)
    assert ct.per_dim_s[0][0] == 1


def test_sub_group_ring_pays_10_ns_whatever_the_endpoint_delay() -> None:
    """A communicator group's ring is a Local RingTopology (CommunicatorGroup.cc), whose packets take MemBus's Fast
    path: 10 cycles, not endpoint-delay. The whole-system collective still pays endpoint-delay."""
    cfg = load_config(DATA / "astra-s1-gpt3.yaml")
    slow = cfg.collective.model_copy(update={"endpoint_delay_ns": 200.0})
    topologies, npus = tuple(d.topology for d in cfg.network.dims), cfg.n_npus
    sub = (GroupDim(1, Topology.SWITCH, 8, 1, 8, 100 * 2**30, 1700e-9),)
    a = astra_collective_time(Collective.ALL_REDUCE, 2**26, sub, cfg.collective, topologies, npus)
    b = astra_collective_time(Collective.ALL_REDUCE, 2**26, sub, slow, topologies, npus)
    assert a.total_s == b.total_s  # 4 x (10 + 14 (N + 10) + 7 R) with E = 10 in both
    whole = (
        GroupDim(0, Topology.RING, 4, 1, 4, 187.5 * 2**30, 20e-9),
        GroupDim(1, Topology.SWITCH, 8, 1, 8, 100 * 2**30, 1700e-9),
    )
    c = astra_collective_time(Collective.ALL_REDUCE, 2**26, whole, cfg.collective, topologies, npus)
    d = astra_collective_time(Collective.ALL_REDUCE, 2**26, whole, slow, topologies, npus)
    assert d.total_s > c.total_s


def test_strided_sub_group_on_a_ring_pays_the_carry_hops() -> None:
    """Members 2 apart on a Ring(8) plus a second dimension: consecutive ids are 2 apart except where the inner
    coordinate wraps (6 apart -> 2 hops the short way): every step costs N(m, 2)."""
    cfg = load_config(DATA / "astra-s1-gpt3.yaml")
    g = (
        GroupDim(0, Topology.RING, 4, 2, 8, 50 * 2**30, 500e-9),
        GroupDim(1, Topology.SWITCH, 2, 1, 8, 100 * 2**30, 1700e-9),
    )
    ct = astra_collective_time(Collective.REDUCE_SCATTER, 2**23, g, *_system(cfg))
    m = 2**21 // 8
    n = int(2 * 500 + m / (50 * 2**30 / 1e9))
    assert round(ct.total_s * 1e9) == 4 * (10 + 7 * (n + 10 + 3 * (m // 1600)))


# ---- the command line ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["all-reduce", "all-gather", "reduce-scatter", "all-to-all"])
def test_cli_json(kind: str) -> None:
    p = run("collective", kind, "--size", "16MiB", "--network", str(NET3), "--system", str(SYS3), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("time_ns", "algbw_GBps", "busbw_GBps", "phases", "fidelity", "inputs", "size_bytes", "npus"):
        assert key in d
    n, size = 512, 16 * 2**20
    moved = n * size if kind == "all-gather" else size
    assert d["algbw_GBps"] == pytest.approx(moved / d["time_ns"])
    factor = 2 * (n - 1) / n if kind == "all-reduce" else (n - 1) / n
    assert d["busbw_GBps"] == pytest.approx(d["algbw_GBps"] * factor)
    assert all({"dim", "collective", "algorithm", "time_ns_per_chunk"} <= set(ph) for ph in d["phases"])
    assert isinstance(d["time_ns"], int)


def test_cli_cosmic_fidelity_differs_and_is_labelled() -> None:
    a = json.loads(run("collective", "all-reduce", "--size", "64MB", "--network", str(NET2), "--system", str(SYS2),
                       "--json").stdout)
    c = json.loads(run("collective", "all-reduce", "--size", "64MB", "--network", str(NET2), "--system", str(SYS2),
                       "--fidelity", "cosmic", "--json").stdout)
    assert (a["fidelity"], c["fidelity"]) == ("astra-sim", "cosmic")
    assert a["time_ns"] > 0 and c["time_ns"] > 0 and a["time_ns"] != c["time_ns"]


def test_cli_help_states_all_gather_convention() -> None:
    p = run("collective", "--help")
    assert p.returncode == 0 and "input" in p.stdout and "all-gather" in p.stdout


@pytest.mark.parametrize(
    "sys_change,net_change,key",
    [
        ({"preferred-dataset-splits": 0}, {}, "preferred-dataset-splits"),
        ({"all-reduce-implementation": ["ring"]}, {}, "all-reduce-implementation"),
        ({"all-reduce-implementation": ["ring", "halvingDoubling"]}, {}, "all-reduce-implementation[1]"),
        ({"all-reduce-implementation": ["ring", "doubleBinaryTree"]}, {}, "all-reduce-implementation[1]"),
        ({}, {"latency": [500]}, "latency"),
    ],
)
def test_cli_invalid_combinations_one_line_exit_2(tmp_path: Path, sys_change: dict, net_change: dict,
                                                  key: str) -> None:
    sysf = write(tmp_path, "system.json", dict(SYS_OK, **sys_change))
    netf = write(tmp_path, "network.yml", dict(NET_OK, **net_change))
    p = run("collective", "all-reduce", "--size", "1MB", "--network", str(netf), "--system", str(sysf))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ") and f": {key}: " in lines[0]
    assert ("system.json" in lines[0]) or ("network.yml" in lines[0])


def test_cli_lazy_key_fails_only_for_its_collective(tmp_path: Path) -> None:
    sysf = write(tmp_path, "system.json", dict(SYS_OK, **{"all-to-all-implementation": ["ring", "halvingDoubling"]}))
    netf = write(tmp_path, "network.yml", dict(NET_OK, npus_count=[4, 8]))
    ok = run("collective", "all-reduce", "--size", "1MB", "--network", str(netf), "--system", str(sysf), "--json")
    assert ok.returncode == 0, ok.stderr
    bad = run("collective", "all-to-all", "--size", "1MB", "--network", str(netf), "--system", str(sysf))
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{sysf}: all-to-all-implementation[1]: ASTRA-sim rejects halvingDoubling" in lines[0]


def test_cli_bad_size_and_kind() -> None:
    p = run("collective", "broadcast", "--size", "1MB", "--network", str(NET2), "--system", str(SYS2))
    assert p.returncode == 2 and "unknown collective" in p.stderr
    p = run("collective", "all-reduce", "--size", "lots", "--network", str(NET2), "--system", str(SYS2))
    assert p.returncode == 2 and "--size" in p.stderr


def test_astra_export_command(tmp_path: Path) -> None:
    p = run("astra-export", str(EXAMPLES / "cosmic-s2-gpt3-175b.yaml"), "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    net = read_network(tmp_path / "network.yml")
    assert net.n_npus == 8 * 16 * 4 * 4
    assert read_system(tmp_path / "system.json").splits == 4


def test_endless_or_huge_astra_files_are_refused_in_one_line(tmp_path: Path) -> None:
    from cosmic.yamlio import MAX_YAML_BYTES

    big = tmp_path / "network.yml"
    with big.open("wb") as f:
        f.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than 64 MiB"):
        read_network(big)
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match="larger than"):
            read_network(Path("/dev/zero"))


def test_deeply_nested_astra_files_are_refused_in_one_line(tmp_path: Path) -> None:
    net, sys_ = tmp_path / "network.yml", tmp_path / "system.json"
    net.write_text("topology: " + "[" * 5000 + "]" * 5000 + "\n")
    sys_.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match=r"network\.yml: .*nest"):
        read_network(net)
    with pytest.raises(ConfigError, match=r"system\.json: JSON nested too deeply"):
        read_system(sys_)


def test_unknown_name_error_stays_short_for_absurd_names() -> None:
    from cosmic.errors import UnknownNameError

    err = UnknownNameError("model", "x" * 1_000_000, ["gpt3-175b", "llama-7b"])
    assert len(str(err)) < 400 and "did you mean" not in str(err)
    assert "did you mean 'gpt3-175b'" in str(UnknownNameError("model", "gpt3-175", ["gpt3-175b", "llama-7b"]))
