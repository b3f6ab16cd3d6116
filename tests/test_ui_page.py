"""The page as a whole: its endpoints, no torch on the first page, the model pickers, output files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arcdemo.ui.context import Picker, refresh_models
from arcdemo.ui.store import ModelEntry
from tests.conftest import REPO
from tests.helpers import TinyWorld


def test_endpoints_and_one_training_at_a_time(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import build_demo

    functions = build_demo().fns.values()
    endpoints = {fn.api_name: fn for fn in functions if fn.api_visibility == "public"}
    assert set(endpoints) == {"explore", "train", "stop_training", "compare_losses", "predict_digit", "classify_image",
                              "verify_faces", "enrol_face", "identify_face"}
    assert endpoints["train"].concurrency_limit == 1
    assert endpoints["train"].concurrency_id == endpoints["compare_losses"].concurrency_id
    assert endpoints["stop_training"].concurrency_limit is None  # never waits behind a training


def test_importing_the_app_does_not_import_torch() -> None:
    """The page is built from shipped files alone: no torch, yet the first Explore figure is already in it."""
    code = (
        "import sys, app; assert 'torch' not in sys.modules, 'torch imported'; "
        "sphere = next(b for b in app.demo.blocks.values() if getattr(b, 'elem_id', None) == 'explore-sphere'); "
        "assert sphere.value and 'decision boundary' in sphere.value['plot'], 'no first figure'"
    )
    env = {**os.environ, "ARCDEMO_CHECKPOINTS": str(REPO / "checkpoints")}  # the shipped ones, with their points
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_model_lists_gain_session_models(tiny_world: TinyWorld) -> None:
    class Trained:
        entry = ModelEntry("session:7", "cifar10-arcface-3d-1200 — trained here", "cifar10", 3)

    pickers = [Picker(None, datasets, "none yet") for datasets in (None, ("mnist",), ("cifar10", "imagefolder"))]
    session = {"session:7": Trained()}
    explore, draw, classify = refresh_models(pickers, session, "gone", None, None)  # type: ignore[arg-type]
    assert explore["value"] == "mnist-tiny-3d"
    assert ("cifar10-arcface-3d-1200 — trained here", "session:7") in explore["choices"]
    assert classify["choices"][-1][1] == "session:7" and classify["value"] == "cifar10-tiny-3d"
    assert draw["info"] is None and all(key != "session:7" for _, key in draw["choices"])


def test_output_images_are_files_written_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical pictures for many visitors: one file per content, written atomically and never again."""
    from concurrent.futures import ThreadPoolExecutor

    from arcdemo.ui import outputs

    monkeypatch.setattr(outputs, "OUTPUT_DIR", tmp_path / "out")
    picture = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: outputs.image_file(picture), range(32)))
    assert len(set(paths)) == 1
    written = Path(paths[0]).stat()
    assert np.array_equal(np.asarray(Image.open(paths[0])), picture)
    again = outputs.image_file(picture)
    assert again == paths[0] and Path(again).stat().st_ino == written.st_ino  # reused, not rewritten
    assert outputs.image_file(picture[::-1]) != again and outputs.image_file(None) is None
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no staging left
