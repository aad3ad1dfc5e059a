"""Simulator: configuration, one-step timeline (scalar and batch paths), result."""

from cosmic.caches import clear_caches
from cosmic.sim.config import SystemConfig, config_from_dict, load_config
from cosmic.sim.engine import (
    memory_footprint,
    simulate,
    simulate_if_fits,
    simulate_many,
)
from cosmic.sim.result import BREAKDOWN_KEYS, Memory, Result

__all__ = [
    "BREAKDOWN_KEYS",
    "Memory",
    "Result",
    "SystemConfig",
    "clear_caches",
    "config_from_dict",
    "load_config",
    "memory_footprint",
    "simulate",
    "simulate_if_fits",
    "simulate_many",
]
