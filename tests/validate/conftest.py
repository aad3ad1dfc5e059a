from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "validation"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return HERE / "data"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "training_runs.csv").exists():
        pytest.skip("../shared/validation not present beside the repository")
    return SHARED
