"""Simulator: configuration, one-step timeline, result."""

from cosmic.sim.config import SystemConfig, config_from_dict, load_config
from cosmic.sim.engine import simulate
from cosmic.sim.result import BREAKDOWN_KEYS, Memory, Result

__all__ = ["SystemConfig", "config_from_dict", "load_config", "simulate", "Result", "Memory", "BREAKDOWN_KEYS"]
