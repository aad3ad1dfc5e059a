"""Free-text fields of the validation CSVs -> catalog entries and config values.

Every rule here reads the *content* of a cell (an accelerator name, a fabric description, a recompute policy ...)
and never a row id, a study name or a source. Each table is data: an ordered list of (pattern, value) pairs, the
first pattern that matches wins. `docs/validation.md` lists the same rules and the defaults for missing cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---- accelerators -----------------------------------------------------------------------------------------------

ACCELERATOR_RULES: tuple[tuple[str, str | None], ...] = (
    # (regex on the lower-cased `accel` text, catalog accelerator or None = known but not in the catalog)
    (r"gb300", "gb300"),
    (r"\bb300|blackwell ultra", "b300"),
    (r"gb200", "gb200"),
    (r"\bb200", "b200"),
    (r"h200", "h200"),
    (r"\bh800\b", "h800"),
    (r"\bh20\b(?!0)", "h20"),
    (r"h100.*\bnvl\b", "h100-nvl"),
    (r"h100.*\bpcie", "h100-pcie"),
    # a power-limited H100 SXM: a 500 W limit or the 94/96 GB HBM2e memory stated in the accelerator text or notes
    (r"h100.*(\b500\s*w\b|hbm2e|\b9[46]\s*gb)", "h100-sxm-500w"),
    (r"h100", "h100-sxm"),
    (r"\ba800\b", "a800-80gb"),
    (r"a100.*40\s*gb|40\s*gb.*a100", "a100-40gb"),
    (r"a100", "a100-80gb"),
    (r"v100", "v100-32gb"),
    # a generation named without a part: its data-centre training GPU
    (r"blackwell", "b200"),
    (r"hopper", "h100-sxm"),
    (r"ampere.*\b40\s*gb", "a100-40gb"),
    (r"ampere", "a100-80gb"),
    (r"volta", "v100-32gb"),
    (r"mi300x", "mi300x"),
    (r"mi250x?", "mi250x"),
    (r"tpu\s*v5p|\bv5p\b", "tpu-v5p"),
    (r"tpu\s*v5e|\bv5e\b|v5\s*lite", "tpu-v5e"),
    (r"tpu\s*v4|\bv4\b", "tpu-v4"),
    (r"tpu\s*v3|\bv3-\d+\b", "tpu-v3"),
    (r"tpu\s*v6e|\bv6e\b|trillium", "tpu-v6e"),
    (r"gaudi", None),
)
"""A100 without a memory size maps to the 80 GB part: both SXM4 parts have the same compute and NVLink, so only the
memory-fit check (not used for the comparison) depends on it."""


POWER_OR_MEMORY = re.compile(r"\b\d{3,4}\s*w\b|hbm2e")
"""What a `notes` cell may add to the `accel` text to name a variant: a power limit ("500 W") or the memory type. The
form factor (NVL, PCIe) is read from the `accel` text only: notes mention PCIe for NICs and hosts."""


def accelerator_name(text: str, mem_gb: float | None = None, notes: str = "") -> str | None:
    """Catalog accelerator for an `accel` cell (None if unknown or not in the catalog). The `notes` may name the
    variant (power limit, memory type: `POWER_OR_MEMORY`); only those words of them are read.

    Example:
        >>> accelerator_name("A100-SXM4-80GB (DGX A100)"), accelerator_name("A100 (DGX-A100)", 40)
        ('a100-80gb', 'a100-40gb')
        >>> accelerator_name("H100 NVL"), accelerator_name("H100 PCIe 80GB"), accelerator_name("H800 SXM5")
        ('h100-nvl', 'h100-pcie', 'h800')
        >>> accelerator_name("H100 SXM5", 96), accelerator_name("H100", notes="GPUs power-capped at 500 W")
        ('h100-sxm-500w', 'h100-sxm-500w')
        >>> accelerator_name("A800-SXM4-80GB"), accelerator_name("MI250X (Frontier)")
        ('a800-80gb', 'mi250x')
    """
    t = text.lower()
    if mem_gb is not None and "gb" not in t:
        t = f"{t} {mem_gb:g}gb"
    extra = POWER_OR_MEMORY.findall((notes or "").lower())
    if extra:
        t = f"{t} {' '.join(extra)}"
    for pattern, name in ACCELERATOR_RULES:
        if re.search(pattern, t):
            return name
    return None


# ---- node shape and fabrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeDefaults:
    """What a node of this accelerator looks like when the row does not say (vendor reference systems)."""

    node_size: int
    intra_fabric: str
    inter_fabric: str | None
    note: str
    pod_size: int = 0
    """TPUs: the most chips one ICI torus joins (slices beyond it talk over the data-center network); 0 = not a TPU."""
    torus_dims: int = 0
    """TPUs: dimensions of the ICI torus (2 on v5e/v6e, 3 on v4/v5p)."""


NODE_DEFAULTS: dict[str, NodeDefaults] = {
    "v100-32gb": NodeDefaults(16, "nvlink2", "ib-edr", "DGX-2: 16 GPUs on NVSwitch, 8x 100 Gb/s IB per node (H037)"),
    "a100-40gb": NodeDefaults(8, "nvlink3", "ib-hdr", "DGX A100: 8 GPUs, one 200 Gb/s HDR HCA per GPU (H028)"),
    "a100-80gb": NodeDefaults(8, "nvlink3", "ib-hdr", "DGX A100: 8 GPUs, one 200 Gb/s HDR HCA per GPU (H028)"),
    "h100-sxm": NodeDefaults(8, "nvlink4", "ib-ndr", "DGX H100: 8 GPUs, one 400 Gb/s NDR HCA per GPU (H029)"),
    "h200": NodeDefaults(8, "nvlink4", "ib-ndr", "HGX H200: as DGX H100 (H029)"),
    "h100-sxm-500w": NodeDefaults(8, "nvlink4", "ib-ndr", "HGX H100 board: 8 GPUs on NVLink 4, 400 Gb/s IB per GPU"),
    "h100-nvl": NodeDefaults(8, "pcie5", "ib-ndr", "8 PCIe Gen5 cards per server (NVLink bridges join only pairs)"),
    "h100-pcie": NodeDefaults(8, "pcie5", "ib-ndr", "8 PCIe Gen5 cards per server (NVLink bridges join only pairs)"),
    "a800-80gb": NodeDefaults(8, "nvlink3-a800", "ib-hdr", "HGX A800: 8 GPUs on NVLink 400 GB/s, 200 Gb/s HDR per GPU"),
    "mi250x": NodeDefaults(8, "infinity-fabric-cdna2", "slingshot-11",
                           "Frontier node: 4 MI250X = 8 GCDs on Infinity Fabric, four Slingshot-11 NICs"),
    "h800": NodeDefaults(8, "nvlink4-h800", "ib-ndr", "HGX H800: 8 GPUs on NVLink 400 GB/s, 400 Gb/s IB per GPU"),
    "h20": NodeDefaults(8, "nvlink4", "ib-ndr", "HGX H20: 8 GPUs on NVLink 900 GB/s, 400 Gb/s IB per GPU"),
    "b200": NodeDefaults(8, "nvlink5", "ib-ndr", "DGX B200: 8 GPUs, 8x 400 Gb/s ConnectX-7 (H029 rate)"),
    "gb200": NodeDefaults(72, "nvlink5", "ib-ndr", "GB200 NVL72: 72-GPU NVLink domain (H008)"),
    "b300": NodeDefaults(8, "nvlink5", "ib-xdr", "DGX B300: 8 GPUs, 8x 800 Gb/s ConnectX-8 (H030)"),
    "gb300": NodeDefaults(72, "nvlink5", "ib-xdr",
                          "GB300 NVL72: 72-GPU NVLink domain, one 800 Gb/s ConnectX-8 per GPU"),
    "mi300x": NodeDefaults(8, "infinity-fabric", "roce-400g", "8x MI300X fully connected, 400 Gb/s per GPU"),
    "tpu-v3": NodeDefaults(4, "ici-v3", "dcn-v5e", "TPU v3: 2-D ICI torus pods of 1024 chips", 1024, 2),
    "tpu-v4": NodeDefaults(4, "ici-v4", "dcn-v5p", "TPU v4: a 3-D ICI torus of up to 4096 chips", 4096, 3),
    "tpu-v5p": NodeDefaults(4, "ici-v5p", "dcn-v5p", "TPU v5p: a 3-D ICI torus of up to 8960 chips (H010)", 8960, 3),
    "tpu-v5e": NodeDefaults(8, "ici-v5e", "dcn-v5e", "TPU v5e: 2-D ICI torus pods of 256 chips (H011)", 256, 2),
    "tpu-v6e": NodeDefaults(8, "ici-v6e", "dcn-v5p", "TPU v6e: 2-D ICI torus pods of 256 chips (H012)", 256, 2),
}

INTRA_FABRIC_RULES: tuple[tuple[str, str | None], ...] = (
    # (regex on the lower-cased intra-node text, catalog fabric; None = not in the catalog)
    (r"nvlink\s*5|nvl5|nvl72", "nvlink5"),
    (r"nvlink\s*4|nvl4\b", "nvlink4"),
    (r"nvlink\s*3|nvl3\b", "nvlink3"),
    (r"nvlink\s*2", "nvlink2"),
    (r"300\s*gb/s between gpus", "nvlink2"),  # DGX-2 NVSwitch: 300 GB/s bidirectional = NVLink2 (H015)
    (r"pci\w*\s*gen\s*6|pcie\s*6", "pcie6"),
    (r"pci\w*\s*gen\s*5|pcie\s*5", "pcie5"),
    (r"pci\w*\s*gen\s*4|pcie\s*4", "pcie4"),
    (r"infinity fabric|xgmi", "infinity-fabric"),
)
"""A description without a generation ("NVLink + NVSwitch", "NVSwitch (DGX-2)") takes the accelerator's default."""

INTER_FABRIC_RULES: tuple[tuple[str, str | None], ...] = (
    (r"nvlink across|nvl72", "nvlink5"),
    (r"\bxdr\b", "ib-xdr"),
    (r"\bndr\b", "ib-ndr"),
    (r"\bhdr\b", "ib-hdr"),
    (r"\bedr\b", "ib-edr"),
    (r"\befa\b", "efa-v4"),
    (r"tcpx", "tcpxo"),
    (r"roce", "roce-400g"),
    (r"slingshot", "slingshot-11"),
    (r"omni-?path|\bopa\b", "omni-path"),
    (r"infiniband|\bib\b|rdma", "ib-hdr"),
)
"""Fabric family of the scale-out network; its per-GPU rate is then read from the text when stated
(see :func:`per_accel_gbps`), else the family's catalog rate is used."""


def _first(rules: tuple[tuple[str, str | None], ...], text: str) -> tuple[bool, str | None]:
    t = text.lower()
    for pattern, name in rules:
        if re.search(pattern, t):
            return True, name
    return False, None


def intra_fabric(text: str, accel: str | None) -> str | None:
    """Catalog fabric inside a node (the accelerator's default when the text names no generation)."""
    found, name = _first(INTRA_FABRIC_RULES, text or "")
    if found:
        return name
    nd = NODE_DEFAULTS.get(accel or "")
    return nd.intra_fabric if nd else None


def inter_fabric(text: str, accel: str | None) -> str | None:
    """Catalog fabric between nodes (the accelerator's reference-node default when the text is empty)."""
    found, name = _first(INTER_FABRIC_RULES, text or "")
    if found:
        return name
    nd = NODE_DEFAULTS.get(accel or "")
    return nd.inter_fabric if nd else None


_RATE = re.compile(
    r"(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*(gb/s|gbps|gb|tb/s)(\s*(?:per\s+node|per\s+server|node-node))?", re.I
)


def per_accel_gbps(text: str, accel_per_node: int) -> float | None:
    """Scale-out bandwidth per accelerator and direction in decimal GB/s, when the text states a rate.

    Understands "8x 200Gb/s HDR ... per node", "1600 Gbps node-node interconnect", "100 GB/s per server",
    "(50 GB/s per GPU)". Gb (bits) vs GB (bytes) follows the case of the unit.

    Example:
        >>> per_accel_gbps("8x 200Gb/s HDR InfiniBand HCAs per node", 8)
        25.0
        >>> per_accel_gbps("8 InfiniBand adapters per server, 100 GB/s per server", 16)
        6.25
    """
    if not text:
        return None
    t = text.replace(",", " ")
    m = re.search(r"\((\d+(?:\.\d+)?)\s*GB/s per (?:GPU|accelerator|chip)\)", t)
    if m:
        return float(m.group(1))
    for m in _RATE.finditer(t):
        value = float(m.group(2))
        unit = m.group(3)
        if unit.lower() == "tb/s":
            gbytes = value * 1000.0 / (8.0 if unit[1] == "b" else 1.0)
        elif unit[1] == "b" or unit.lower() == "gbps":  # Gb/s, Gbps: bits
            gbytes = value / 8.0
        else:  # GB/s: bytes
            gbytes = value
        # a NIC count "8x" stated with the rate or earlier in the text ("8x ConnectX-7 IB NDR 400 Gb/s")
        count_m = re.search(r"\b(\d+)\s*x(?=[\s\d])", t[: m.start() + len(m.group(1) or "") + 2])
        count = int(m.group(1)) if m.group(1) else (int(count_m.group(1)) if count_m else None)
        rest = t[m.end():].lower()
        per_node = count is not None or m.group(4) is not None or bool(re.search(r"per (node|server)", rest))
        total = gbytes * (count or 1)
        if per_node:
            return total / accel_per_node
        return total
    return None


# ---- training options --------------------------------------------------------------------------------------------


def recompute(text: str, tflops_basis: str = "") -> str:
    """none / selective / full from an `act_recompute` cell.

    An empty cell is "none", except when the row's FLOP basis states that recompute is counted (Megatron eq. 3,
    "incl. recompute"): those runs recomputed full layers.

    Example:
        >>> recompute("full (activation checkpointing)"), recompute("remat_policy=save_dot_except_logits_ffn1")
        ('full', 'selective')
    """
    t = (text or "").strip().lower()
    if not t:
        basis = (tflops_basis or "").lower()
        return "full" if ("recompute" in basis and "excl" not in basis) else "none"
    if t.startswith("none") or t in ("no", "false", "0") or "remat_policy=none" in t:
        return "none"
    if "selective" in t or ("remat_policy=" in t and "full" not in t):
        return "selective"  # MaxText policies that save some dots recompute the rest: closest to selective
    return "full"  # "full", "yes", "activation checkpointing", remat_policy=full


@dataclass(frozen=True)
class Sharding:
    zero: int
    extra_dp: int  # a data-parallel sharding degree stated only here ("FSDP 64"), multiplies dp if needed


def sharding(text: str) -> Sharding:
    """ZeRO stage (0-3) and a stated FSDP degree from a `zero_fsdp` cell.

    Example:
        >>> sharding("PyTorch FSDP SHARD_GRAD_OP (mixed-precision mode DEFAULT)")
        Sharding(zero=2, extra_dp=1)
        >>> sharding("FSDP 16 (ICI)"), sharding("DDP + distributed optimizer (FSDP=0)")
        (Sharding(zero=3, extra_dp=16), Sharding(zero=1, extra_dp=1))
        >>> sharding("HSDP (shard group 8)"), sharding("FSDP _HYBRID_SHARD_ZERO2")
        (Sharding(zero=3, extra_dp=1), Sharding(zero=2, extra_dp=1))

    `extra_dp` is the stated FSDP degree; the caller multiplies dp by it only when the stated tp*pp*dp*cp falls
    short of the device count by exactly that factor (MaxText-style layouts list FSDP apart from DP).
    """
    t = (text or "").strip().lower()
    if not t:
        return Sharding(0, 1)
    if re.search(HYBRID_SHARD, t):  # FSDP HYBRID_SHARD shards fully inside its group; _HYBRID_SHARD_ZERO2 as ZeRO-2
        return Sharding(2 if "zero2" in t else 3, 1)
    m = re.search(r"fsdp\s*=?\s*(\d+)", t)
    degree = int(m.group(1)) if m else None
    if "shard_grad_op" in t or "zero-2" in t or "zero2" in t or "zero stage 2" in t:
        return Sharding(2, 1)
    zero1 = "zero-1" in t or "zero1" in t or "distributed optimizer" in t or "dist_optimizer" in t
    if zero1 and (degree is None or degree == 0 or "fsdp=0" in t):
        return Sharding(1, 1)
    if degree == 0:
        return Sharding(0, 1)
    if "full_shard" in t or "zero-3" in t or "zero3" in t or "fsdp" in t:
        return Sharding(3, degree or 1)
    return Sharding(0, 1)


def stated_number(text: str, word: str) -> int | None:
    """The integer a free text gives right after `word` (thousands separators allowed), e.g. the notes
    "tr11 setup uses SEQ_LEN 2048, vocab 250,680" give 250680 for "vocab". A word followed by anything but a
    number (e.g. "vocab not given") gives None.

    Example:
        >>> stated_number("tr11 setup uses SEQ_LEN 2048, vocab 250,680)", "vocab")
        250680
        >>> stated_number("seq len / heads / vocab not given in this table", "vocab") is None
        True
    """
    m = re.search(rf"\b{re.escape(word)}\b\s*[:=]?\s*(\d{{1,3}}(?:,\d{{3}})+|\d+)\b", (text or "").lower())
    return int(m.group(1).replace(",", "")) if m else None


def model_parallel_size(text: str) -> int | None:
    """A stated model-parallel size (tensor x pipeline ranks per model replica) in free text, e.g. the notes
    "Model-parallel size (TPxPP) = 16" or "Model-parallel size 96 (TPxPP split not given)".

    Example:
        >>> model_parallel_size("Model-parallel size (TPxPP) = 16; split not given"), model_parallel_size("mp")
        (16, None)
    """
    m = re.search(r"model[- ]parallel size\s*(?:\([^)]*\))?\s*=?\s*(\d+)", (text or "").lower())
    return int(m.group(1)) if m else None


PARAM_GATHER_OVERLAP = r"overlap.param.gather|overlap_param_sync"
"""Megatron's ``--overlap-param-gather`` / NeMo's ``overlap_param_sync``: the distributed optimizer's weight
all-gather runs behind the next step's forward."""


def overlaps_param_gather(*texts: str) -> bool:
    """Whether any of the texts (notes, zero_fsdp, framework) names the overlapped parameter gather.

    Example:
        >>> overlaps_param_gather("(--overlap-grad-reduce --overlap-param-gather)"), overlaps_param_gather("ZeRO-1")
        (True, False)
    """
    return any(re.search(PARAM_GATHER_OVERLAP, (t or "").lower()) for t in texts)


NEMO_STACK = r"\bnemo\b"
"""NeMo: its GPT and Llama configs use ``optim.name: distributed_fused_adam``, which shards the optimizer state over
data parallelism, with ``overlap_grad_sync: true`` and ``overlap_param_sync: true`` (NeMo Framework Launcher
``conf/training/gpt3/5b.yaml``, ``20b.yaml``, ``llama/llama2_7b.yaml``; the auto-configurator's ``base_configs``)."""


def nemo_overlaps_param_gather(framework: str, zero: int) -> bool:
    """NeMo's distributed optimizer (ZeRO-1/2) gathers the updated weights behind the next forward, as its configs
    set ``overlap_param_sync: true`` next to ``distributed_fused_adam`` (`NEMO_STACK`).

    Example:
        >>> nemo_overlaps_param_gather("NeMo 24.07 (Megatron-Core)", 1), nemo_overlaps_param_gather("NeMo", 0)
        (True, False)
        >>> nemo_overlaps_param_gather("Megatron-LM", 1)
        False
    """
    return zero in (1, 2) and re.search(NEMO_STACK, (framework or "").lower()) is not None


def row_sharding(zero_fsdp: str, notes: str, framework: str = "") -> tuple[Sharding, bool]:
    """`sharding` of the `zero_fsdp` cell; when it is empty, what the row implies: Megatron's
    ``--overlap-param-gather`` exists only with its distributed optimizer (ZeRO-1; Megatron-LM's arguments assert
    ``--overlap-param-gather only supported with distributed optimizer``), and NeMo runs its distributed Adam by
    default (`NEMO_STACK`). The flag says whether it was implied.

    Example:
        >>> row_sharding("", "overlap of DP grad-reduce/param-gather (--overlap-grad-reduce --overlap-param-gather)")
        (Sharding(zero=1, extra_dp=1), True)
        >>> row_sharding("", "", "NeMo 24.07 (Megatron-Core)"), row_sharding("", "", "Megatron-LM")
        ((Sharding(zero=1, extra_dp=1), True), (Sharding(zero=0, extra_dp=1), False))
        >>> row_sharding("ZeRO-3 (DeepSpeed)", "--overlap-param-gather")
        (Sharding(zero=3, extra_dp=1), False)
        >>> row_sharding("DDP (FSDP=0)", "", "Megatron-Bridge / NeMo 25.11"), row_sharding("DDP", "", "Megatron-LM")
        ((Sharding(zero=1, extra_dp=1), True), (Sharding(zero=0, extra_dp=1), False))
    """
    if not (zero_fsdp or "").strip() and (
        overlaps_param_gather(notes) or re.search(NEMO_STACK, (framework or "").lower())
    ):
        return Sharding(1, 1), True
    stated = sharding(zero_fsdp)
    plain_ddp = re.search(r"^\s*ddp\b(?!.*no distributed)|\(fsdp\s*=\s*0\)", (zero_fsdp or "").lower())
    if stated.zero == 0 and plain_ddp and re.search(NEMO_STACK, (framework or "").lower()):
        # a NeMo / Megatron-Bridge table's "FSDP=0" only says Megatron-FSDP is off; the stack's recipes keep their
        # distributed optimizer (Megatron-Bridge OptimizerConfig(use_distributed_optimizer=True) in its recipes)
        return Sharding(1, 1), True
    return stated, False


def precision(text: str) -> str | None:
    """bf16 / fp16 / fp8 from a `precision` cell; None for precisions cosmic does not model (int8).

    "mixed precision" without a type is fp16 (the Megatron/DeepSpeed default; same peak as bf16 on A100/H100).
    """
    t = (text or "").strip().lower()
    if "int8" in t or "int4" in t or "fp4" in t:
        return None
    if "fp8" in t or "float8" in t:
        return "fp8"
    if "bf16" in t or "bfloat16" in t:
        return "bf16"
    return "fp16"


_FP8_RECIPE_RULES: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased precision and notes, training.fp8_recipe); first match wins
    (r"mxfp8|fp8[- ]mx|\bmx\b", "mxfp8"),
    (r"block.?wise|block.?scal|fp8[- ]bs|1x128|128x128", "blockwise"),
    (r"row.?wise", "rowwise"),
    (r"fp8[- ]cs\b|current.scal|tensor.?wise|dynamic scal", "current"),
    (r"delayed", "delayed"),
)
"""fp8 recipes a precision cell names (Megatron-Bridge writes FP8-CS, FP8-MX; torchao tensorwise / rowwise)."""


def fp8_recipe(precision_text: str, framework: str = "") -> str:
    """`training.fp8_recipe` of a row: the recipe its precision cell names; Composer's ``amp_fp8`` is Transformer
    Engine's ``DelayedScaling`` (composer ``fp8_autocast`` with a DelayedScaling recipe); else ``auto``, the
    framework's default (`cosmic.workload.stack.default_fp8_recipe`).

    Example:
        >>> fp8_recipe("FP8-CS"), fp8_recipe("FP8-MX"), fp8_recipe("fp8")
        ('current', 'mxfp8', 'auto')
        >>> fp8_recipe("amp_fp8", "Composer / llm-foundry")
        'delayed'
    """
    t = (precision_text or "").lower()
    for pattern, recipe in _FP8_RECIPE_RULES:
        if re.search(pattern, t):
            return recipe
    if re.search(r"composer|llm-foundry", (framework or "").lower()):
        return "delayed"
    return "auto"


def execution(framework: str, notes: str = "") -> str:
    """`training.execution` of a row: ``compiled`` when the framework or notes name CUDA graphs or a compiler
    (``torch.compile``, XLA), ``eager`` when they say eager; else ``auto``, the framework's default
    (`cosmic.workload.stack.default_execution`).

    Example:
        >>> execution("NeMo (NGC 24.04), CUDA graphs"), execution("torchtitan", "torch.compile on"), execution("NeMo")
        ('compiled', 'compiled', 'auto')
        >>> execution("torchtitan", "eager mode, compile off")
        'eager'
    """
    t = ((framework or "") + " " + (notes or "")).lower()
    if re.search(r"\beager\b|compile\s*(=\s*)?(off|false)|no (torch\.)?compile", t):
        return "eager"
    if re.search(r"cuda.?graph|torch\.compile|\bcompiled\b|\bxla\b|reduce-overhead", t):
        return "compiled"
    return "auto"


def virtual_stages(text: str) -> int | None:
    """Interleaved chunks per pipeline rank: the number, or None when only "interleaved" is stated."""
    t = (text or "").strip()
    if not t:
        return 1
    try:
        return max(1, int(float(t)))
    except ValueError:
        return None


def yes_no(text: str) -> bool | None:
    t = (text or "").strip().lower()
    if not t:
        return None
    return t.startswith(("yes", "true", "on", "1"))


# Software stacks by what they do by default (content of the `framework` cell).
MODERN_MEGATRON = r"nemo|megatron-core|megatron core|megatron-bridge|mcore"
"""Megatron-Core based stacks: sequence parallelism on with TP, FlashAttention, gradient reduction overlapped."""
FLASH_STACKS = MODERN_MEGATRON + r"|flash|composer|llm-foundry|maxtext|pax|jax|torchtitan"
LEGACY_STACKS = r"megatron-lm|deepspeed"
"""2019-2022 Megatron-LM / DeepSpeed: fused softmax (no FlashAttention), gradients all-reduced after backward."""


FRAMEWORK_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased `framework` cell, `training.framework` family); first match wins
    (r"automodel", "pytorch-fsdp"),  # NeMo AutoModel is PyTorch-native (FSDP2 + EP), not Megatron-Core
    (MODERN_MEGATRON, "megatron-core"),
    (r"deepspeed", "deepspeed"),  # DeepSpeed's engine runs the step, also under Megatron's model code
    (r"composer|llm-foundry|torchtitan|fsdp", "pytorch-fsdp"),
    (r"maxtext|\bpax\b|praxis|\bjax\b|\bxla\b", "jax"),
    (r"megatron", "megatron-lm"),
)
"""The software stack family of a run (`cosmic.workload.schemas.Framework`); a stack no rule names is
``unspecified``, whose evidence pools every stack on the accelerator generation."""


def framework_family(framework: str) -> str:
    """The `training.framework` family of a `framework` cell.

    Example:
        >>> framework_family("NeMo (NGC 23.09) / Megatron-Core"), framework_family("Megatron-LM + DeepSpeed ZeRO-3")
        ('megatron-core', 'deepspeed')
        >>> framework_family("Megatron-LM (PTD-P)"), framework_family("PAX (JAX)"), framework_family("")
        ('megatron-lm', 'jax', 'unspecified')
        >>> framework_family("NeMo AutoModel (PyTorch, FSDP2) main branch")
        'pytorch-fsdp'
    """
    f = (framework or "").lower()
    return next((family for pattern, family in FRAMEWORK_FAMILY_RULES if re.search(pattern, f)), "unspecified")


def is_modern_megatron(framework: str) -> bool:
    return bool(re.search(MODERN_MEGATRON, (framework or "").lower()))


def uses_flash_attention(framework: str, accel: str | None) -> bool:
    """FlashAttention in the stack; an unnamed stack is assumed to use it on Hopper and later GPUs and TPUs."""
    f = (framework or "").lower()
    if re.search(FLASH_STACKS, f):
        return True
    if re.search(LEGACY_STACKS, f):
        return False
    return accel not in ("v100-32gb", "a100-40gb", "a100-80gb")


CP_ALGORITHM_RULES: tuple[tuple[str, str], ...] = (
    (r"ulysses|all-?to-?all cp|\ba2a\b", "a2a"),
    (r"ring attention|\bp2p\b", "p2p"),
    (r"all-?gather cp|all-?gather (?:of )?k(?:ey)?s? and v|allgather", "allgather"),
)
"""Context-parallel algorithm a row's notes name, first match wins."""
CP_FAMILY_DEFAULTS = {"megatron-core": "p2p", "megatron-lm": "p2p", "deepspeed": "a2a", "pytorch-fsdp": "allgather",
                      "jax": "allgather"}
"""The context-parallel algorithm of each stack by default: Megatron-Core passes K/V around a ring
(TransformerEngine ``cp_comm_type="p2p"``, Megatron's default); DeepSpeed's sequence parallelism is Ulysses
(all-to-all); torchtitan and PyTorch's ``context_parallel`` all-gather K/V (``context_parallel_rotate_method``
default ``"allgather"``); MaxText all-gathers K/V over its ``context`` mesh axis (as Llama 3 did)."""


def cp_algorithm(framework: str, notes: str = "") -> str:
    """The `parallel.cp_algorithm` of a row: named in its notes or framework cell, else its stack's default
    (p2p where no rule names the stack).

    Example:
        >>> cp_algorithm("NeMo 24.03.01"), cp_algorithm("torchtitan"), cp_algorithm("Megatron-DeepSpeed", "Ulysses")
        ('p2p', 'allgather', 'a2a')
    """
    text = f"{framework or ''} {notes or ''}".lower()
    named = next((algo for pattern, algo in CP_ALGORITHM_RULES if re.search(pattern, text)), None)
    return named or CP_FAMILY_DEFAULTS.get(framework_family(framework), "p2p")


def micro_batches_per_stage(framework: str) -> bool:
    """Whether a stack splits each pipeline's local batch into as many micro-batches as there are stages when the
    run does not say: torchtitan (``pipeline_parallel_microbatches`` "defaults to the number of pipeline stages",
    torchtitan/config_manager.py, 2024-25). Megatron-style stacks take their micro-batch size instead (1 here).

    Example:
        >>> micro_batches_per_stage("torchtitan (FSDP2 + PP)"), micro_batches_per_stage("NeMo 24.07")
        (True, False)
    """
    return bool(re.search(r"torchtitan", (framework or "").lower()))


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE_RULES: tuple[tuple[str, str], ...] = (
    # (regex, how its groups give YYYY-MM); first rule that matches a text wins
    (r"\b(20\d\d)-(0[1-9]|1[0-2])-\d\d\b", "ym"),                             # 2024-07-15
    (r"\b(" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(20\d\d)\b", "my"),         # Feb 2022, (Jan 2021)
    (r"(?:ngc|nemo|container|pytorch)\D{0,12}\b(2\d)\.(0[1-9]|1[0-2])\b", "yy"),  # NeMo 24.07, NGC 23.04
    (r"arxiv\.org/(?:abs|pdf)/(\d\d)(0[1-9]|1[0-2])\.\d{4,5}", "yy"),          # arXiv 2104.04473
    (r"\((20\d\d)\)", "y"),                                                   # Megatron-LM (2020)
)
"""How a cell dates the software stack it ran (docs/validation.md)."""


def _date_in(text: str) -> str | None:
    t = (text or "").lower()
    for pattern, kind in _DATE_RULES:
        m = re.search(pattern, t)
        if m is None:
            continue
        if kind == "ym":
            return f"{m.group(1)}-{m.group(2)}"
        if kind == "my":
            return f"{m.group(2)}-{_MONTHS.index(m.group(1)[:3]) + 1:02d}"
        if kind == "yy":
            return f"20{m.group(1)}-{m.group(2)}"
        return f"{m.group(1)}-01"  # a year alone: its first month (the older stack of that year)
    return None


def stack_date(framework: str, notes: str = "", source: str = "") -> str | None:
    """The release (``YYYY-MM``) of the software a run used, read from its cells in order: the `framework` cell (a
    container version "NeMo 24.07", "NGC 23.04", a year "Megatron-LM (2020)"), then the notes ("Feb 2022"), then
    the source (a commit or document date "2024-07-15", an arXiv id "2104.04473"). None when no cell dates it.

    Example:
        >>> stack_date("NeMo (NGC 24.04), CUDA graphs"), stack_date("Megatron-LM (Jan 2021)")
        ('2024-04', '2021-01')
        >>> stack_date("Megatron-LM (PTD-P)", "", "https://arxiv.org/abs/2104.04473 (Narayanan et al., SC21)")
        '2021-04'
        >>> stack_date("Megatron-Core r0.8.0", "", "README (commit f2e5db402c, 2024-07-15)"), stack_date("PAX (JAX)")
        ('2024-07', None)
    """
    for text in (framework, notes, source):
        date = _date_in(text)
        if date is not None:
            return date
    return None


_NAMED_KERNELS: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased framework and notes, attention kernel); first match wins
    (r"flash.?attention.?[- ]?3|\bfa-?3\b", "flash3"),
    (r"flash.?attention.?[- ]?2|flash.?attn.?[- ]?v?2|\bfa-?2\b", "flash2"),
    (r"cudnn (fused )?attention|cudnn sdpa|fused.attn", "cudnn"),
    (r"sdpa.?math|unfused attention|no flash.?attention", "unfused"),
)
"""Kernels a cell names outright."""


def attention_kernel(framework: str, model_name: str, accel: str | None = None, notes: str = "") -> str:
    """Which attention kernel a run used, as `training.attention_kernel`: the kernel its cells name; else "auto",
    which the simulator resolves from the framework family, the accelerator generation and the stack date
    (`cosmic.workload.stack.default_attention_kernel`). Two cases the family does not tell:

    - llm-foundry's MPT models use ALiBi, for which its default attention implementation was the Triton
      FlashAttention kernel, a FlashAttention-1-class kernel (llm-foundry PR #820, Dec 2023: "Triton attention
      (which is the current default attention implementation when using ALiBi)");
    - a stack no family names runs unfused attention before Hopper (`uses_flash_attention`).

    Example:
        >>> attention_kernel("Composer / llm-foundry (PyTorch FSDP, FlashAttention)", "MPT-7B")
        'flash1'
        >>> attention_kernel("NeMo 24.07 (Megatron-Core)", "Llama 3 8B"), attention_kernel("torchtitan, FA3", "x")
        ('auto', 'flash3')
        >>> attention_kernel("in-house", "GPT", "a100-80gb"), attention_kernel("in-house", "GPT", "h100-sxm")
        ('unfused', 'auto')
    """
    f = (framework or "").lower()
    text = f + " " + (notes or "").lower()
    for pattern, kernel in _NAMED_KERNELS:
        if re.search(pattern, text):
            return kernel
    if re.search(r"llm-foundry|composer", f) and re.match(r"\s*mpt", (model_name or "").lower()):
        return "flash1"
    if framework_family(framework) == "unspecified" and not uses_flash_attention(framework, accel):
        return "unfused"
    return "auto"


def fuses_grad_accumulation(framework: str) -> bool:
    """Megatron-LM fused weight-gradient accumulation into the fp32 main-grad buffer from 2022 on
    (``--gradient-accumulation-fusion``); the 2019-2021 Megatron-LM and Megatron-DeepSpeed stacks did not."""
    f = (framework or "").lower()
    return not (re.search(LEGACY_STACKS, f) and not re.search(MODERN_MEGATRON, f))


FP32_REDUCE = r"reduce_dtype\s*=?\s*(fp32|float32)|fp32 (gradient )?reduc|grad_reduce_in_fp32"
"""Text that states an fp32 gradient reduction."""


def reduces_grads_in_fp32(zero_fsdp: str, framework: str, precision: str | None = None) -> bool:
    """Whether a row's gradients are reduced over data parallelism in fp32.

    Stated outright ("reduce_dtype=float32", "grad_reduce_in_fp32"), or Composer's FSDP ``mixed_precision: DEFAULT``
    mode: ``MixedPrecision(param_dtype=<autocast dtype>, reduce_dtype=torch.float32, buffer_dtype=<autocast dtype>)``
    (composer ``get_mixed_precision``, since composer PR #2628 of 2023-10-10 "Fixes default precision to use fp32
    reduce dtype"). Composer's ``PURE`` mode reduces in the autocast dtype. Megatron-LM (and Megatron-Core trained
    through it) forces ``accumulate_allreduce_grads_in_fp32`` for bf16 ("bfloat16 requires gradient accumulation and
    all-reduce to be done in fp32", ``megatron/training/arguments.py``) unless ``--grad-reduce-in-bf16``; NeMo
    configures its own data-parallel settings and is not assumed.

    Example:
        >>> reduces_grads_in_fp32("PyTorch FSDP FULL_SHARD (mixed-precision mode DEFAULT)", "Composer / llm-foundry")
        True
        >>> reduces_grads_in_fp32("PyTorch FSDP FULL_SHARD (mixed-precision mode PURE)", "Composer / llm-foundry")
        False
        >>> reduces_grads_in_fp32("", "Megatron-Core r0.8.0", "bf16"), reduces_grads_in_fp32("", "Megatron-LM", "fp16")
        (True, False)
    """
    z, f = (zero_fsdp or "").lower(), (framework or "").lower()
    if re.search(FP32_REDUCE, z) or re.search(FP32_REDUCE, f):
        return True
    if re.search(r"bf16-grad-reduce|grad.reduce.in.bf16", z + " " + f):
        return False
    megatron = re.search(r"megatron-lm|megatron-core|megatron core|mcore", f)
    if precision == "bf16" and megatron and not re.search(NEMO_STACK + "|deepspeed", f):
        return True
    return bool(re.search(r"composer|llm-foundry", f)) and bool(re.search(r"mixed.precision mode default", z))


def overlaps_dp(framework: str) -> bool:
    f = (framework or "").lower()
    return not (re.search(LEGACY_STACKS, f) and not re.search(MODERN_MEGATRON, f))


TP_COMM_OVERLAP = r"tp[-_ ]comm[-_ ]overlap|userbuffers|\bub_cfgs?\b"
"""Megatron ``--tp-comm-overlap`` / NeMo ``tp_comm_overlap: true`` (Transformer Engine userbuffers)."""
ASYNC_TP = r"async(hronous)?[-_ ]?(tp|tensor[-_ ]parallel)|enable_async_tensor_parallel|micro[-_ ]?pipeline[-_ ]tp"
"""PyTorch async tensor parallelism (torchtitan ``enable_async_tensor_parallel``, inductor ``_micro_pipeline_tp``)."""
_NEGATED = r"(\bno\b|\bwithout\b|\bnot\b)\s+(\w+\s+){0,1}"


def tp_comm_overlap(framework: str, notes: str) -> str:
    """`training.tp_comm_overlap` from what the `framework` and `notes` cells say; "off" when neither names it (a
    stack's default is not assumed: NeMo and Megatron recipes switched it on per model and release).

    Example:
        >>> tp_comm_overlap("Megatron-Core r0.8.0", "TP comm overlap (--tp-comm-overlap)")
        'userbuffers'
        >>> tp_comm_overlap("torchtitan", "async TP on"), tp_comm_overlap("NeMo 24.07", "")
        ('async_tp', 'off')
        >>> tp_comm_overlap("", "no TP comm overlap"), tp_comm_overlap("", "tp_comm_overlap: false")
        ('off', 'off')
    """
    t = f"{framework or ''} ; {notes or ''}".lower()
    for pattern, value in ((ASYNC_TP, "async_tp"), (TP_COMM_OVERLAP, "userbuffers")):
        m = re.search(pattern, t)
        if m and not re.search(_NEGATED + r"$", t[: m.start()]) and \
                not re.match(r"\s*(:|=)?\s*(off|false|disabled|0)\b", t[m.end():]):
            return value
    return "off"


def zero3_schedule(zero_fsdp: str, framework: str, notes: str, pp: int) -> dict[str, object]:
    """How a row's stack runs ZeRO-3 / FSDP (`training.zero3_gathers`, `zero3_prefetch`, `reshard_after_forward`,
    `param_gather_per_step`; `cosmic.workload.sharding`), from the cells' content; keys left out keep their
    defaults (PyTorch FSDP FULL_SHARD: one gather per layer, one in flight ahead, resharded after forward).

    * DeepSpeed gathers each weight matrix on its own (``_allgather_param`` per parameter, ZeRO-3 of 2021);
    * torchtitan under pipelining does not reshard after forward and syncs gradients on the last micro-batch only
      (``parallelize_llama``: "For PP, do not reshard after forward to avoid per-microbatch all-gathers"), so the
      weights are gathered once per step;
    * stated settings win: ``reshard_after_forward=False``, ``backward_prefetch=None`` / "no prefetch".

    Example:
        >>> zero3_schedule("ZeRO-3 (DeepSpeed)", "Megatron-LM + DeepSpeed ZeRO-3", "", 1)
        {'zero3_gathers': 'parameter'}
        >>> zero3_schedule("FSDP2", "torchtitan", "", 4), zero3_schedule("FSDP FULL_SHARD", "Composer", "", 1)
        ({'param_gather_per_step': True}, {})
    """
    z, f, n = (zero_fsdp or "").lower(), (framework or "").lower(), (notes or "").lower()
    text = " ".join((z, f, n))
    out: dict[str, object] = {}
    if re.search(r"deepspeed", z + " " + f):
        out["zero3_gathers"] = "parameter"
    if re.search(r"reshard_after_forward\s*[=:]\s*false", text):
        out["reshard_after_forward"] = False
    if re.search(r"backward_prefetch\s*[=:]\s*none|\bno prefetch", text):
        out["zero3_prefetch"] = 0
    if pp > 1 and re.search(r"torchtitan", f):
        out["param_gather_per_step"] = True
    return out


HYBRID_SHARD = r"hsdp|hybrid[_ ]shard|hybrid sharded"
"""Text naming hybrid sharded data parallelism (PyTorch FSDP ``HYBRID_SHARD`` / ``_HYBRID_SHARD_ZERO2``, HSDP)."""


def hybrid_shard_group(zero_fsdp: str, notes: str, node_ranks: int) -> int | None:
    """The shard group of a row that names hybrid sharding: the stated degree ("shard group 8", "shard=8",
    "data_parallel_shard_degree=8", "dp_shard 8"), else one node's data-parallel ranks, as PyTorch FSDP's
    ``HYBRID_SHARD`` builds it without a process group (``_init_intra_and_inter_node_groups``: the intra-node group
    of ``torch.cuda.device_count()`` ranks); None when the row names no hybrid sharding.

    Example:
        >>> hybrid_shard_group("HSDP (shard group 16)", "", 8), hybrid_shard_group("FSDP HYBRID_SHARD", "", 8)
        (16, 8)
        >>> hybrid_shard_group("FSDP FULL_SHARD", "", 8) is None
        True
    """
    text = f"{zero_fsdp or ''} {notes or ''}".lower()
    if not re.search(HYBRID_SHARD + r"|data_parallel_shard_degree|dp_shard", text):
        return None
    m = re.search(r"(?:shard[_ ]group|data_parallel_shard_degree|dp_shard|shard)\s*[=:]?\s*(\d+)", text)
    return int(m.group(1)) if m else node_ranks
