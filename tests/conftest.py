"""Shared fixtures: the data root (../shared/data unless ARCDEMO_DATA_ROOT says otherwise), a private cache, and
the tiny world the UI tests run in (tests/helpers.py builds it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.helpers import TinyWorld

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
os.environ["ARCDEMO_DATA_ROOT"] = str(DATA_ROOT)
# the environment before any test changes it: an app started for the real checkpoints gets this, never a world's
OUTSIDE_ENV = dict(os.environ)


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


# ------------------------------------------------------------------------------------------- the tiny world


@pytest.fixture(scope="session")
def tiny_world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "arcdemo-ui-world"


@pytest.fixture(scope="module")
def tiny_world(tiny_world_path: Path) -> Iterator[TinyWorld]:
    """The tiny world, with the environment pointing at it for this module only (and torch on one thread)."""
    import torch

    from tests.helpers import build_tiny_world, restore_env

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core CPU one thread trains these tiny runs ~4× faster
    world = build_tiny_world(tiny_world_path)
    saved = {key: os.environ.get(key) for key in [*world.env(), "ARCDEMO_TORCH_THREADS"]}
    os.environ.update({**world.env(), "ARCDEMO_TORCH_THREADS": "1"})
    yield world
    restore_env(saved)
    torch.set_num_threads(threads)
