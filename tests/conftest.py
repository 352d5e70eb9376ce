from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Sample files, copied from shared/data into the repo so a clone is self-contained.
SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def sample_copy(tmp_path: Path):
    """Copy a sample file into tmp_path and return the copy's path."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copy(SAMPLES / name, dst)
        return dst

    return copy
