"""Mixture-of-Experts rows of a training-runs CSV (``moe_cp_runs.csv``): the MoE shape, MLA and expert layout a row's
cells state, as the training validator's model and parallel settings.

A row's MoE shape is the machine-readable block at the start of its `notes` cell
(``moe: experts=E; top_k=K; expert_ffn_hidden=F; shared_experts=S; moe_layers=all|every-N|first-dense-N; ep=EP;
etp=ETP``, then `` | `` and free text; ``shared/validation/moe_cp_sources.md``). The catalog model the `model` cell
names supplies what the block leaves out (shared experts, MLA ranks, head width, QK-norm); the row's own cells win.
Every rule reads a cell's content, never a row id or a study name (docs/validation.md, "MoE rows").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cosmic.validate.table import Row

BLOCK = re.compile(r"^\s*moe:\s*([^|]*)", re.IGNORECASE)
INT_KEYS = ("experts", "top_k", "expert_ffn_hidden", "shared_experts", "ep", "etp")
ALLOWED = (*INT_KEYS, "moe_layers")
LAYERS = re.compile(r"^(all|every-(\d+)|first-dense-(\d+))$")
MLA_FIELDS = {  # MLA widths named in a row's notes (DeepSeek-V2 report sec. 2.1 names): notes word -> MLASpec field
    "q_lora": "q_lora_rank", "kv_lora": "kv_lora_rank", "qk_nope": "qk_nope_head_dim",
    "qk_rope": "qk_rope_head_dim", "v_head_dim": "v_head_dim",
}
BALANCED = re.compile(r"force[- ]?balanc|balanced gate|ideal expert routing|perfectly balanced", re.IGNORECASE)
"""Notes that say routing was forced balanced (Megatron `--moe-router-force-load-balancing`, NeMo AutoModel's fake
balanced gate): imbalance 1.0."""
OVERLAP = re.compile(r"deepep|dualpipe|overlap[- ]moe|a2a[- ]overlap|all-to-all overlap", re.IGNORECASE)
"""A framework or notes naming a dispatch/compute overlap (DeepEP's hook-based overlap, DeepSeek-V3's DualPipe,
Megatron-Core `--overlap-moe-expert-parallel-comm`)."""
ALLGATHER = re.compile(r"allgather dispatcher|dispatcher[^|;]*allgather|all-gather dispatch", re.IGNORECASE)
"""Megatron `--moe-token-dispatcher-type allgather` stated in the framework or notes; otherwise alltoall
(Megatron-Core's default for expert parallelism)."""


class BadBlock(ValueError):
    """A MoE block field that cannot be read; the message names line, column and value."""


@dataclass(frozen=True)
class MoERow:
    """What a row's MoE block states: the model's MoE spec (as a dict for ``model.moe``) and its expert layout."""

    moe: dict[str, Any]
    ep: int
    etp: int | None


def block_text(notes: str) -> str | None:
    """The MoE block of a `notes` cell (None if the cell has none).

    Example:
        >>> block_text("moe: experts=8; top_k=2 | dropless")
        'experts=8; top_k=2 '
    """
    m = BLOCK.match(notes or "")
    return m.group(1) if m else None


def parse_block(row: Row) -> MoERow | None:
    """The row's MoE block as a :class:`MoERow`; None when its notes carry none.

    Raises:
        BadBlock: an unknown key, a non-integer count or a `moe_layers` value outside all|every-N|first-dense-N.
    """
    text = block_text(row.get("notes"))
    if text is None:
        return None
    fields: dict[str, str] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or key not in ALLOWED:
            raise BadBlock(f"line {row.line}, column notes: moe field {part!r} is not one of "
                           f"{', '.join(f'{k}=' for k in ALLOWED)}")
        fields[key] = value
    ints: dict[str, int] = {}
    for key in INT_KEYS:
        if key in fields:
            v = fields[key]
            if not re.fullmatch(r"\d+", v) or int(v) == 0:
                raise BadBlock(f"line {row.line}, column notes: moe field {key}={v!r} is not a positive integer")
            ints[key] = int(v)
    for key in ("experts", "top_k", "expert_ffn_hidden"):
        if key not in ints:
            raise BadBlock(f"line {row.line}, column notes: moe block has no {key}= (needed for the MoE shape)")
    moe: dict[str, Any] = {k: ints[k] for k in ("experts", "top_k", "expert_ffn_hidden")}
    if "shared_experts" in ints:
        moe["shared_experts"] = ints["shared_experts"]
    layers = fields.get("moe_layers", "all")
    m = LAYERS.match(layers)
    if m is None:
        raise BadBlock(f"line {row.line}, column notes: moe field moe_layers={layers!r} is not all, every-N or "
                       "first-dense-N")
    if m.group(2):
        moe["every"] = int(m.group(2))
    if m.group(3):
        moe["first_dense_layers"] = int(m.group(3))
    return MoERow(moe=moe, ep=ints.get("ep", 1), etp=ints.get("etp"))


def mla_from_notes(notes: str, base: dict[str, Any] | None) -> dict[str, Any] | None:
    """MLA widths the notes name ("q_lora 1536, kv_lora 512; ... qk_nope 128 + qk_rope 64; v_head_dim 128") over the
    catalog model's; None when neither states MLA.

    Example:
        >>> mla_from_notes("MLA attention (q_lora 1536, kv_lora 512; qk_nope 128 + qk_rope 64; v_head_dim 128)", None)
        {'q_lora_rank': 1536, 'kv_lora_rank': 512, 'qk_nope_head_dim': 128, 'qk_rope_head_dim': 64, 'v_head_dim': 128}
    """
    out = dict(base or {})
    stated = False
    for word, field in MLA_FIELDS.items():
        m = re.search(rf"\b{word}\s*[=:]?\s*(\d+)", notes or "")
        if m:
            out[field] = int(m.group(1))
            stated = True
    if not stated and base is None:
        return None
    return out if "kv_lora_rank" in out else None


def imbalance(row: Row) -> tuple[float, str]:
    """The busiest expert rank's load over the balanced share (docs/moe.md, `training.moe_imbalance`).

    Benchmarks that force balanced routing say so in their notes: 1.0. docs/moe.md documents no realistic default
    other than 1.0 (it is to be set from a measurement), so a row that does not say is run at 1.0 as well, and the
    comparison says so.
    """
    if BALANCED.search(row.get("notes")):
        return 1.0, "routing force-balanced (notes): moe_imbalance 1.0"
    return 1.0, "routing balance not stated: moe_imbalance 1.0 (docs/moe.md has no other default)"


def dispatcher(row: Row) -> str:
    """Megatron's token dispatcher the framework or notes name; alltoall (Megatron-Core's EP default) otherwise."""
    text = f"{row.get('framework')} {row.get('notes')}"
    return "allgather" if ALLGATHER.search(text) else "alltoall"


def overlaps(row: Row) -> bool:
    """Whether dispatch/combine overlaps compute: only where the framework, the notes or the pipeline schedule (the
    `vpp` cell, which names DualPipe where a run used it) name such a mechanism.

    Example:
        >>> overlaps(Row(line=2, text={"vpp": "DualPipe (bidirectional; not interleaved 1F1B)"}))
        True
    """
    return bool(OVERLAP.search(f"{row.get('framework')} {row.get('notes')} {row.get('vpp')}"))


def apply_model(row: Row, model: dict[str, Any], block: MoERow, cat: dict[str, Any] | None,
                defaults: list[str]) -> None:
    """Add the row's MoE shape (block over the catalog model's), MLA and head width to a model dict in place."""
    moe = dict(block.moe)
    cat_moe = dict(cat.get("moe") or {}) if cat else {}
    for key in ("shared_experts", "shared_ffn_hidden", "capacity_factor"):
        if key not in moe and key in cat_moe:
            moe[key] = cat_moe[key]
            defaults.append(f"moe {key} = {cat_moe[key]} from the catalog model")
    model["moe"] = moe
    mla = mla_from_notes(row.get("notes"), cat.get("mla") if cat else None)
    if mla is not None:
        model["mla"] = mla
        model.pop("head_dim", None)
    else:
        head_dim = row.i("head_dim")
        if head_dim is not None:
            model["head_dim"] = head_dim
        elif cat and "head_dim" in cat:
            model["head_dim"] = cat["head_dim"]
    if cat:
        for key in ("qk_norm", "gated_mlp", "norm", "position", "bias", "tied_embeddings"):
            if key in cat:
                model[key] = cat[key]
    model.setdefault("gated_mlp", True)  # every MoE family the catalog holds uses SwiGLU experts


def expert_layout(expert: dict[str, Any], block: MoERow | None, fold_ranks: int, tp: int,
                  defaults: list[str] | None = None) -> dict[str, Any]:
    """The parallel settings of a row's experts for one layout (tp x cp x dp = `fold_ranks` ranks per stage).

    ETP not stated: Megatron-Core's default, ETP = TP (``--expert-tensor-parallel-size`` falls back to the tensor
    parallel size), when EP x TP folds onto the stage; otherwise 1, the only ETP that does (Megatron-Bridge's MoE
    recipes set ``expert_tensor_parallel_size=1``).

    Example:
        >>> b = MoERow(moe={}, ep=32, etp=None)
        >>> expert_layout({"ep": 32}, b, 32, 2), expert_layout({"ep": 32}, b, 64, 2)
        ({'ep': 32, 'etp': 1}, {'ep': 32})
    """
    if block is None or block.etp is not None or fold_ranks % (block.ep * tp) == 0:
        return expert
    note = f"etp not stated: 1 (ep*tp = {block.ep}*{tp} does not fold onto {fold_ranks} ranks)"
    if defaults is not None and note not in defaults:
        defaults.append(note)
    return dict(expert, etp=1)
