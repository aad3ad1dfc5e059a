"""Units used across cosmic: the only module that knows conversion factors.

Conventions
-----------
* Time in the simulator core is in seconds (``_s``); user-facing latencies are in ns (``_ns``).
* User-facing bandwidth keys end in ``_gbps`` and mean **GB/s with GB = 10^9 bytes** (decimal, as nccl-tests and
  vendor spec sheets print them). ASTRA-sim files use GB = 2^30 bytes; :mod:`cosmic.collective.astra` converts them.
* Memory capacities are in GB = 10^9 bytes (vendor convention), sizes in the core in bytes (``_bytes``).
* FLOP counts end in ``_flops``; rates in ``_flop_per_s``; user-facing peak rates in TFLOP/s (``_tflops``).
"""

from __future__ import annotations

GB = 10**9
"""Decimal gigabyte (vendor and nccl-tests convention)."""
GIB = 2**30
"""Binary gibibyte (ASTRA-sim's 'GB')."""
NS = 1e-9
TFLOP = 1e12

BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


def gbps_to_bytes_per_s(gbps: float) -> float:
    """Convert decimal GB/s to bytes per second."""
    return gbps * GB


def gib_per_s_to_bytes_per_s(gib_per_s: float) -> float:
    """Convert ASTRA-sim GB/s (GB = 2^30) to bytes per second."""
    return gib_per_s * GIB
