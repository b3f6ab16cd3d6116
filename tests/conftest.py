"""Shared fixtures: the data root (../shared/data unless ARCDEMO_DATA_ROOT says otherwise) and a private cache."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
os.environ["ARCDEMO_DATA_ROOT"] = str(DATA_ROOT)


def require_data(*parts: str) -> Path:
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset folder {path} not present (set ARCDEMO_DATA_ROOT)")
    return path


@pytest.fixture
def mnist_root() -> Path:
    return require_data("MNIST", "raw")
