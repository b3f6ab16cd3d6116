"""Shared test helpers: the tiny world (a small MNIST/CIFAR-10 data root and checkpoints trained on it) and the
drawings and images the UI tests feed in. Its fixtures are in conftest.py."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import REPO, require_data

REAL_DATA = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()


@dataclass(frozen=True)
class TinyWorld:
    data_root: Path
    checkpoints: Path
    cache: Path

    def env(self) -> dict[str, str]:
        return {
            "ARCDEMO_DATA_ROOT": str(self.data_root),
            "ARCDEMO_CHECKPOINTS": str(self.checkpoints),
            "ARCDEMO_CACHE_DIR": str(self.cache),
        }


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _make_data_root(root: Path) -> None:
    from arcdemo.data import read_idx

    raw_in, raw_out = REAL_DATA / "MNIST" / "raw", root / "MNIST" / "raw"
    raw_out.mkdir(parents=True)
    for prefix, count in (("train", 3000), ("t10k", 1000)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            _write_idx(raw_out / name, read_idx(raw_in / name)[:count])
    for folder in sorted((REAL_DATA / "cifar10" / "test").iterdir()):
        target = root / "cifar10" / "test" / folder.name
        target.mkdir(parents=True)
        for image in sorted(folder.iterdir())[:30]:
            (target / image.name).symlink_to(image)


def _card_stub(model) -> dict:  # noqa: ANN001
    return {"config": {}, "metrics": {}, "note": "untrained, for figure tests"}


def _make_checkpoints(folder: Path) -> None:
    import torch

    from arcdemo.checkpoints import save_checkpoint
    from arcdemo.data import load_split
    from arcdemo.model import EmbeddingModel
    from arcdemo.train import TrainConfig, build_spec, run_card, train

    folder.mkdir(parents=True)
    mnist_train, mnist_test = load_split("mnist", "train"), load_split("mnist", "test")
    config = TrainConfig(dataset="mnist", dim=3, epochs=1, train_subset=3000, sample_every=0, seed=0)
    done = list(train(config, data=(mnist_train, mnist_test)))[-1]
    save_checkpoint(folder / "mnist-tiny-3d", done.model, {"name": "mnist-tiny-3d", **run_card(done)})

    cifar = load_split("cifar10", "test")
    config = TrainConfig(dataset="cifar10", dim=3, epochs=1, width=8, batch_size=60, sample_every=0, seed=0)
    done = list(train(config, data=(cifar, cifar)))[-1]
    save_checkpoint(folder / "cifar10-tiny-3d", done.model, {"name": "cifar10-tiny-3d", **run_card(done)})

    torch.manual_seed(0)
    for dim in (2, 8):
        spec = build_spec(TrainConfig(dataset="mnist", dim=dim).resolved(), mnist_train)
        save_checkpoint(folder / f"mnist-random-{dim}d", EmbeddingModel(spec).eval(), _card_stub(None))
    (folder / "reference").mkdir()  # the reference face model's LFW threshold, so the Faces tab works here too
    (folder / "reference" / "lfw.json").write_text((REPO / "checkpoints" / "reference" / "lfw.json").read_text())
    (folder / "junk.json").write_text("{not json")
    orphan = json.loads((folder / "mnist-tiny-3d.json").read_text())
    (folder / "orphan.json").write_text(json.dumps(orphan))  # a card without weights


_WORLD_LOCK = threading.Lock()


def build_tiny_world(base: Path) -> TinyWorld:
    """Create (once; later calls reuse the folder) the tiny data root and checkpoints under ``base``."""
    world = TinyWorld(base / "data", base / "checkpoints", base / "cache")
    with _WORLD_LOCK:
        if (base / "ready").exists():
            return world
        require_data("MNIST", "raw")
        require_data("cifar10", "test")
        saved = {key: os.environ.get(key) for key in world.env()}
        os.environ.update(world.env())
        try:
            _make_data_root(world.data_root)
            _make_checkpoints(world.checkpoints)
        finally:
            restore_env(saved)
        (base / "ready").write_text("ok")
    return world


def restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def drawn_one(size: int = 336) -> np.ndarray:
    """A Sketchpad-like RGBA composite: white, opaque, with a black vertical stroke."""
    canvas = np.full((size, size, 4), 255, np.uint8)
    canvas[size // 6 : size - size // 6, size // 2 - 12 : size // 2 + 12, :3] = 0
    return canvas


def sketch_value(image: np.ndarray | None) -> dict:
    return {"background": None, "layers": [], "composite": image}


def png_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()
