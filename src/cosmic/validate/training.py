"""A training-runs row -> a cosmic configuration, its simulation, and the comparison with the measured metric.

The row's content decides everything: model shape (or a catalog model named like it), batch, layout, schedule,
recompute, sharding, precision, accelerator, node size and fabrics. Cells a row leaves empty take the defaults
documented in ``docs/validation.md``; each default used is listed in the row's ``defaults``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cosmic import catalog
from cosmic.errors import CosmicError
from cosmic.sim.config import SystemConfig, config_from_dict
from cosmic.sim.engine import simulate
from cosmic.sim.regime import Regime, classify_config
from cosmic.sim.result import Result
from cosmic.validate import mapping, moe
from cosmic.validate.table import Row
from cosmic.workload.pipeline import stage_layers

DEFAULT_SEQ_LEN = 2048
"""GPT-3-era default sequence length for rows that do not state one."""
DEFAULT_VOCAB = 51200
"""GPT-2 BPE vocabulary padded to 51200 (Megatron) for rows that do not state one."""
DEFAULT_HEAD_DIM = 128
"""Head dimension used to derive the head count when only `hidden` is stated."""


class Skip(Exception):
    """The row cannot be compared; the message is the reason shown to the user."""


@dataclass
class Plan:
    """What the row was turned into: the config and the notes on how."""

    config: SystemConfig
    defaults: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    row_id: str
    study: str
    line: int
    metric: str | None = None
    predicted: float | None = None
    measured: float | None = None
    error_pct: float | None = None
    speed_error_pct: float | None = None
    skipped_reason: str | None = None
    defaults: list[str] = field(default_factory=list)
    group: str = ""
    notes: list[str] = field(default_factory=list)
    regime: Regime | None = None
    """The validated regime of the configuration the row was compared with (`cosmic.sim.regime`)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"row_id": self.row_id, "study": self.study, "group": self.group}
        if self.regime is not None:
            d["regime"] = self.regime.label
        if self.skipped_reason is not None:
            d["skipped_reason"] = self.skipped_reason
        else:
            d.update(
                predicted=self.predicted,
                measured=self.measured,
                metric=self.metric,
                error_pct=self.error_pct,
                speed_error_pct=self.speed_error_pct,
            )
        if self.defaults:
            d["defaults"] = list(self.defaults)
        if self.notes:
            d["notes"] = list(self.notes)
        return d


# ---- model --------------------------------------------------------------------------------------------------------


def _norm_name(text: str) -> str:
    """Lower-case letters and digits only; a decimal point stays ("GPT-3 1.3B" is not "gpt3-13b")."""
    t = re.sub(r"\(.*?\)", "", text.lower())
    return re.sub(r"[^a-z0-9]", "", re.sub(r"(?<=\d)\.(?=\d)", "p", t))


def _catalog_model(name: str) -> dict[str, Any] | None:
    """The catalog model of that name; a point release names its family's shape ("Llama 3.1 405B" -> llama3-405b);
    a generation number set apart between family and size is dropped when nothing else matches ("Nemotron-4 340B"
    -> nemotron-340b, the name NeMo's tables use).

    Example:
        >>> _catalog_model("LLAMA3.1_405B")["name"], _catalog_model("Llama-2 70B")["name"], _catalog_model("GPT-3 1.3B")
        ('llama3-405b', 'llama2-70b', None)
        >>> _catalog_model("Nemotron-4 340B")["name"], _catalog_model("LLaMA-65B")["name"]
        ('nemotron-340b', 'llama-65b')
    """
    keys = [_norm_name(name), _norm_name(re.sub(r"(?<=\d)\.\d+(?=[\s_-])", "", name)),
            _norm_name(re.sub(r"(?<=[A-Za-z])[\s_-]\d+(?=[\s_-]\d+(?:\.\d+)?[bBmM]\b)", "", name))]
    by_key = {_norm_name(cand): cand for cand in catalog.model_names()}
    for key in keys:
        if key and key in by_key:
            return catalog.get_model(by_key[key])
    return None


def _model(row: Row, defaults: list[str]) -> dict[str, Any]:
    cat = _catalog_model(row.get("model"))
    layers, hidden, heads = row.i("layers"), row.i("hidden"), row.i("heads")
    if layers is None or hidden is None:
        if cat is None:
            raise Skip("model shape (layers, hidden) not stated and no catalog model of that name")
        m = {k: v for k, v in cat.items() if k not in ("published_params_b", "source", "params_tolerance_pct")}
        defaults.append(f"model shape from catalog '{cat['name']}'")
    else:
        m = {"name": row.get("model") or "row", "layers": layers, "hidden": hidden}
        if heads is None:
            if cat is not None and cat.get("hidden") == hidden:
                heads = int(cat["heads"])
            else:
                heads = max(1, hidden // DEFAULT_HEAD_DIM)
                tp = max(1, row.i("tp") or 1)
                if heads % tp or hidden % heads:
                    # the stated TP splits the heads: the head count it divides with the head dim nearest 128
                    fits = [h for h in range(tp, hidden + 1, tp) if hidden % h == 0] or [heads]
                    heads = min(fits, key=lambda h: (abs(hidden // h - DEFAULT_HEAD_DIM), h))
                    defaults.append(f"heads = {heads} (head dim {hidden // heads}, nearest {DEFAULT_HEAD_DIM} "
                                    f"that tp={tp} divides)")
                else:
                    defaults.append(f"heads = hidden/{DEFAULT_HEAD_DIM} = {heads}")
        m["heads"] = heads
        if cat is not None:
            for k in ("vocab", "kv_heads", "ffn_hidden", "gated_mlp", "position", "norm", "bias", "tied_embeddings"):
                if k in cat:
                    m[k] = cat[k]
    m.pop("name", None)
    m["name"] = row.get("model") or "row"
    ffn, kv = row.i("ffn_hidden"), row.i("kv_heads")
    if ffn is not None:
        m["ffn_hidden"] = ffn
    if kv is not None:
        m["kv_heads"] = kv
    llama_like = "llama" in row.get("model").lower()
    f = m.get("ffn_hidden")
    if (f is not None and f != 4 * m["hidden"]) or llama_like:
        # SwiGLU models size the MLP at ~8h/3 (Llama 2) or 3.5h (Llama 3); plain GPT MLPs use 4h
        m.setdefault("gated_mlp", True)
        m.setdefault("position", "rotary")
        m.setdefault("norm", "rmsnorm")
        m.setdefault("bias", False)
    seq = row.i("seq_len")
    if seq is None:
        seq = int(m.get("seq_len") or DEFAULT_SEQ_LEN)
        defaults.append(f"seq_len = {seq}")
    m["seq_len"] = seq
    vocab = row.i("vocab")
    noted = mapping.stated_number(row.get("notes"), "vocab")
    if vocab is not None:
        m["vocab"] = vocab
    elif noted is not None:
        m["vocab"] = noted
        defaults.append(f"vocab = {noted} (from the notes)")
    elif "vocab" not in m:
        m["vocab"] = DEFAULT_VOCAB
        defaults.append(f"vocab = {DEFAULT_VOCAB}")
    return m


# ---- network ---------------------------------------------------------------------------------------------------


def _dim(topology: str, npus: int, fabric: str, link_gbps: float | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"topology": topology, "npus": npus, "fabric": fabric}
    if link_gbps is not None:
        d["link_gbps"] = link_gbps
    return d


def _torus(n: int, k: int) -> list[int]:
    """Split n chips into k ring sizes as equal as possible, the largest prime factors placed first so that an odd
    factor stays on one ring (3072 chips: 12 x 16 x 16, which a 12-way tensor-parallel group fills).

    Example:
        >>> _torus(3072, 3), _torus(4096, 3), _torus(256, 2)
        ([12, 16, 16], [16, 16, 16], [16, 16])
    """
    primes: list[int] = []
    rest, q = n, 2
    while rest > 1:
        while rest % q == 0:
            primes.append(q)
            rest //= q
        q += 1
    sizes = [1] * k
    for p in sorted(primes, reverse=True):
        j = min(range(k), key=lambda a: sizes[a])
        sizes[j] *= p
    return sorted(sizes)


def network_for(
    accel: str, n: int, node: int, intra_text: str, inter_text: str, defaults: list[str]
) -> list[dict[str, Any]]:
    """Network dims for `n` devices in nodes of `node`: NVSwitch-like Switch inside, a Switch fabric outside."""
    nd = mapping.NODE_DEFAULTS.get(accel)
    if nd is not None and nd.pod_size:
        # a TPU: one ICI torus up to a pod; more chips = equal slices joined by the DCN
        slices = next(s for s in range(-(-n // nd.pod_size), n + 1) if n % s == 0)
        ici = [_dim("Ring", s, nd.intra_fabric) for s in _torus(n // slices, nd.torus_dims) if s > 1]
        if slices > 1:
            defaults.append(f"{slices} slices of {n // slices} chips over the data-center network ({nd.inter_fabric})")
            return [*ici, _dim("Switch", slices, str(nd.inter_fabric))]
        return ici or [_dim("Ring", 1, nd.intra_fabric)]
    intra = mapping.intra_fabric(intra_text, accel)
    if intra is None or intra not in catalog.fabric_names():
        raise Skip(f"intra-node fabric {intra_text!r} not in the fabric catalog")
    if not intra_text:
        defaults.append(f"intra-node fabric {intra}")
    if n <= node:
        return [_dim("Switch", n, intra)]
    if n % node:
        # A job that does not fill its nodes spreads evenly over the fewest nodes that hold it (256 GPUs of NVL72
        # racks: 4 racks of 64); a count no such split gives is not compared.
        nodes = next((k for k in range(-(-n // node), n + 1) if n % k == 0 and n // k <= node), None)
        if nodes is None or n // nodes == 1:
            raise Skip(f"{n} devices do not fill whole nodes of {node}")
        defaults.append(f"{n} devices on {nodes} nodes of {n // nodes} (nodes of {node} not filled)")
        node = n // nodes
    inter = mapping.inter_fabric(inter_text, accel)
    if inter is None or inter not in catalog.fabric_names():
        raise Skip(f"scale-out fabric {inter_text!r} not in the fabric catalog")
    rate = mapping.per_accel_gbps(inter_text, node)
    if not inter_text:
        defaults.append(f"scale-out fabric {inter}" + (f" ({nd.note})" if nd else ""))
    return [_dim("Switch", node, intra), _dim("Switch", n // node, inter, rate)]


# ---- the row as a config ---------------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


NCCL_COLLECTIVES = {"all_reduce": "ring", "all_gather": "ring", "reduce_scatter": "ring", "all_to_all": "direct"}
"""Every stack in the file runs its collectives on NCCL (or, on TPUs, rings of the ICI torus): ring is NCCL's only
all-gather / reduce-scatter algorithm (PAT, from 2.23, serves one GPU per node only) and its bandwidth-optimal
all-reduce for the large gradient buckets; cosmic's own default for a Switch, halving-doubling, is not NCCL's. NCCL has
no all-to-all algorithm of its own: PyTorch's ``all_to_all_single`` and Megatron-Core's dispatcher (as DeepEP) post one
send and one receive per peer in a group (``ncclGroupStart``/``ncclSend``/``ncclRecv``; nccl-tests ``alltoall.cu``),
which is cosmic's ``direct`` algorithm."""


def plan_row(row: Row) -> Plan:
    """Turn a training-runs row into a :class:`Plan` (raises :class:`Skip` with the reason if it cannot)."""
    defaults: list[str] = []
    accel_text = row.get("accel")
    accel = mapping.accelerator_name(accel_text, row.n("accel_mem_gb"), row.get("notes"))
    if accel is None:
        raise Skip(f"accelerator {accel_text!r} not in the catalog" if accel_text else "accelerator not stated")
    prec = mapping.precision(row.get("precision"))
    if prec is None:
        raise Skip(f"precision {row.get('precision')!r} (FP4 or integer quantised training) not modelled")
    if not row.get("precision"):
        if "fp16" not in catalog.get_accelerator(accel)["peak_tflops"]:
            prec = "bf16"  # TPUs have no fp16 units
        defaults.append(f"precision not stated: {prec} (16-bit)")
    try:
        block = moe.parse_block(row)
    except moe.BadBlock as exc:
        raise Skip(str(exc)) from None
    text_all = " ".join(row.get(k).lower() for k in ("model", "notes"))
    if block is None and re.search(r"\bmoe\b|mixture of experts|mixtral|experts", text_all):
        raise Skip("mixture-of-experts model without a `moe:` block in its notes (experts, top_k, width unknown)")
    n = row.i("num_accel")
    if not n:
        raise Skip("num_accel not stated")
    model = _model(row, defaults)
    if block is not None:
        moe.apply_model(row, model, block, _catalog_model(row.get("model")), defaults)
    seq = model["seq_len"]
    gb = row.i("global_batch_seqs")
    if gb is None and row.n("global_batch_tokens"):
        gb = int(round((row.n("global_batch_tokens") or 0) / seq))
    if not gb:
        raise Skip("global batch not stated")

    node = row.i("accel_per_node") or mapping.NODE_DEFAULTS[accel].node_size
    if not row.i("accel_per_node"):
        defaults.append(f"{node} devices per node")
    dims = network_for(accel, n, node, row.get("intra_node_link"), row.get("inter_node_network"), defaults)

    shard, implied = mapping.row_sharding(row.get("zero_fsdp"), row.get("notes"), row.get("framework"))
    if implied:
        defaults.append("zero_fsdp not stated: ZeRO-1 (the stack's distributed optimizer)" if not row.get("zero_fsdp")
                        else f"zero_fsdp {row.get('zero_fsdp')!r}: ZeRO-1 (the stack's distributed optimizer)")
    tp, pp, dp, cp = row.i("tp"), row.i("pp"), row.i("dp"), row.i("cp") or 1
    framework = row.get("framework")
    modern = mapping.is_modern_megatron(framework)
    seq_par = mapping.yes_no(row.get("seq_parallel"))
    rec = mapping.recompute(row.get("act_recompute"), row.get("tflops_basis"))
    rec_stated = bool(row.get("act_recompute")) or rec != "none"
    rec_from_basis = rec_stated and not row.get("act_recompute")
    if not rec_stated and implied_recompute(row, model, gb, n):
        rec, rec_stated = "full", True
        defaults.append("recompute full: the row's TFLOP/s x time is Megatron eq. 3 with the recompute pass")
    vpp = mapping.virtual_stages(row.get("vpp"))
    cp_algo = mapping.cp_algorithm(framework, row.get("notes"))
    if cp > 1:
        defaults.append(f"context parallelism: {cp_algo} (the stack's algorithm)")

    base: dict[str, Any] = {
        "name": row.row_id,
        "model": model,
        "accelerator": accel,
        "network": {"dims": dims},
        "collective": NCCL_COLLECTIVES,
    }
    training: dict[str, Any] = {
        "global_batch": gb,
        "precision": prec,
        "recompute": rec,
        "stack_date": mapping.stack_date(framework, row.get("notes"), row.get("source")),
        "fp8_recipe": mapping.fp8_recipe(row.get("precision"), framework),
        "execution": mapping.execution(framework, row.get("notes")),
        "dp_overlap": mapping.overlaps_dp(framework),
        "param_gather_overlap": mapping.overlaps_param_gather(row.get("notes"), row.get("zero_fsdp"), framework)
        or mapping.nemo_overlaps_param_gather(framework, shard.zero),
        "attention_kernel": mapping.attention_kernel(framework, row.get("model"), accel, row.get("notes")),
        "grad_accumulation_fusion": mapping.fuses_grad_accumulation(framework),
        "grad_reduce_fp32": mapping.reduces_grads_in_fp32(row.get("zero_fsdp"), framework, prec),
        "framework": mapping.framework_family(framework),
        "tp_comm_overlap": mapping.tp_comm_overlap(framework, row.get("notes")),
    }
    expert: dict[str, Any] = {}
    if block is not None:
        imb, why = moe.imbalance(row)
        training.update(moe_imbalance=imb, moe_overlap=moe.overlaps(row))
        expert = {"ep": block.ep, "moe_dispatcher": moe.dispatcher(row)}
        if block.etp is not None:
            expert["etp"] = block.etp
        defaults.append(why)

    def make(tp_: int, pp_: int, dp_: int, mb: int, zero: int, v: int | None) -> SystemConfig:
        sp_flag = seq_par if seq_par is not None else (modern and tp_ > 1)
        tr = dict(training, micro_batch=mb)
        if zero == 3:
            tr.update(mapping.zero3_schedule(row.get("zero_fsdp"), framework, row.get("notes"), pp_))
        m_count = gb // (dp_ * mb)
        vv = v
        if vv is None:  # "interleaved" without a number: the smallest chunk count > 1 the layers allow
            vv = next((c for c in (2, 3, 4) if model["layers"] % (pp_ * c) == 0), 1)
        # a stated chunk count holds when every stage has a layer per chunk (uneven chunks, as Llama 3 405B ran)
        chunks_fit = min(stage_layers(model["layers"], pp_)) >= vv if v is not None else \
            model["layers"] % (pp_ * vv) == 0
        if pp_ > 1 and vv > 1 and chunks_fit and m_count % pp_ == 0:
            tr.update(schedule="interleaved", virtual_stages=vv)
        else:
            tr.update(schedule="1f1b")
        cfg = dict(base, training=tr)
        shard_group = hsdp.get("shard")
        if shard_group is None or zero == 0 or shard_group >= dp_ * cp or (dp_ * cp) % shard_group:
            shard_group = None
        cfg["parallel"] = {
            "tp": tp_, "pp": pp_, "dp": dp_, "sp": cp, "zero": zero, "sequence_parallel": bool(sp_flag),
            "cp_algorithm": cp_algo,
            **({"shard_group": shard_group} if shard_group else {}),
            "rank_order": "tp,sp,dp,pp", **moe.expert_layout(expert, block, tp_ * cp * dp_, tp_, defaults),
        }
        return config_from_dict(cfg)

    per_stage = mapping.micro_batches_per_stage(framework)
    # hybrid sharding: named in the text, or an FSDP degree stated apart from a DP degree > 1 (MaxText meshes:
    # the fsdp axis shards, the data axis replicates)
    hsdp: dict[str, int] = {}
    named = mapping.hybrid_shard_group(row.get("zero_fsdp"), row.get("notes"), max(1, node // (tp or 1)))
    if named is not None:
        hsdp["shard"] = named * cp

    def micro_batches(dp_: int, pp_: int) -> list[int]:
        stated = row.i("micro_batch")
        if stated:
            return [stated]
        per_replica = gb // dp_ if gb % dp_ == 0 else 0
        if per_replica == 0:
            return []
        if pp_ > 1:
            if per_stage and per_replica % pp_ == 0:
                return [per_replica // pp_]  # as many micro-batches as stages
            return [1]
        return sorted(_divisors(per_replica), reverse=True)

    zero = shard.zero
    sharding_open = zero == 0 and not row.get("zero_fsdp") and not implied  # no sharding stated or implied
    if tp is None and pp is None and dp is None:
        if zero != 3:
            # with no sharding stated and nothing fitting unsharded, the run sharded its states (it did fit)
            for z in (0, 1) if sharding_open else (zero,):
                try:
                    plan = _search_layout(row, n, cp, node, model, z, vpp, make, micro_batches, defaults)
                except Skip:
                    if not sharding_open:
                        raise
                    continue
                if z != zero:
                    plan.defaults.append("zero_fsdp not stated: ZeRO-1 (no unsharded layout fits memory)")
                return plan
            zero = 3
            defaults.append("zero_fsdp not stated: ZeRO-3 / FSDP (no layout fits memory with less sharding)")
        # sharded data parallel over every device; when the batch has fewer sequences, the least TP that splits it
        def builds(t: int) -> bool:
            try:
                make(t, 1, n // (cp * t), 1, zero, vpp)
            except CosmicError:
                return False
            return True

        tp = next((t for t in _divisors(n // cp) if gb % (n // (cp * t)) == 0 and builds(t)), 1)
        pp, dp = 1, n // (cp * tp)
        defaults.append(f"layout dp={dp} (sharded data parallel)" if tp == 1 else
                        f"layout tp={tp} dp={dp} (sharded data parallel; {gb} sequences do not split over {n // cp})")
    tp = tp or 1
    if pp is None:
        pp = n // (tp * dp * cp) if dp else 1
    if dp is None:
        dp = n // (tp * pp * cp)
    if tp * pp * dp * cp != n:
        if shard.extra_dp > 1 and tp * pp * dp * cp * shard.extra_dp == n:
            if dp > 1 and "shard" not in hsdp:
                hsdp["shard"] = shard.extra_dp * cp
                defaults.append(f"FSDP {shard.extra_dp} beside dp {dp}: hybrid sharding, shard group "
                                f"{shard.extra_dp * cp}, {dp} replicas")
            dp *= shard.extra_dp
        elif _stated_layout_holds(row, tp, pp, dp, cp, gb):
            # every degree stated and the batch splits over the stated DP, but the device count disagrees: a
            # per-device figure is the stated layout's, so it runs on tp*pp*dp*cp devices
            defaults.append(f"num_accel {n} != tp*pp*dp*cp = {tp * pp * dp * cp}: the per-device figure is "
                            "simulated on the stated layout")
            base["network"] = {"dims": network_for(accel, tp * pp * dp * cp, node, row.get("intra_node_link"),
                                                   row.get("inter_node_network"), [])}
        else:
            raise Skip(f"tp*pp*dp*cp = {tp}*{pp}*{dp}*{cp} = {tp * pp * dp * cp} != {n} devices")
    if gb % dp:
        raise Skip(f"global batch {gb} is not a multiple of dp={dp}")
    # The run fitted its memory. What the row leaves open is chosen as its authors would have: the least recompute
    # that fits (none, selective, full) and, when no sharding is stated, the optimizer states sharded over DP
    # (ZeRO-1, the distributed optimizer: the same gradient bytes as an all-reduce) only if that is what makes it fit.
    recs = ("none", "selective", "full") if not rec_stated else (rec,)
    zeros = (0, 1) if sharding_open and zero == 0 and dp > 1 else (zero,)
    if len(recs) > 1 or len(zeros) > 1:
        fitted = False
        for choice in recs:
            training["recompute"] = choice
            for z in zeros:
                try:
                    probe = make(tp, pp, dp, row.i("micro_batch") or 1, z, vpp)
                except CosmicError:
                    break
                if simulate(probe).fits_memory:
                    zero, fitted = z, True
                    break
            if fitted:
                break
        if not fitted:
            training["recompute"] = recs[-1]
        if zero != zeros[0]:
            defaults.append("zero_fsdp not stated: ZeRO-1 (without it the run would not fit memory)")
    if not rec_stated:
        defaults.append(f"recompute not stated: {training['recompute']} (least that fits memory)")
    elif rec_from_basis:
        defaults.append(f"recompute {rec} (implied by the FLOP basis)")
    last: Exception | None = None
    mbs = micro_batches(dp, pp)
    if row.i("micro_batch") is None and mbs:
        defaults.append(f"micro-batch: {mbs[0]}, the local batch over the {pp} stages (torchtitan)"
                        if per_stage and pp > 1 and mbs[0] > 1 else
                        "micro-batch: 1 with pipelining, else the largest that fits memory")
    for mb in mbs:
        if gb % (dp * mb):
            continue
        try:
            cfg = make(tp, pp, dp, mb, zero, vpp)
        except CosmicError as exc:
            last = exc
            continue
        if len(mbs) == 1 or simulate(cfg).fits_memory:
            return Plan(cfg, defaults)
    if last is not None and not isinstance(last, Skip):
        raise Skip(f"cannot build a valid configuration: {last}")
    if mbs:
        cfg = make(tp, pp, dp, mbs[-1], zero, vpp)
        return Plan(cfg, defaults)
    raise Skip("no micro-batch size divides the per-replica batch")


PER_DEVICE_METRICS = ("tokens_per_s_per_accel", "tflops_per_accel", "mfu_pct", "pct_of_peak_reported")


def _stated_layout_holds(row: Row, tp: int, pp: int, dp: int, cp: int, global_batch: int) -> bool:
    """Whether a row whose stated degrees disagree with its device count still states one whole layout: every
    degree in its cells, the global batch a multiple of the stated DP, and the measured figure per device (its
    first metric, as `compare_row` picks it), which a layout sets whatever the number of devices."""
    metric = next((m for m in METRIC_ORDER if row.n(m)), None)
    stated = all(row.i(k) for k in ("tp", "pp", "dp"))
    return bool(stated and metric in PER_DEVICE_METRICS and global_batch % dp == 0 and tp * pp * dp * cp > 1)


def _search_layout(
    row: Row, n: int, cp: int, node: int, model: dict[str, Any], zero: int, vpp: int | None,
    make: Callable[[int, int, int, int, int, int | None], SystemConfig],
    micro_batches: Callable[[int, int], list[int]], defaults: list[str],
) -> Plan:
    """Layout not stated: the fastest layout that fits memory (tp within a node, then pp), as the authors tuned;
    among those with tp * pp equal to the model-parallel size when the notes state one."""
    best: tuple[float, SystemConfig] | None = None
    mp = mapping.model_parallel_size(row.get("notes"))
    if mp is not None and (mp < 1 or n % (mp * cp)):
        mp = None
    for tp in [t for t in (1, 2, 4, 8, 16) if t <= node and n % t == 0]:
        for pp in _divisors(n // (tp * cp)):
            if pp > model["layers"]:
                break
            if mp is not None and tp * pp != mp:
                continue
            dp = n // (tp * pp * cp)
            for mb in micro_batches(dp, pp)[:1] if pp > 1 else micro_batches(dp, pp):
                try:
                    cfg = make(tp, pp, dp, mb, zero, vpp)
                    res = simulate(cfg)
                except CosmicError:
                    continue
                if not res.fits_memory:
                    continue
                if best is None or res.step_time_s < best[0]:
                    best = (res.step_time_s, cfg)
                break
    if best is None:
        raise Skip("layout not stated and no layout fits memory")
    p = best[1].parallel
    if mp is not None:
        defaults.append(f"tp x pp split not stated: fastest fitting of tp*pp = {mp}: tp={p.tp} pp={p.pp} dp={p.dp}")
    else:
        defaults.append(f"layout not stated: fastest fitting tp={p.tp} pp={p.pp} dp={p.dp}")
    return Plan(best[1], defaults)


# ---- metrics ---------------------------------------------------------------------------------------------------


def megatron_eq3(batch: int, seq: int, layers: int, hidden: int, vocab: int, passes: int = 4) -> float:
    """Narayanan et al. 2021 eq. (3): GEMM FLOPs of a step, 24 p B s l h^2 (1 + s/6h + V/(4 p l h)) for `passes` p
    over the layers (4 with the recompute forward: 96 B s l h^2 (1 + s/6h + V/16lh); 3 without); the logits GEMM
    (6 B s h V) is counted once either way.

    Example:
        >>> megatron_eq3(1, 6, 1, 1, 4, passes=4) == 96 * 6 * (1 + 1 + 4 / 16)
        True
    """
    return 24.0 * passes * batch * seq * layers * hidden * hidden * (
        1 + seq / (6 * hidden) + vocab / (4 * passes * layers * hidden)
    )


def megatron_eq3_flops(cfg: SystemConfig) -> float:
    """FLOPs of one step by Narayanan et al. 2021 eq. (3): 96 B s l h^2 (1 + s/6h + V/16lh).

    Counts GEMMs only, with the recompute forward pass (4 passes), whatever recompute the run used.
    """
    m = cfg.model
    return megatron_eq3(cfg.training.global_batch, cfg.seq_len, m.layers, m.hidden, m.vocab)


def implied_recompute(row: Row, model: dict[str, Any], global_batch: int, n: int) -> bool:
    """Whether the row's own TFLOP/s figure counts a recompute forward pass.

    A row that states TFLOP/s per device and a step time (or a throughput), but no FLOP basis and no recompute,
    still says which FLOPs it counted: TFLOP/s x step time x devices. When that product is Megatron eq. (3)
    (GEMMs of four passes, 96 B s l h^2 (1 + s/6h + V/16lh)) within 5%, and further from the three-pass count
    (72 B s l h^2 (1 + s/6h + V/12lh)), the run recomputed its activations.

    Example (GPT-2 8B on 8 A100, batch 16, 1.343 s, 109.3 TFLOP/s: 4-pass count 1.175e15):
        >>> from cosmic.validate.table import Row
        >>> r = Row(line=2, text={}, num={"tflops_per_accel": 109.3, "step_time_s": 1.343})
        >>> implied_recompute(r, {"layers": 42, "hidden": 4096, "vocab": 51200, "seq_len": 1024}, 16, 8)
        True
    """
    basis = row.get("tflops_basis").lower()
    tflops = row.n("tflops_per_accel")
    if not tflops or (basis and "hardware" not in basis):
        return False
    seq, layers, h, v = model["seq_len"], model["layers"], model["hidden"], model.get("vocab") or 0
    tokens = global_batch * seq
    if row.n("step_time_s"):
        step_s = row.n("step_time_s") or 0.0
    elif row.n("tokens_per_s"):
        step_s = tokens / (row.n("tokens_per_s") or 1.0)
    elif row.n("tokens_per_s_per_accel"):
        step_s = tokens / ((row.n("tokens_per_s_per_accel") or 1.0) * n)
    else:
        return False
    implied = tflops * 1e12 * step_s * n
    four_pass = megatron_eq3(global_batch, seq, layers, h, v, passes=4)
    three_pass = megatron_eq3(global_batch, seq, layers, h, v, passes=3)
    return abs(implied / four_pass - 1) < 0.05 and abs(implied - four_pass) < abs(implied - three_pass)


def predicted_metric(metric: str, basis: str, cfg: SystemConfig, res: Result) -> float:
    n = cfg.n_npus
    peak = cfg.accelerator.peak_flop_per_s(cfg.training.precision.value)
    b = basis.lower()
    if metric == "step_time_s":
        return res.step_time_s
    if metric == "tokens_per_s":
        return res.tokens_per_s
    if metric == "tokens_per_s_per_accel":
        return res.tokens_per_s / n
    eq3 = ("eq.(3)" in b or "eq. (3)" in b or "megatron flop formula" in b) or (
        metric == "pct_of_peak_reported" and not b
    )
    if "hardware" in b and not eq3:
        flops = res.hfu * peak * res.step_time_s * n
    elif eq3:
        flops = megatron_eq3_flops(cfg)
    else:
        flops = res.model_flops_per_step
    if metric == "tflops_per_accel":
        return flops / res.step_time_s / n / 1e12
    if metric == "mfu_pct":
        return res.mfu * 100.0
    return flops / res.step_time_s / n / peak * 100.0  # pct_of_peak_reported


METRIC_ORDER = ("step_time_s", "tokens_per_s", "tokens_per_s_per_accel", "tflops_per_accel", "mfu_pct",
                "pct_of_peak_reported")
"""Which measured value a row is compared on: the first one present."""


def group_of(cfg: SystemConfig) -> str:
    """Accelerator / precision group for the bias tables."""
    return f"{cfg.accelerator.name} {cfg.training.precision.value}"


def compare_row(row: Row) -> Comparison:
    out = Comparison(row_id=row.row_id, study=row.study, line=row.line)
    metric = next((m for m in METRIC_ORDER if row.n(m)), None)
    if metric is None:
        out.skipped_reason = "no measured step time, throughput, TFLOP/s or MFU"
        return out
    try:
        plan = plan_row(row)
    except Skip as exc:
        out.skipped_reason = str(exc)
        return out
    except CosmicError as exc:
        out.skipped_reason = f"configuration rejected: {exc}"
        return out
    cfg = plan.config
    try:
        res = simulate(cfg)
    except CosmicError as exc:
        out.skipped_reason = f"simulation infeasible: {exc}"
        return out
    measured = float(row.n(metric) or 0.0)
    pred = predicted_metric(metric, row.get("tflops_basis"), cfg, res)
    out.metric = metric
    out.measured = measured
    out.predicted = pred
    out.error_pct = (pred - measured) / measured * 100.0
    # positive speed error = the model predicts a faster run than measured, for every metric
    ratio = measured / pred if metric == "step_time_s" else pred / measured
    out.speed_error_pct = (ratio - 1.0) * 100.0
    out.defaults = plan.defaults
    out.group = group_of(cfg)
    out.regime = classify_config(cfg)
    if not res.fits_memory:
        out.notes.append(
            f"predicted memory {res.memory_per_device_gb:.0f} GB exceeds {res.memory_capacity_bytes / 1e9:.0f} GB"
        )
    return out

