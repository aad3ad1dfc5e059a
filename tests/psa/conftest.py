"""Fixtures of the PSA tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .psa_testdata import TINY_PSA, write_psa


@pytest.fixture
def tiny_psa_file(tmp_path: Path) -> Path:
    return write_psa(tmp_path, TINY_PSA)
