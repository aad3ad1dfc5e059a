"""Shared test data: a small PSA whose feasible set can be brute-forced through `config_from_dict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TINY_BASE: dict[str, Any] = {
    "model": {"name": "tiny", "layers": 4, "hidden": 64, "heads": 4, "seq_len": 64, "vocab": 100},
    "accelerator": "cosmic-s1-npu",
    "network": {
        "dims": [
            {"topology": "Ring", "npus": 4, "link_gibps": 50, "latency_ns": 100},
            {"topology": "Switch", "npus": 4, "link_gibps": 25, "latency_ns": 500},
        ]
    },
    "parallel": {"dp": 4, "tp": 2, "pp": 2, "sp": 1, "rank_order": "dp,tp,sp,pp"},
    "training": {"global_batch": 16},
}

TINY_PSA: dict[str, Any] = {
    "name": "tiny",
    "base": TINY_BASE,
    "knobs": {
        "workload": {"dp": {"pow2": [1, 16]}, "sp": {"pow2": [1, 8]}, "pp": {"values": [1, 2, 4]}},
        "network": {
            "npus": {"values": [2, 4, 8], "mode": "per_dim"},
            "topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"},
        },
    },
    "derived": {"tp": {"rule": "npus_quotient", "from": ["dp", "sp", "pp"]}},
    "constraints": {
        "dim0_not_switch": "topology[0] != 'Switch'",
        "wide_dp_needs_a_ring": "dp <= 4 or count(topology, 'Ring') >= 1",
    },
    "objectives": ["step_time"],
}


def write_psa(tmp_path: Path, data: dict[str, Any], name: str = "space.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p

