"""The app's callbacks and input handling as plain functions (no server, no browser).

A tiny world is built once per test session (``tiny_world``): a data root holding 3,000 MNIST training and 1,000
test images plus 300 CIFAR-10 test images, and a checkpoints folder with a briefly trained MNIST 3-D ArcFace, a
briefly trained CIFAR-10 model, untrained 2-D and 8-D MNIST models, and two files that are not checkpoints.
``tests/test_app.py`` and ``tests/test_browser.py`` reuse it.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_data

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()


# ----------------------------------------------------------------------------------------------- the tiny world


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
            _restore(saved)
        (base / "ready").write_text("ok")
    return world


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "arcdemo-ui-world"


@pytest.fixture(scope="module")
def tiny_world(tiny_world_path: Path) -> Iterator[TinyWorld]:
    """The tiny world, with the environment pointing at it for this module only (and torch on one thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core CPU one thread trains these tiny runs ~4× faster
    world = build_tiny_world(tiny_world_path)
    saved = {key: os.environ.get(key) for key in [*world.env(), "ARCDEMO_TORCH_THREADS"]}
    os.environ.update({**world.env(), "ARCDEMO_TORCH_THREADS": "1"})
    yield world
    _restore(saved)
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------- helper images


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


# ------------------------------------------------------------------------------------------------- inputs


def test_sketch_becomes_an_mnist_digit() -> None:
    from arcdemo.inputs import mnist_like

    field = mnist_like(sketch_value(drawn_one()))
    assert field.shape == (28, 28) and field.dtype == np.uint8 and field.max() == 255
    rows, cols = np.nonzero(field)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20  # fits the 20×20 box
    assert rows.max() - rows.min() + 1 == 20  # the long side fills it
    weights = field.astype(float)
    centre = [(weights.sum(axis=axis) * np.arange(28)).sum() / weights.sum() for axis in (1, 0)]
    assert np.allclose(centre, 14.0, atol=0.75)  # centred by centre of mass, at (14, 14) as in MNIST
    assert field[0].max() == 0 and field[:, 0].max() == 0  # a border of background remains


def test_mnist_preparation_reproduces_mnist_digits() -> None:
    """An MNIST digit drawn big and dark-on-white (as on the Sketchpad) comes back close to the original."""
    from arcdemo.data import read_idx
    from arcdemo.inputs import mnist_like

    images = read_idx(REAL_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:20]
    correlations = []
    for digit in images:
        drawing = 255 - np.kron(digit, np.ones((12, 12), np.uint8))  # 336×336, black ink on white
        rebuilt = mnist_like(drawing).astype(float)
        correlations.append(np.corrcoef(rebuilt.ravel(), digit.astype(float).ravel())[0, 1])
    assert np.median(correlations) > 0.85, correlations


def test_either_polarity_and_transparent_ink_are_read() -> None:
    from arcdemo.inputs import mnist_like

    white_on_black = 255 - drawn_one()[..., :3]
    transparent = np.zeros((200, 200, 4), np.uint8)
    transparent[40:160, 90:110, 3] = 255  # black ink (RGB 0) only where alpha is opaque
    reference = mnist_like(sketch_value(drawn_one(200)))
    assert np.abs(mnist_like(white_on_black).astype(int) - mnist_like(drawn_one()).astype(int)).max() == 0
    assert mnist_like({"composite": transparent}).max() == 255
    assert reference.max() == 255


@pytest.mark.parametrize(
    "value",
    [None, sketch_value(None), {"background": None, "layers": [], "composite": None},
     sketch_value(np.full((336, 336, 4), 255, np.uint8)), sketch_value(np.full((336, 336, 4), 128, np.uint8)),
     np.zeros((50, 50), np.uint8)],
    ids=["none", "composite-none", "all-none", "white", "grey", "black"],
)
def test_empty_or_blank_sketch_says_so(value: object) -> None:
    from arcdemo.inputs import InputError, mnist_like

    with pytest.raises(InputError, match="empty"):
        mnist_like(value)


def _mode_image(mode: str) -> Image.Image:
    rgb = Image.new("RGB", (64, 48), (200, 30, 30))
    if mode == "I;16":
        return Image.fromarray(np.full((48, 64), 65535, np.uint16))
    if mode == "P-transparent":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image
    if mode in ("LAB", "HSV"):
        return Image.new(mode, (64, 48))
    return rgb.convert(mode)


@pytest.mark.parametrize(
    "mode", ["L", "1", "P", "P-transparent", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]
)
def test_any_image_mode_becomes_rgb_32(mode: str) -> None:
    from arcdemo.inputs import square_image

    tensor = square_image(_mode_image(mode), 32)
    assert tuple(tensor.shape) == (3, 32, 32) and str(tensor.dtype) == "torch.uint8"


def test_sixteen_bit_and_transparency_are_scaled_and_flattened() -> None:
    from arcdemo.inputs import square_image

    white16 = Image.fromarray(np.full((40, 40), 65535, np.uint16))
    assert white16.mode.startswith("I;16")
    assert int(square_image(white16, 32).min()) == 255  # 16-bit full scale is white, not clipped noise
    clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert int(square_image(clear, 32).min()) == 255  # transparent is paper, not black
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red
    red = square_image(cmyk, 32)
    assert int(red[0].min()) > 200 and int(red[1].max()) < 60
    for mode in ("1", "P", "LA", "RGBA", "CMYK"):  # big images take the reduce-first path, whatever the mode
        big = Image.new("RGB", (1800, 1300), (10, 200, 30)).convert(mode)
        assert abs(float(square_image(big, 32)[1].float().mean()) - (200 if mode in ("P", "RGBA", "CMYK") else 124)) < 3
    wide = Image.new("RGB", (3000, 10), (0, 0, 255))
    assert tuple(square_image(wide, 32).shape) == (3, 32, 32)  # extreme aspect ratio: centre square


def test_bad_files_get_sentences(tmp_path: Path) -> None:
    from arcdemo.inputs import InputError, check_image_file, open_image, square_image

    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(Image.new("RGB", (300, 300), "red"))[:200])
    bomb = png_bytes(Image.new("1", (20000, 20000)))  # 400 MP in a few hundred kB
    cases = {
        str(text): "not an image", str(empty): "empty", str(truncated): "damaged|truncated|could not be read",
        str(tmp_path / "missing.png"): "does not exist", bomb: "limit",
    }
    for source, message in cases.items():
        with pytest.raises(InputError, match=message):
            square_image(source, 32)
    with pytest.raises(InputError, match="not an image"):
        check_image_file(text)
    assert check_image_file(truncated) == (300, 300)  # the header is enough to admit it; decoding reports damage
    with pytest.raises(InputError, match="shape"):
        open_image(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(InputError):
        open_image(12345)


def test_model_input_shapes() -> None:
    from arcdemo.inputs import model_input

    assert tuple(model_input(drawn_one(), "mnist", 1, 28).shape) == (1, 1, 28, 28)
    assert tuple(model_input(drawn_one(), "cifar10", 3, 32).shape) == (1, 3, 32, 32)


# ------------------------------------------------------------------------------------------------- models


def test_checkpoints_are_discovered_and_junk_ignored(tiny_world: TinyWorld) -> None:
    from arcdemo.ui.models import available_models, list_checkpoints

    keys = [entry.key for entry in list_checkpoints()]
    assert keys == ["mnist-tiny-3d", "mnist-random-2d", "mnist-random-8d", "cifar10-tiny-3d"]  # 3-D first
    assert [e.key for e in available_models(dataset="cifar10")] == ["cifar10-tiny-3d"]
    label = next(e.label for e in list_checkpoints() if e.key == "mnist-tiny-3d")
    assert "MNIST" in label and "ArcFace" in label and "3-D" in label and "% test" in label


@pytest.mark.parametrize("key", ["nope", "../checkpoints/mnist-tiny-3d", "session:99", "", None])
def test_unknown_models_are_explained(tiny_world: TinyWorld, key: object) -> None:
    from arcdemo.ui.models import ModelNotFound, load_model

    with pytest.raises(ModelNotFound):
        load_model(key)  # type: ignore[arg-type]


def test_shipped_models_are_cached(tiny_world: TinyWorld) -> None:
    from arcdemo.ui.models import load_model

    assert load_model("mnist-tiny-3d") is load_model("mnist-tiny-3d")


# ------------------------------------------------------------------------------------------------ predict


def test_predict_digit_returns_probabilities_angles_and_figure(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import callbacks as cb

    prediction = cb.predict(sketch_value(drawn_one()), "mnist-tiny-3d")
    assert math.isclose(sum(prediction.probabilities.values()), 1.0, rel_tol=1e-4)
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    assert [row[0] for row in prediction.angles] and len(prediction.angles) == 10
    angles = [row[1] for row in prediction.angles]
    assert angles == sorted(angles) and 0 <= angles[0] <= 180
    figure = prediction.figure.to_dict()
    assert figure["data"][-1]["type"] == "scatter3d" and figure["data"][-1]["marker"]["color"] == "gold"
    point = np.array([figure["data"][-1][axis][1] for axis in "xyz"])
    assert math.isclose(np.linalg.norm(point), 1.0, abs_tol=1e-3)
    assert len(prediction.figure) < 2_000_000
    assert prediction.preview.shape == (140, 140)
    assert prediction.label in prediction.summary


def test_predict_draws_2d_and_projected_8d_models(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import callbacks as cb

    flat = cb.predict(drawn_one(), "mnist-random-2d").figure.to_dict()
    assert flat["data"][-1]["type"] == "scatter" and "z" not in flat["data"][-1]
    projected = cb.predict(drawn_one(), "mnist-random-8d").figure.to_dict()
    assert projected["data"][-1]["type"] == "scatter3d"
    assert "PCA" in projected["layout"]["title"]["text"]


def test_classify_any_image_with_the_cifar_model(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import callbacks as cb

    photo = png_bytes(Image.new("CMYK", (640, 480), (0, 80, 200, 10)), format="JPEG")
    prediction = cb.predict(photo, "cifar10-tiny-3d")
    from arcdemo.data import CIFAR10_CLASSES

    assert set(prediction.probabilities) == set(CIFAR10_CLASSES)
    assert prediction.preview.shape == (160, 160, 3)


def test_the_fast_path_reuses_the_cached_figure(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import callbacks as cb
    from arcdemo.ui.models import load_model

    cb.predict(drawn_one(), "mnist-tiny-3d")
    base = load_model("mnist-tiny-3d").draw_base(cb._draw_base)
    cb.predict(drawn_one(), "mnist-tiny-3d")
    assert load_model("mnist-tiny-3d").draw_base(cb._draw_base) is base


# ------------------------------------------------------------------------------------------------ explore


@pytest.mark.parametrize("paint", [False, True])
def test_explore_view(tiny_world: TinyWorld, paint: bool) -> None:
    from arcdemo.ui import callbacks as cb

    view = cb.explore("mnist-tiny-3d", paint)
    assert "Test accuracy" in view.summary and "mean angle to own class centre" in view.summary
    assert len(view.sphere.to_json()) < 2_000_000
    assert any(trace.name == "decision boundary" for trace in view.sphere.data)
    assert any(trace.type == "mesh3d" for trace in view.sphere.data) == paint
    assert view.confusion.data[0].type == "heatmap" and len(view.angles.data) == 2
    assert "confusion_matrix" not in view.card["metrics"] and view.card["model"]["embedding_dim"] == 3


def test_explore_untrained_high_dimensional_model(tiny_world: TinyWorld) -> None:
    from arcdemo.ui import callbacks as cb

    view = cb.explore("mnist-random-8d")
    assert "PCA" in view.sphere.layout.title.text and "8-D" in view.summary


# -------------------------------------------------------------------------------------------------- train


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss": "bogus"}, "(?i)unknown loss"),
        ({"margin": 3.0}, "(?i)out of range for arcface"),
        ({"margin": float("nan")}, "finite"),
        ({"scale": "abc"}, "must be a number"),
        ({"epochs": 0}, "between 1 and 20"),
        ({"epochs": 10**9}, "between 1 and 20"),
        ({"dim": 1}, "between 2 and 512"),
        ({"dim": 2.5}, "whole number"),
        ({"lr": -1}, "above 0"),
        ({"batch_size": 3}, "between 16 and 1024"),
        ({"dataset": "imagenet"}, "(?i)unknown dataset"),
        ({"optimizer": "lbfgs"}, "(?i)optimizer"),
    ],
)
def test_absurd_training_settings_are_refused(overrides: dict, message: str) -> None:
    from arcdemo.ui import callbacks as cb

    with pytest.raises(cb.InputError, match=message):
        cb.training_config(**overrides)


def test_training_streams_then_hands_over_a_usable_model(tiny_world: TinyWorld, tmp_path: Path) -> None:
    from arcdemo.ui import callbacks as cb

    # 3 × 23 steps, a snapshot every 4: a single epoch can finish between two refreshes on a fast CPU
    config = dataclasses.replace(cb.training_config(seed=1, epochs=3), sample_every=4)
    updates = list(cb.train_stream(config, refresh_s=0.05, out_dir=tmp_path))
    assert "loading" in updates[0].status
    assert any(u.sphere is not None and u.done is None for u in updates), "no live sphere was streamed"
    done = updates[-1].done
    assert done is not None and not done.stopped and "test accuracy" in updates[-1].status
    files = [Path(f) for f in done.files]
    assert {f.suffix for f in files} == {".safetensors", ".json"} and all(f.is_file() for f in files)
    assert all(tiny_world.checkpoints not in f.parents for f in files)  # shipped files are never touched
    session = cb.add_session_model({}, done.model)
    prediction = cb.predict(drawn_one(), done.model.key, session)
    assert prediction.label in [str(i) for i in range(10)]
    assert "Test accuracy" in cb.explore(done.model.key, False, session).summary


def test_stop_really_stops(tiny_world: TinyWorld, tmp_path: Path) -> None:
    from arcdemo.ui import callbacks as cb

    config = cb.training_config(epochs=5, seed=2)  # 5 × 23 steps if nobody stopped it
    stop = threading.Event()
    started = time.perf_counter()
    last = None
    for update in cb.train_stream(config, stop.is_set, refresh_s=0.05, out_dir=tmp_path):
        if "step" in update.status:
            stop.set()
        last = update
    assert last is not None and last.done is not None and last.done.stopped
    assert last.done.history["step"][-1] < 23 and "stopped early" in last.status
    assert time.perf_counter() - started < 60


def test_a_broken_run_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import arcdemo.train
    from arcdemo.ui import callbacks as cb

    def diverging(config, should_stop, **kwargs):  # noqa: ANN001, ANN202, ARG001
        yield arcdemo.train.StepEvent(1, 10, 1, 2.3, 0.1, 0.1, 0.1, 0.1, 100.0)
        raise arcdemo.train.TrainingDiverged("loss became nan at step 2 (epoch 1); lower the learning rate")

    monkeypatch.setattr(arcdemo.train, "train", diverging)
    with pytest.raises(cb.TrainingFailed, match="Training diverged: loss became nan .* lower the learning rate"):
        for _ in cb.train_stream(cb.training_config(), refresh_s=0.01):
            pass


def test_session_models_are_capped() -> None:
    from arcdemo.ui import callbacks as cb

    deleted = []

    class Fake:
        def __init__(self, key: str) -> None:
            self.key = key

        def delete_files(self) -> None:
            deleted.append(self.key)

    session: dict = {}
    for index in range(cb.MAX_SESSION_MODELS + 2):
        session = cb.add_session_model(session, Fake(f"session:{index}"))  # type: ignore[arg-type]
    assert list(session) == [f"session:{i}" for i in range(2, cb.MAX_SESSION_MODELS + 2)]
    assert deleted == ["session:0", "session:1"]  # a dropped model's files go with it


def test_the_servers_time_limit_stops_a_run_and_the_session_end_deletes_its_files(
    tiny_world: TinyWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arcdemo.ui import callbacks as cb

    monkeypatch.setattr(cb, "MAX_TRAIN_S", 1.0)
    started = time.perf_counter()
    updates = list(cb.train_stream(cb.training_config(epochs=20, seed=3), refresh_s=0.05, out_dir=tmp_path))
    done = updates[-1].done
    assert done is not None and done.stopped and done.history["step"][-1] < 20 * 23
    assert "stopped early (this server allows 1 s per training (ARCDEMO_MAX_TRAIN_S))" in updates[-1].status
    assert time.perf_counter() - started < 60
    folder = Path(done.files[0]).parent
    assert folder.is_dir() and done.model.folder == folder
    cb.forget_session(cb.add_session_model({}, done.model))
    assert not folder.exists()


def test_training_desk_one_at_a_time_and_stop() -> None:
    from arcdemo.ui.callbacks import TrainingDesk

    desk = TrainingDesk()
    assert desk.stop("a").startswith("No training")
    assert desk.announce("a") is False
    flag = desk.begin("a")
    assert flag is not None and desk.busy()
    assert desk.announce("b") is True  # b waits behind a
    assert desk.announce("a") is True  # a second click of a's waits behind its first run …
    assert desk.stop("a").startswith("Stopping") and flag.is_set()  # … and Stop reaches the running one
    assert desk.stop("b").startswith("Cancelled")
    desk.end("a")
    assert desk.begin("b") is None  # b was cancelled while queued
    assert not desk.busy()
    assert desk.begin("c") is not None  # an API run without announce starts normally


# --------------------------------------------------------------------------------------------------- layout


def test_page_copies_match_the_core() -> None:
    from arcdemo.data import CIFAR10_CLASSES
    from arcdemo.margins import LOSSES
    from arcdemo.ui import callbacks as cb
    from arcdemo.ui import layout
    from arcdemo.ui.models import LOSS_TITLES

    assert list(LOSS_TITLES) == list(LOSSES)
    start = cb.TRAIN_DEFAULTS
    spec = LOSSES[start["loss"]]
    assert (spec.margin, spec.scale) == (start["margin"], start["scale"])
    cb.training_config(**start).resolved()  # the page's starting values are a valid run
    assert layout.CIFAR10_TEXT == ", ".join(CIFAR10_CLASSES)


def test_loss_controls_follow_the_loss() -> None:
    from arcdemo.ui.layout import loss_controls

    margin, scale = loss_controls("sphereface")
    assert (margin["minimum"], margin["maximum"], margin["value"]) == (1.0, 6.0, 1.5)
    margin, scale = loss_controls("softmax")
    assert margin["interactive"] is False and scale["interactive"] is False
    margin, scale = loss_controls("arcface", "cifar10")  # MNIST's s = 30 collapses on CIFAR-10
    assert (margin["value"], scale["value"]) == (0.2, 16.0)
    margin, scale = loss_controls("arcface", "mnist")
    assert (margin["value"], scale["value"]) == (0.5, 30.0)


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


def test_zero_gpu_wrapper_and_stop_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from arcdemo.ui.gpu import StopFile, on_gpu

    def identity(x: int) -> int:
        return x

    assert on_gpu(60)(identity) is identity  # no `spaces` package here: a no-op
    calls = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (lambda fn: calls.append(duration) or fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert on_gpu(duration=90)(identity) is identity and calls == [90]

    stop = StopFile()  # what another process sees: a file
    assert not stop.is_set() and not os.path.exists(stop.path)
    stop.set()
    assert stop.is_set() and os.path.exists(stop.path)
    stop.remove()
    assert not stop.folder.exists()


def test_live_drawing_is_kept_for_predict_and_empty_is_a_quiet_note(tiny_world: TinyWorld) -> None:
    from arcdemo.ui.layout import predict_digit_again, predict_digit_live

    *outputs, kept = predict_digit_live(sketch_value(None), "mnist-tiny-3d", {})
    assert kept is None and outputs[0] is None and "draw a digit" in outputs[-1]
    *outputs, kept = predict_digit_live(sketch_value(np.full((336, 336, 4), 255, np.uint8)), "mnist-tiny-3d", {})
    assert outputs[0] is None and "empty" in outputs[-1]  # a blank canvas: a note, not an error
    *outputs, kept = predict_digit_live(sketch_value(drawn_one()), "mnist-tiny-3d", {})
    assert kept is not None and set(outputs[0]) == {str(i) for i in range(10)}
    again = predict_digit_again(kept, "mnist-random-2d", {})  # Predict / another model: the kept drawing
    assert set(again[0]) == {str(i) for i in range(10)} and "with probability" in again[-1]
    assert "No checkpoint" in predict_digit_again(kept, "gone", {})[-1]


def test_model_lists_gain_session_models(tiny_world: TinyWorld) -> None:
    from arcdemo.ui.layout import refresh_models
    from arcdemo.ui.models import ModelEntry

    class Trained:
        entry = ModelEntry("session:7", "cifar10-arcface-3d-1200 — trained here", "cifar10", 3)

    explore, draw, classify = refresh_models({"session:7": Trained()}, "gone", None, None)  # type: ignore[dict-item]
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


def test_thread_counts_are_per_thread_and_a_trainer_sets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request thread predicts on 1 torch thread and does not hand its 1 to a trainer started after it."""
    import torch

    from arcdemo.ui.models import THREADS

    monkeypatch.setenv("ARCDEMO_TORCH_THREADS", "2")
    seen: dict[str, int] = {}
    predicting, trainer_ready = threading.Event(), threading.Event()

    def request() -> None:
        with THREADS.single():
            seen["request"] = torch.get_num_threads()
            predicting.set()
            trainer_ready.wait(10)

    def trainer() -> None:
        predicting.wait(10)
        seen["new thread starts with"] = torch.get_num_threads()
        THREADS.settle()
        seen["trainer"] = torch.get_num_threads()
        trainer_ready.set()

    threads = [threading.Thread(target=request), threading.Thread(target=trainer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen["request"] == 1 and seen["trainer"] == 2, seen


def _nice_of_threads() -> dict[int, int]:
    """Every thread of this process: OS thread id → its nice value (field 19 of /proc/self/task/<id>/stat)."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended after the listing
            continue
        values[int(task.name)] = int(fields[16])
    return values


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread priorities from Linux's /proc")
def test_a_trainer_yields_the_cpu_to_predictions_with_its_torch_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer thread lowers its own priority before any torch op, so the OpenMP workers it starts inherit it;
    request threads and the threads that were there before keep theirs."""
    import torch

    from arcdemo.ui.models import THREADS

    monkeypatch.setenv("ARCDEMO_TORCH_THREADS", "2")
    monkeypatch.setenv("ARCDEMO_TRAINER_NICE", "7")
    before = _nice_of_threads()
    seen: dict[str, object] = {}

    def trainer() -> None:
        THREADS.yield_to_requests()
        THREADS.settle()
        x = torch.randn(512, 512)
        for _ in range(5):
            x = (x @ x).tanh()  # parallel ops: the workers start now, from this thread
        seen["trainer"] = threading.get_native_id()
        seen["threads"] = _nice_of_threads()

    thread = threading.Thread(target=trainer)
    thread.start()
    thread.join(30)
    after = seen["threads"]
    assert after[seen["trainer"]] == 7
    assert all(after[tid] == nice for tid, nice in before.items() if tid in after)  # the others keep theirs
    started = {tid: nice for tid, nice in after.items() if tid not in before and tid != seen["trainer"]}
    assert started and set(started.values()) == {7}, started  # torch's workers, started by the trainer
    monkeypatch.setenv("ARCDEMO_TRAINER_NICE", "off")
    THREADS.yield_to_requests()  # "off": nothing changes
    assert _nice_of_threads()[threading.get_native_id()] == before[threading.get_native_id()]
