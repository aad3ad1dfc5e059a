"""Free-text cells -> catalog entries and options (content rules only)."""

from __future__ import annotations

import pytest

from cosmic import catalog
from cosmic.validate import mapping


@pytest.mark.parametrize(
    ("text", "mem", "expected"),
    [
        ("A100-SXM4-80GB (DGX A100)", None, "a100-80gb"),
        ("A100-40GB", None, "a100-40gb"),
        ("A100 (Selene DGX A100)", 40, "a100-40gb"),
        ("A100 (Selene DGX A100)", None, "a100-80gb"),
        ("H100-SXM5-80GB (DGX-H100)", None, "h100-sxm"),
        ("H200 (8x HGX, NVLink4)", None, "h200"),
        ("B200 (AWS p6-b200.48xlarge)", None, "b200"),
        ("GB200 (DGX-GB200)", None, "gb200"),
        ("GB300 (DGX-GB300)", None, "gb300"),
        ("B300 (DGX-B300)", None, "b300"),
        ("V100-SXM3-32GB (DGX-2H)", None, "v100-32gb"),
        ("AMD MI300X", None, "mi300x"),
        ("TPU v5p", None, "tpu-v5p"),
        ("Google TPU v3", None, "tpu-v3"),
        ("TPU v3-1024 pod", None, "tpu-v3"),
        ("TPU v6e (Trillium)", None, "tpu-v6e"),
        ("Gaudi 2", None, None),
        ("NVIDIA Ampere GPUs", None, "a100-80gb"),
        ("NVIDIA Ampere GPUs", 40, "a100-40gb"),
        ("Blackwell Ultra", None, "b300"),
    ],
)
def test_accelerators(text: str, mem: float | None, expected: str | None) -> None:
    assert mapping.accelerator_name(text, mem) == expected
    if expected is not None:
        assert expected in catalog.accelerator_names()


@pytest.mark.parametrize(
    ("text", "accel", "expected"),
    [
        ("NVLink3 + NVSwitch (DGX A100)", "a100-80gb", "nvlink3"),
        ("NVLink4/NVSwitch (H100 HGX)", "h100-sxm", "nvlink4"),
        ("NVLink + NVSwitch", "b200", "nvlink5"),
        ("NVSwitch, 300 GB/s between GPUs", "v100-32gb", "nvlink2"),
        ("PCIe Gen4", None, "pcie4"),
        ("PCI Gen 6", None, "pcie6"),
        ("", "h100-sxm", "nvlink4"),
    ],
)
def test_intra_fabrics(text: str, accel: str | None, expected: str) -> None:
    assert mapping.intra_fabric(text, accel) == expected
    assert expected in catalog.fabric_names()


@pytest.mark.parametrize(
    ("text", "accel", "expected"),
    [
        ("8x 200Gb/s HDR InfiniBand HCAs per node (Selene)", "a100-80gb", "ib-hdr"),
        ("8x ConnectX-7 IB NDR 400 Gb/s per node", "h100-sxm", "ib-ndr"),
        ("1600 Gbps node-node interconnect (RoCE)", "a100-80gb", "roce-400g"),
        ("8x 400 Gb/s EFA v4 per node (50 GB/s per GPU)", "b200", "efa-v4"),
        ("GPUDirect-TCPXO, 8x200 Gb/s per node", "h100-sxm", "tcpxo"),
        ("Omni-Path (Jean Zay)", "a100-80gb", "omni-path"),
        ("", "a100-40gb", "ib-hdr"),
    ],
)
def test_inter_fabrics(text: str, accel: str, expected: str) -> None:
    assert mapping.inter_fabric(text, accel) == expected
    assert expected in catalog.fabric_names()


@pytest.mark.parametrize(
    ("text", "node", "gbps"),
    [
        ("8x 200Gb/s HDR InfiniBand HCAs per node (Selene)", 8, 25.0),
        ("8x ConnectX-7 IB NDR 400 Gb/s per node", 8, 50.0),
        ("1600 Gbps node-node interconnect (RoCE)", 8, 25.0),
        ("8 InfiniBand adapters per server, 100 GB/s per server", 16, 6.25),
        ("8x 400 Gb/s EFA v4 per node (50 GB/s per GPU)", 8, 50.0),
        ("8x400Gb RDMA", 8, 50.0),
        ("HDR InfiniBand (Selene)", 8, None),
    ],
)
def test_scale_out_rate_per_device(text: str, node: int, gbps: float | None) -> None:
    assert mapping.per_accel_gbps(text, node) == gbps


@pytest.mark.parametrize(
    ("text", "basis", "expected"),
    [
        ("none", "", "none"),
        ("", "", "none"),
        ("", "Megatron eq.(3) (incl. recompute forward)", "full"),
        ("", "model TFLOP/s (MFU basis; excludes recompute)", "none"),
        ("full (activation checkpointing)", "", "full"),
        ("yes (FLOP formula eq.3 assumes recompute)", "", "full"),
        ("selective (attention core only)", "", "selective"),
        ("remat_policy=full", "", "full"),
        ("remat_policy=save_dot_except_logits_ffn1", "", "selective"),
    ],
)
def test_recompute(text: str, basis: str, expected: str) -> None:
    assert mapping.recompute(text, basis) == expected


@pytest.mark.parametrize(
    ("text", "zero", "extra"),
    [
        ("", 0, 1),
        ("PyTorch FSDP FULL_SHARD (mixed-precision mode PURE)", 3, 1),
        ("PyTorch FSDP SHARD_GRAD_OP (mixed-precision mode DEFAULT)", 2, 1),
        ("ZeRO-1", 1, 1),
        ("ZeRO-3 (DeepSpeed)", 3, 1),
        ("distributed optimizer (USE_DIST_OPTIMIZER=True)", 1, 1),
        ("DDP + distributed optimizer (FSDP=0)", 1, 1),
        ("Megatron-FSDP (FSDP=64)", 3, 64),
        ("FSDP 16 (ICI)", 3, 16),
    ],
)
def test_sharding(text: str, zero: int, extra: int) -> None:
    assert mapping.sharding(text) == mapping.Sharding(zero, extra)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mixed precision (fp16)", "fp16"),
        ("mixed precision", "fp16"),
        ("amp_bf16", "bf16"),
        ("FP8-CS", "fp8"),
        ("fp8 (Transformer Engine, hybrid)", "fp8"),
        ("amp_fp8", "fp8"),
        ("bf16 + int8 (AQT quantization=int8)", None),
    ],
)
def test_precision(text: str, expected: str | None) -> None:
    assert mapping.precision(text) == expected


def test_virtual_stages_and_flags() -> None:
    assert mapping.virtual_stages("12") == 12
    assert mapping.virtual_stages("") == 1
    assert mapping.virtual_stages("interleaved schedule (chunks/device not stated)") is None
    assert mapping.yes_no("yes (default)") is True and mapping.yes_no("no") is False and mapping.yes_no("") is None
    assert mapping.uses_flash_attention("Megatron-LM (PTD-P)", "a100-80gb") is False
    assert mapping.uses_flash_attention("NeMo 24.07 (Megatron-Core)", "h100-sxm") is True
    assert mapping.overlaps_dp("Megatron-LM (2020)") is False and mapping.overlaps_dp("NeMo (NGC 24.04)") is True
