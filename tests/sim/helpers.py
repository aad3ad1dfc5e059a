"""Small builders shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import cosmic


def dgx_config(
    *,
    model: Any = "gpt3-175b",
    accelerator: str = "a100-80gb",
    tp: int = 8,
    pp: int = 16,
    dp: int = 8,
    sp: int = 1,
    global_batch: int = 1536,
    micro_batch: int = 1,
    **training: Any,
) -> cosmic.SystemConfig:
    """A DGX-style cluster: NVSwitch nodes of 8 and one HDR NIC per GPU (Megatron rank order)."""
    n = tp * pp * dp * sp
    dims = [{"topology": "Switch", "npus": min(8, n), "fabric": "nvlink3"}]
    if n > 8:
        dims.append({"topology": "Switch", "npus": n // 8, "fabric": "ib-hdr"})
    par = {k: training.pop(k) for k in ("zero", "sequence_parallel", "rank_order") if k in training}
    return cosmic.config_from_dict(
        {
            "model": model,
            "accelerator": accelerator,
            "network": {"dims": dims},
            "parallel": {"tp": tp, "pp": pp, "dp": dp, "sp": sp, **par},
            "training": {"global_batch": global_batch, "micro_batch": micro_batch, **training},
        }
    )
