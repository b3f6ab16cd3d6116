"""The Train tab: settings checked by name, the live stream, Stop, the server's limits, the desk, the sliders."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from arcdemo.inputs import InputError
from arcdemo.ui.common import TrainingFailed
from arcdemo.ui.desk import TrainingDesk
from arcdemo.ui.predict import predict
from arcdemo.ui.store import add_session_model, forget_session
from arcdemo.ui.tabs import train as train_tab
from arcdemo.ui.tabs.explore import explore
from arcdemo.ui.tabs.train import TrainSettings, loss_controls, train_stream, training_config
from tests.helpers import TinyWorld, drawn_one


def settings(**overrides: object) -> TrainSettings:
    """A short run: one epoch, the margin warmed up over it (the other fields are the page's)."""
    return TrainSettings(**{"epochs": 1, "warmup_steps": -1, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss": "bogus"}, "(?i)unknown loss"),
        ({"margin": 3.0}, "(?i)out of range for arcface"),
        ({"margin": float("nan")}, "finite"),
        ({"scale": "abc"}, "must be a number"),
        ({"epochs": 0}, "between 1 and 500"),
        ({"epochs": 10**9}, "between 1 and 500"),
        ({"dim": 1}, "between 2 and 512"),
        ({"dim": 2.5}, "whole number"),
        ({"lr": -1}, "above 0"),
        ({"batch_size": 3}, "between 16 and 1024"),
        ({"dataset": "imagenet"}, "(?i)unknown dataset"),
        ({"optimizer": "lbfgs"}, "(?i)optimizer"),
    ],
)
def test_absurd_training_settings_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        training_config(settings(**overrides))


def test_training_streams_then_hands_over_a_usable_model(tiny_world: TinyWorld, tmp_path: Path) -> None:
    # 3 × 23 steps, a snapshot every 4: a single epoch can finish between two refreshes on a fast CPU
    config = dataclasses.replace(training_config(settings(seed=1, epochs=3)), sample_every=4)
    updates = list(train_stream(config, refresh_s=0.05, out_dir=tmp_path))
    assert "loading" in updates[0].status
    assert any(u.sphere is not None and u.done is None for u in updates), "no live sphere was streamed"
    done = updates[-1].done
    assert done is not None and not done.stopped and "test accuracy" in updates[-1].status
    files = [Path(f) for f in done.files]
    assert {f.suffix for f in files} == {".safetensors", ".json"} and all(f.is_file() for f in files)
    assert all(tiny_world.checkpoints not in f.parents for f in files)  # shipped files are never touched
    session = add_session_model({}, done.model)
    prediction = predict(drawn_one(), done.model.key, session)
    assert prediction.label in [str(i) for i in range(10)]
    assert "Test accuracy" in explore(done.model.key, False, session).summary


def test_stop_really_stops(tiny_world: TinyWorld, tmp_path: Path) -> None:
    config = training_config(settings(epochs=5, seed=2))  # 5 × 23 steps if nobody stopped it
    stop = threading.Event()
    started = time.perf_counter()
    last = None
    for update in train_stream(config, stop.is_set, refresh_s=0.05, out_dir=tmp_path):
        if "step" in update.status:
            stop.set()
        last = update
    assert last is not None and last.done is not None and last.done.stopped
    assert last.done.history["step"][-1] < 23 and "stopped early" in last.status
    assert time.perf_counter() - started < 60


def test_a_broken_run_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import arcdemo.train

    def diverging(config, should_stop, **kwargs):  # noqa: ANN001, ANN202, ARG001
        yield arcdemo.train.StepEvent(1, 10, 1, 2.3, 0.1, 0.1, 0.1, 0.1, 100.0)
        raise arcdemo.train.TrainingDiverged("loss became nan at step 2 (epoch 1); lower the learning rate")

    monkeypatch.setattr(arcdemo.train, "train", diverging)
    with pytest.raises(TrainingFailed, match="Training diverged: loss became nan .* lower the learning rate"):
        for _ in train_stream(training_config(settings()), refresh_s=0.01):
            pass


def test_the_face_networks_preparation_shows_in_the_progress_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import arcdemo.train

    def preparing(config, should_stop, **kwargs):  # noqa: ANN001, ANN202, ARG001
        for done in (1, 2):
            yield arcdemo.train.ViewsEvent(done, 8, 280, 1.5 * done)
        raise arcdemo.train.TrainingDiverged("loss became nan at step 1 (epoch 1); lower the learning rate")

    monkeypatch.setattr(arcdemo.train, "train", preparing)
    statuses = []
    with pytest.raises(TrainingFailed):
        for update in train_stream(training_config(settings()), refresh_s=0.01):
            statuses.append(update.status)
    assert any("embeds every training photo once: view 1 of 8 of 280 photos · 2 s" in s for s in statuses)
    assert any('style="width:25.0%"' in s and "view 2 of 8" in s for s in statuses)


def test_the_servers_time_limit_stops_a_run_and_the_session_end_deletes_its_files(
    tiny_world: TinyWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_tab, "MAX_TRAIN_S", 1.0)
    started = time.perf_counter()
    updates = list(train_stream(training_config(settings(epochs=20, seed=3)), refresh_s=0.05, out_dir=tmp_path))
    done = updates[-1].done
    assert done is not None and done.stopped and done.history["step"][-1] < 20 * 23
    assert "stopped early (this server allows 1 s per training (ARCDEMO_MAX_TRAIN_S))" in updates[-1].status
    assert time.perf_counter() - started < 60
    folder = Path(done.files[0]).parent
    assert folder.is_dir() and done.model.folder == folder
    forget_session(add_session_model({}, done.model))
    assert not folder.exists()


def test_training_desk_one_at_a_time_and_stop() -> None:
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


def test_loss_controls_follow_the_loss() -> None:
    margin, scale = loss_controls("sphereface")
    assert (margin["minimum"], margin["maximum"], margin["value"]) == (1.0, 6.0, 1.5)
    margin, scale = loss_controls("softmax")
    assert margin["interactive"] is False and scale["interactive"] is False
    margin, scale = loss_controls("arcface", "cifar10")  # MNIST's s = 30 collapses on CIFAR-10
    assert (margin["value"], scale["value"]) == (0.2, 16.0)
    margin, scale = loss_controls("arcface", "mnist")
    assert (margin["value"], scale["value"]) == (0.5, 30.0)


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


def test_the_pages_starting_values_are_a_valid_run() -> None:
    config = training_config(train_tab.DEFAULTS).resolved()
    assert (config.dataset, config.loss, config.dim, config.epochs) == ("mnist", "arcface", 3, 2)
    assert train_tab.page_values()["margin"] == config.margin


def test_settings_travel_by_name_from_the_components_to_the_trainer() -> None:
    """One list of settings: the endpoints' parameters are TrainSettings' fields, and so are the API's."""
    import inspect

    from arcdemo.ui import build_demo

    runs = train_tab.Runs(TrainingDesk())
    assert list(inspect.signature(runs.train).parameters) == [*train_tab.SETTINGS, "session", "request"]
    assert list(inspect.signature(runs.compare).parameters) == [*train_tab.COMPARE_PARAMS, "session", "request"]
    api = build_demo().get_api_info()["named_endpoints"]
    assert [p["parameter_name"] for p in api["/train"]["parameters"]] == list(train_tab.TRAIN_PARAMS)
    assert [p["parameter_name"] for p in api["/compare_losses"]["parameters"]] == list(train_tab.COMPARE_PARAMS)


def _zip_of_people(path: Path, people: int = 40, photos: int = 10) -> Path:
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (30, 30), 128).save(buffer, format="PNG")
    with zipfile.ZipFile(path, "w") as archive:
        for person in range(people):
            for photo in range(photos):
                archive.writestr(f"people/p{person}/{photo}.png", buffer.getvalue())
    return path


def test_settings_follow_the_size_of_orl_and_of_a_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch, epochs, dimension, warm-up, optimizer and learning rate as the data sets them: MNIST keeps the page's;
    ORL and a zip of 400 photos get batch 32 and ~400 steps; faces keep 3-D and train their neck with AdamW."""
    monkeypatch.setattr(train_tab, "UPLOADS_DIR", tmp_path / "uploads")
    page = train_tab.DEFAULTS
    assert train_tab.data_settings("mnist") == (page.batch_size, page.epochs, page.dim, page.warmup_steps,
                                                page.optimizer, page.lr)
    assert train_tab.data_settings("orl") == (32, 50, 3, 100, "adam", 0.02)
    archive = str(_zip_of_people(tmp_path / "people.zip"))
    assert train_tab.data_settings("imagefolder", archive) == (32, 40, 64, 100, page.optimizer, page.lr)
    assert train_tab.data_settings("imagefolder", archive, True) == (32, 40, 3, 100, "adam", 0.02)
    assert train_tab.data_settings("imagefolder", str(tmp_path / "missing.zip")) == train_tab.data_settings("mnist")
    assert loss_controls("arcface", "orl")[1]["value"] == 8.0  # √2·ln 39 = 5.2, at least 8
    assert loss_controls("arcface", "imagefolder", archive)[1]["value"] == 8.0
    assert loss_controls("softmax", "orl")[1]["value"] == 1.0
    config = training_config(settings(dataset="orl", optimizer="adam", lr=0.02, batch_size=32)).resolved()
    assert (config.backbone, config.weight_decay, config.init_from) == ("face_neck", 0.5, "faces-arcface")


def test_a_zip_without_faces_ticked_as_faces_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_tab, "UPLOADS_DIR", tmp_path / "uploads")
    archive = str(_zip_of_people(tmp_path / "grey.zip", people=2, photos=12))
    with pytest.raises(InputError, match="No face was found in any of your photos"):
        training_config(settings(dataset="imagefolder", images_zip=archive, faces=True, batch_size=16))


def test_a_run_stuck_at_chance_is_named_in_the_progress_line() -> None:
    from arcdemo.train import StepEvent, TrainConfig

    config = TrainConfig(dataset="mnist", epochs=2)
    sentence = "stuck at chance: with the whole margin on, batches are right 3% of the time (chance 2%)"
    stuck = StepEvent(40, 80, 1, 9.1, 0.03, 0.1, 1.0, 12.0, 300.0, sentence)
    assert sentence in train_tab._step_html(stuck, config, "", stopping=False)
    assert "stuck" not in train_tab._step_html(dataclasses.replace(stuck, stuck=""), config, "", stopping=False)
