from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("COSMIC_SHARED_DIR") or HERE.parents[1] / ".." / "shared") / "validation"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return HERE / "data"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "training_runs.csv").exists():
        pytest.skip(f"{SHARED} has no training_runs.csv (the summary at the end of the run says so too)")
    return SHARED
