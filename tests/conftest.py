"""Shared fixtures: paths to the repository, examples and the read-only validation data.

Property and fuzz tests draw the same examples on every run (Hypothesis profile ``repeatable``), so a red CI run is
reproducible and main does not turn red by chance. To look for new failures, run them with fresh random examples:
``HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/fuzz``, or ``benchmarks/fuzz.py --cases N --seed S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
