"""Shared fixtures: the data root (../shared/data unless ARCDEMO_DATA_ROOT says otherwise) and a private cache."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
os.environ["ARCDEMO_DATA_ROOT"] = str(DATA_ROOT)


REQUIRE_DATA = os.environ.get("ARCDEMO_REQUIRE_DATA", "") not in ("", "0")  # CI: a missing dataset fails


def require_data(*parts: str) -> Path:
    """A dataset path under the data root; without it the test is skipped, or fails under ARCDEMO_REQUIRE_DATA=1."""
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        message = f"dataset folder {path} not present (set ARCDEMO_DATA_ROOT)"
        if REQUIRE_DATA:
            pytest.fail(message + "; ARCDEMO_REQUIRE_DATA=1 asks for every dataset")
        pytest.skip(message)
    return path


@pytest.fixture
def mnist_root() -> Path:
    return require_data("MNIST", "raw")
