"""A collectives row (nccl-tests style) -> a network, the collective priced by cosmic, and bus bandwidth.

nccl-tests conventions (NVIDIA/nccl-tests doc/PERFORMANCE.md): ``algbw = S / t`` with S the buffer size for
all-reduce and the *total* array for all-gather / reduce-scatter; ``busbw = algbw * factor`` with factor
2(n-1)/n for all-reduce, (n-1)/n for all-gather, reduce-scatter and all-to-all, 1 for send/recv and copies.
cosmic's collective model takes bytes per NPU entering the collective (all-gather: the input shard), so an
all-gather of S total is priced with a shard of S/n.
"""

from __future__ import annotations

import math
import re

from cosmic import catalog
from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.communicator import Communicator
from cosmic.collective.model import MultiDim, collective_time, p2p_time
from cosmic.errors import CosmicError
from cosmic.network.topology import Network
from cosmic.sim.config import CollectiveConfig
from cosmic.validate import mapping
from cosmic.validate.table import Row
from cosmic.validate.training import Comparison, Skip

PLATEAU_BYTES = 8 * 2**30
"""Size used for rows that state no message size: such figures (vendor slides, issue threads) quote the plateau
bus bandwidth, which nccl-tests reaches at its largest sizes (``-e 8G``)."""
CHUNKS = CollectiveConfig().chunks
"""Chunks per collective: cosmic's default, the same the simulator uses inside a training step."""
PRINT_RESOLUTION_GBPS = 0.05
"""nccl-tests prints busbw with two decimals; below this the printed value is too coarse and busbw is recomputed
from the printed time (busbw = S / t * factor)."""

KINDS = {
    "all_reduce": Collective.ALL_REDUCE,
    "allreduce": Collective.ALL_REDUCE,
    "all_gather": Collective.ALL_GATHER,
    "allgather": Collective.ALL_GATHER,
    "reduce_scatter": Collective.REDUCE_SCATTER,
    "reducescatter": Collective.REDUCE_SCATTER,
    "all_to_all": Collective.ALL_TO_ALL,
    "alltoall": Collective.ALL_TO_ALL,
}
P2P = ("sendrecv", "send_recv", "p2p_copy", "p2p", "copy")


def busbw_factor(kind: str, n: int) -> float:
    """nccl-tests busbw / algbw factor."""
    if kind == "all_reduce":
        return 2.0 * (n - 1) / n
    if kind in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    return 1.0


def _in_network_reduction(row: Row) -> bool:
    algo = row.get("nccl_algo").lower()
    if algo and re.search(r"nvls|sharp|collnet", algo) and not re.search(r"nvls_enable=0", algo):
        return True
    texts = " ".join(row.get(k).lower() for k in ("intra_node_fabric", "inter_node_fabric", "message_label"))
    return bool(re.search(r"\bnvls|sharp(?!\s*capable)", texts))


def _kind(text: str) -> tuple[str, str]:
    t = text.strip().lower()
    m = re.match(r"[a-z_0-9]+", t)
    key = m.group(0) if m else t
    return key, t[len(key):].strip()


def predict_busbw(row: Row, defaults: list[str]) -> tuple[float, str]:
    """Predicted bus bandwidth (GB/s) of the row's collective and the metric name (raises Skip)."""
    key, qualifier = _kind(row.get("collective"))
    if "training" in qualifier:
        raise Skip("measured inside a training run, not an isolated collective benchmark")
    if key not in KINDS and key not in P2P:
        raise Skip(f"collective {row.get('collective')!r} not modelled")
    if _in_network_reduction(row):
        raise Skip("in-network reduction (NVLS / SHARP) is not modelled by cosmic's collectives")
    n = row.i("num_ranks")
    if not n:
        raise Skip("num_ranks not stated")
    accel = mapping.accelerator_name(row.get("accel"))
    if key in P2P and n < 2:
        raise Skip("host-device copy (one device), not an inter-device transfer")
    nd = mapping.NODE_DEFAULTS.get(accel or "")
    per_node = row.i("accel_per_node") or (nd.node_size if nd else 8)
    nodes_text = row.get("num_nodes").lower()
    nodes = row.i("num_nodes")
    if nodes is None:
        nodes = max(1, math.ceil(n / per_node)) if nodes_text == "multi" else 1
        if nodes_text == "multi":
            defaults.append(f"{nodes} nodes of {per_node}")
    intra = mapping.intra_fabric(row.get("intra_node_fabric"), accel)
    if intra is None or intra not in catalog.fabric_names():
        raise Skip(f"intra-node fabric {row.get('intra_node_fabric')!r} not in the fabric catalog")
    inter_text = row.get("inter_node_fabric")
    inter = mapping.inter_fabric(inter_text, accel) if nodes > 1 else None
    topo = "FullyConnected" if intra == "infinity-fabric" else "Switch"
    if nodes <= 1 or (inter is not None and inter.startswith("nvlink")):
        dims = [{"topology": topo, "npus": n, "fabric": intra}]
    else:
        if inter is None or inter not in catalog.fabric_names():
            raise Skip(f"scale-out fabric {inter_text!r} not in the fabric catalog")
        if n % nodes:
            raise Skip(f"{n} ranks do not split evenly over {nodes} nodes")
        inter_dim: dict[str, object] = {"topology": "Switch", "npus": nodes, "fabric": inter}
        rate = mapping.per_accel_gbps(inter_text, n // nodes)
        if rate is not None:
            inter_dim["link_gbps"] = rate
        if not inter_text:
            defaults.append(f"scale-out fabric {inter}")
        dims = [{"topology": topo, "npus": n // nodes, "fabric": intra}, inter_dim]
    try:
        net = Network.model_validate({"dims": dims})
    except Exception as exc:  # pydantic validation of our own dims: report, never crash
        raise Skip(f"cannot build the network: {exc}") from None
    group = Communicator(net, CollectiveConfig(), (1, 1, n, 1), ("tp", "sp", "dp", "pp")).group_dims("dp")
    size = row.n("message_bytes")
    if not size:
        size = float(PLATEAU_BYTES)
        defaults.append("message size not stated: plateau (8 GiB)")
    if key in P2P:
        t = p2p_time(size, group).total_s
        bw = size / t / 1e9
        both = "bidirectional" in (row.get("accel") + " " + row.get("notes")).lower()
        return (2 * bw if both else bw), "busbw_GBps"
    kind = KINDS[key]
    per_npu = size / n if kind is Collective.ALL_GATHER else size
    stated = row.get("nccl_algo").lower()
    if stated.startswith("ring"):
        choices = [Algorithm.RING]
    elif stated.startswith("tree") and kind is Collective.ALL_REDUCE:
        choices = [Algorithm.DOUBLE_BINARY_TREE]
    elif kind is Collective.ALL_REDUCE:
        # NCCL's tuner picks the algorithm its cost model predicts fastest: ring or (multi-node) tree
        choices = [Algorithm.RING, Algorithm.DOUBLE_BINARY_TREE]
    else:
        choices = [Algorithm.RING]
    t = math.inf
    for outer in choices:
        algos = (Algorithm.RING,) * (len(net.dims) - 1) + (outer,)
        ct = collective_time(kind, per_npu, group, algos, chunks=CHUNKS, multidim=MultiDim.LOCAL_BW_AWARE)
        t = min(t, ct.total_s)
    if not math.isfinite(t) or t <= 0:
        raise Skip("the collective spans a single rank")
    return size / t / 1e9 * busbw_factor(kind.value, n), "busbw_GBps"


def measured_busbw(row: Row) -> float | None:
    key, _ = _kind(row.get("collective"))
    kind = KINDS[key].value if key in KINDS else key
    busbw = row.n("busbw_GBps")
    t, s, n = row.n("time_us"), row.n("message_bytes"), row.i("num_ranks")
    if (busbw is None or busbw < PRINT_RESOLUTION_GBPS) and t and s and n:
        return s / (t * 1e-6) / 1e9 * busbw_factor(kind, n)
    if busbw is None and row.n("algbw_GBps") and n:
        return (row.n("algbw_GBps") or 0.0) * busbw_factor(kind, n)
    return busbw if busbw else None


def compare_row(row: Row) -> Comparison:
    out = Comparison(row_id=row.row_id, study=row.study, line=row.line)
    measured = measured_busbw(row)
    if measured is None:
        out.skipped_reason = "no measured bus bandwidth (or time and size)"
        return out
    defaults: list[str] = []
    try:
        pred, metric = predict_busbw(row, defaults)
    except Skip as exc:
        out.skipped_reason = str(exc)
        return out
    except CosmicError as exc:
        out.skipped_reason = f"cannot price: {exc}"
        return out
    out.metric, out.measured, out.predicted = metric, measured, pred
    out.error_pct = (pred - measured) / measured * 100.0
    out.speed_error_pct = out.error_pct
    out.defaults = defaults
    key, _ = _kind(row.get("collective"))
    multi = (row.i("num_nodes") or 1) > 1 or row.get("num_nodes").lower() == "multi"
    out.group = f"{key} {'multi-node' if multi else 'single-node'}"
    return out
