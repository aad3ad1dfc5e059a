"""`cosmic collective`: one collective on an ASTRA-sim network and system file, like nccl-tests for the simulator;
`cosmic astra-export`: write a config's network and collective stacks as ASTRA-sim files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cosmic.collective.algorithms import Collective, GroupDim, phase_time_s
from cosmic.errors import ConfigError

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``64KiB``, ``1MB``, ``2G`` (B = 10^3 steps, iB = 2^10 steps)."""
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"not a size in bytes: {text!r} (e.g. 1048576, 64KiB, 1MB)", key="--size")
    value, prefix, binary = float(m.group(1)), m.group(2).lower(), m.group(3)
    power = "kmgt".index(prefix) + 1 if prefix else 0
    size = value * ((1024 if binary else 1000) ** power)
    if size != int(size) or size < 1:
        raise ConfigError(f"must be a whole number of bytes >= 1, got {text!r}", key="--size")
    return int(size)


def bus_factor(kind: Collective, n: int) -> float:
    """nccl-tests' bus-bandwidth factor: all-reduce 2(n-1)/n, the others (n-1)/n."""
    if n <= 1:
        return 0.0
    return (2.0 if kind is Collective.ALL_REDUCE else 1.0) * (n - 1) / n


def run_collective(
    kind: Collective, size: int, network_file: Path, system_file: Path, fidelity: str = "astra-sim"
) -> dict[str, Any]:
    """Time one collective and return the JSON record printed by `cosmic collective --json`."""
    from cosmic.collective.astra import (
        AstraParams,
        phase_plan,
        simulate_collective,
        whole_system_dims,
    )
    from cosmic.collective.astra_io import read_network, read_system
    from cosmic.collective.model import collective_time

    kind = Collective(kind)
    network = read_network(network_file)
    system = read_system(system_file)
    sizes = tuple(d.npus for d in network.dims)
    system.check(sizes)  # what ASTRA-sim refuses when it starts
    algos = system.implementation(kind, sizes)  # what it refuses when this collective runs
    n_dims = len(sizes)
    n = network.n_npus
    splits = int(system.splits or 0)  # set: implementation() refuses a missing value
    params = AstraParams(
        splits=splits,
        active_chunks=system.active_chunks,
        endpoint_delay_ns=int(system.endpoint_delay_ns),
        local_mem_bw_gbps=system.local_mem_bw_gbps or 0.0,  # None only for collectives without local reductions
        multidim=system.multidim,
    )
    record: dict[str, Any] = {
        "collective": kind.value.replace("_", "-"),
        "size_bytes": size,
        "size_is": "each NPU's input shard (output = npus x size)" if kind is Collective.ALL_GATHER
        else "each NPU's buffer",
        "npus": n,
        "fidelity": fidelity,
        "network": str(network_file),
        "system": str(system_file),
        "inputs": {
            "topology": [d.topology.value for d in network.dims],
            "npus_count": list(sizes),
            "bandwidth_gibps": [d.link_gibps for d in network.dims],
            "latency_ns": [d.latency_ns for d in network.dims],
            "implementation": [a.value for a in algos],
            "preferred_dataset_splits": splits,
            "active_chunks_per_dimension": system.active_chunks,
            "collective_optimization": system.multidim.value,
            "endpoint_delay_ns": system.endpoint_delay_ns,
            "local_mem_bw_gbps": system.local_mem_bw_gbps,
        },
    }
    phases: list[dict[str, Any]] = []
    notes: list[str] = list(system.notes)
    if fidelity == "astra-sim":
        impls = system.implementations[kind][:n_dims]
        dims, run_algos = whole_system_dims(network, impls)
        res = simulate_collective(kind, size, dims, run_algos, params, total_npus=n)
        time_ns: float = res.time_ns
        record.update(chunks=res.n_chunks, chunk_bytes=res.chunk_bytes)
        for ph in res.phases:
            phases.append(_phase_row(ph.network_dim, network, ph.kind, ph.algorithm.value, ph.bytes_in, ph.time_ns,
                                     npus=dims[ph.position].npus))
        notes += list(res.notes)
        if any(i.spelling == "oneRing" for i in impls):
            notes.append("oneRing runs one ring over every NPU, charged on the innermost link (as in ASTRA-sim)")
        if any(i.spelling.startswith(("oneDirect", "oneHalvingDoubling")) for i in impls):
            notes.append("oneDirect and oneHalvingDoubling are priced as their per-dimension counterparts")
    else:
        group = tuple(
            GroupDim(i, d.topology, d.npus, 1, d.npus, d.link_bytes_per_s, d.latency_s)
            for i, d in enumerate(network.dims)
        )
        ct = collective_time(kind, float(size), group, algos, chunks=splits, multidim=system.multidim)
        time_ns = ct.total_s * 1e9
        chunk = size / splits
        record.update(chunks=splits, chunk_bytes=chunk)
        d = chunk
        active = [i for i in range(n_dims) if sizes[i] > 1]
        for pos, k in phase_plan(kind, active, system.multidim):
            t = phase_time_s(k, algos[pos], group[pos], d) * 1e9
            phases.append(_phase_row(pos, network, k, algos[pos].value, d, t))
            if k is Collective.REDUCE_SCATTER:
                d /= sizes[pos]
            elif k is Collective.ALL_GATHER:
                d *= sizes[pos]
    moved = size * n if kind is Collective.ALL_GATHER else size
    algbw = moved / time_ns if time_ns > 0 else 0.0  # bytes per ns = GB/s (10^9)
    record.update(
        time_ns=time_ns,
        time_us=time_ns / 1e3,
        algbw_GBps=algbw,
        busbw_GBps=algbw * bus_factor(kind, n),
        phases=phases,
        notes=notes,
    )
    return record


def _phase_row(dim: int, network: Any, kind: Collective, algo: str, bytes_in: float, t: float,
               npus: int | None = None) -> dict[str, Any]:
    d = network.dims[dim]
    return {
        "dim": dim,
        "topology": d.topology.value,
        "npus": d.npus if npus is None else npus,
        "collective": kind.value.replace("_", "-"),
        "algorithm": algo,
        "bytes_in": bytes_in,
        "time_ns_per_chunk": t,
    }


def collective(
    kind: Annotated[str, typer.Argument(help="all-reduce, all-gather, reduce-scatter or all-to-all")],
    size: Annotated[
        str,
        typer.Option(
            "--size",
            help="bytes per NPU (1048576, 64KiB, 1MB). For all-gather, as in ASTRA-sim, this is each NPU's INPUT "
            "shard: every NPU ends with npus x size bytes.",
        ),
    ],
    network: Annotated[Path, typer.Option("--network", help="ASTRA-sim analytical network.yml")],
    system: Annotated[Path, typer.Option("--system", help="ASTRA-sim system.json")],
    fidelity: Annotated[
        str, typer.Option("--fidelity", help="astra-sim: ASTRA-sim's analytical backend; cosmic: cosmic's model")
    ] = "astra-sim",
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Time ONE collective over the whole network of an ASTRA-sim network and system file (like nccl-tests).

    Prints the slowest NPU's finish time, algorithm and bus bandwidth (nccl-tests factors) and each dimension's
    phase. For all-gather, --size is each NPU's input shard (ASTRA-sim's convention).
    """
    from cosmic.commands._output import emit_json, out

    # errors are raised (not `fail`ed) so the exit code is 2 also under `main(standalone_mode=False)`
    if kind.replace("_", "-").lower() not in KINDS:
        raise ConfigError(f"unknown collective {kind!r}; choose one of {', '.join(KINDS)}", key="collective")
    if fidelity not in ("astra-sim", "cosmic"):
        raise ConfigError(f"must be astra-sim or cosmic, got {fidelity!r}", key="--fidelity")
    rec = run_collective(Collective(kind), parse_size(size), network, system, fidelity)
    if json_out:
        emit_json(rec)
        return
    t = Table(title=f"{rec['collective']} of {rec['size_bytes']:,} B on {rec['npus']:,} NPUs ({fidelity})",
              title_justify="left")
    t.add_column("dim")
    t.add_column("topology")
    t.add_column("phase")
    t.add_column("algorithm")
    t.add_column("bytes in", justify="right")
    t.add_column("ns per chunk", justify="right")
    for ph in rec["phases"]:
        t.add_row(str(ph["dim"]), f"{ph['topology']}({ph['npus']})", ph["collective"], ph["algorithm"],
                  f"{ph['bytes_in']:,.0f}", f"{ph['time_ns_per_chunk']:,.0f}")
    out.print(t)
    out.print(
        f"time {rec['time_ns']:,.0f} ns ({rec['chunks']} chunks of {rec['chunk_bytes']:,.0f} B)  ·  "
        f"algbw {rec['algbw_GBps']:.3f} GB/s  ·  busbw {rec['busbw_GBps']:.3f} GB/s"
    )
    for note in rec["notes"]:
        out.print(f"note: {note}")


def astra_export(
    config: Annotated[Path, typer.Argument(help="a cosmic configuration YAML")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for network.yml and system.json")] = Path("."),
) -> None:
    """Write CONFIG's network and collective stacks as ASTRA-sim's network.yml and system.json."""
    import cosmic
    from cosmic.collective.astra_io import export_astra
    from cosmic.commands._output import out

    cfg = cosmic.load_config(config)
    net, sysf = export_astra(cfg.network, cfg.collective, out_dir)
    out.print(f"wrote {net} and {sysf}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="collective")(collective)
    app.command(name="astra-export")(astra_export)
