"""Train: a run with live sphere and curves, or two losses side by side; the model joins the other tabs' lists.

The settings travel by name: ``TrainSettings`` is the one list of them, its fields name the components, the API's
parameters and the trainer's inputs (``training_config``), so no positional order has to be kept in step by hand.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import itertools
import json
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from arcdemo import catalog
from arcdemo.inputs import InputError, unpack_image_zip
from arcdemo.ui.common import TrainingFailed, friendly, progress_html, session_id
from arcdemo.ui.context import Context
from arcdemo.ui.desk import TrainingDesk
from arcdemo.ui.gpu import StopFile, on_gpu
from arcdemo.ui.plots import frame
from arcdemo.ui.store import SESSION_PREFIX, LoadedModel, SessionModels, add_session_model
from arcdemo.ui.threads import THREADS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from arcdemo.train import TrainConfig

TITLE, ID = "Train", "train"
# Limits for a shared public server, from the environment: a training's wall time (it stops there and keeps the
# model), and where uploaded image archives are unpacked.
MAX_TRAIN_S = float(os.environ.get("ARCDEMO_MAX_TRAIN_S", "900"))
UPLOADS_DIR = Path(os.environ.get("ARCDEMO_UPLOADS_DIR", Path(tempfile.gettempdir()) / "arcdemo-uploads"))
LIVE_POINTS = 1000  # test points in each live snapshot
LIVE_SAMPLE_EVERY = 10  # steps between live snapshots (the UI shows at most one per REFRESH_S)
REFRESH_S = 0.5  # at most this often a training streams a new figure
LIVE_HEIGHT = 560  # px of the live sphere


@dataclass(frozen=True)
class TrainSettings:
    """What a visitor sets in the Train tab, by name; the defaults are the page's starting values: two epochs of 3-D
    ArcFace on MNIST, the margin ramped in over 150 steps, SGD at 0.1 (chosen on held-out training digits by
    ``benchmarks/train_defaults.py``; also what ``benchmarks/app_latency.py --train`` times)."""

    dataset: str = "mnist"
    loss: str = "arcface"
    margin: float | None = None  # None: the loss's default (catalog.LOSSES)
    scale: float | None = None
    dim: int = 3
    epochs: int = 2
    lr: float | None = 0.0  # 0 or None: 0.1 for SGD, 0.003 for Adam
    warmup_steps: int = 150  # -1: one epoch when dim ≤ 3
    optimizer: str = "sgd"
    batch_size: int = 128
    seed: int = 0
    train_subset: int = 0  # 0: every training image
    images_zip: str | None = None  # dataset "imagefolder": a zip of class folders
    faces: bool = False  # dataset "imagefolder": the photos are faces; align them and train a neck on the face model


DEFAULTS = TrainSettings()


def page_values(settings: TrainSettings = DEFAULTS) -> dict[str, Any]:
    """The settings as the page shows them (and /train takes them): the loss's own margin and scale filled in."""
    loss = catalog.LOSSES[settings.loss]
    values = dataclasses.asdict(settings)
    values["margin"] = loss.margin if settings.margin is None else settings.margin
    values["scale"] = loss.scale if settings.scale is None else settings.scale
    return values

SETTINGS = tuple(f.name for f in dataclasses.fields(TrainSettings))
SECOND_LOSS = ("loss_b", "margin_b", "scale_b")  # the comparison's second loss, on the same data and seed
TRAIN_PARAMS = SETTINGS  # /train's parameters, in its inputs' order
COMPARE_PARAMS = (*SETTINGS[:-2], *SECOND_LOSS, *SETTINGS[-2:])  # /compare_losses' (the zip and faces stay last)

# bounds a public server accepts (the trainer itself allows more); checked before anything is queued
TRAIN_LIMITS = {
    "epochs": (1, 500),  # small sets take ~400 steps (small_data); MAX_TRAIN_S bounds the time
    "dim": (2, 512),
    "train_subset": (0, 60_000),
    "batch_size": (16, 1024),
    "warmup_steps": (-1, 100_000),
    "seed": (0, 2**31 - 1),
}


# ------------------------------------------------------------------------------------------------------ service


def _number(name: str, value: Any, integer: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}.")
    if integer and number != int(number):
        raise InputError(f"{name} must be a whole number, got {value!r}.")
    return number


def training_config(settings: TrainSettings) -> TrainConfig:
    """A validated ``TrainConfig`` from the settings; anything unusable raises InputError with the allowed range.
    Dataset "imagefolder" trains on ``settings.images_zip`` (a zip of class folders), unpacked under UPLOADS_DIR."""
    from arcdemo.data import image_folder_layout
    from arcdemo.small_data import NECK_TRAINING
    from arcdemo.train import TrainConfig

    s = settings
    checked: dict[str, int] = {}
    for name in ("dim", "epochs", "warmup_steps", "seed", "train_subset", "batch_size"):
        what = name.replace("_", " ").capitalize()
        number = int(_number(what, getattr(s, name), integer=True))
        low, high = TRAIN_LIMITS[name]
        if not low <= number <= high:
            raise InputError(f"{what} must be between {low} and {high} here, got {number}.")
        checked[name] = number
    margin = None if s.margin is None else _number("Margin", s.margin)
    scale = None if s.scale is None else _number("Scale", s.scale)
    lr = None if s.lr is None or s.lr == 0 else _number("Learning rate", s.lr)
    if lr is not None and not 0 < lr <= 10:
        raise InputError(f"Learning rate must be above 0 and at most 10 (0 picks the default), got {lr:g}.")
    data_dir, faces = "", {}
    info = catalog.DATASETS.get(str(s.dataset))
    neck = bool(s.faces) if s.dataset == catalog.IMAGE_FOLDER else info is not None and info.frozen_features
    if s.dataset == catalog.IMAGE_FOLDER:
        data_dir = str(unpack_image_zip(s.images_zip or "", UPLOADS_DIR))
        if s.faces:
            data_dir, faces = str(aligned_faces(data_dir).root), dict(backbone=catalog.FACE_NECK, image_size=112)
        training_images = len(image_folder_layout(data_dir).files["train"])
        if training_images < checked["batch_size"]:
            raise InputError(
                f"Your images give {training_images} to train on, fewer than one batch of {checked['batch_size']}: "
                "lower the batch size (More settings) or add images."
            )
    config = TrainConfig(
        dataset=str(s.dataset), data_dir=data_dir, loss=str(s.loss), margin=margin, scale=scale, dim=checked["dim"],
        epochs=checked["epochs"], lr=lr, optimizer=str(s.optimizer), batch_size=checked["batch_size"],
        margin_warmup_steps=checked["warmup_steps"], seed=checked["seed"], train_subset=checked["train_subset"],
        sample_every=LIVE_SAMPLE_EVERY, sample_size=LIVE_POINTS, **faces,
        # not a setting on the page: the strong decay a neck on the frozen face model needs (small_data)
        **({"weight_decay": NECK_TRAINING["weight_decay"]} if neck else {}),
    )
    try:
        config.resolved()
    except ValueError as error:
        raise InputError(str(error)[:1].upper() + str(error)[1:] + ".") from None
    return config


@dataclass(frozen=True)
class TrainUpdate:
    """One refresh of the Train tab; ``None`` fields are unchanged since the last update."""

    status: str  # HTML with a progress bar
    sphere: go.Figure | None = None
    curves: go.Figure | None = None
    done: TrainedRun | None = None


@dataclass(frozen=True)
class TrainedRun:
    model: LoadedModel
    files: list[str]  # the downloadable checkpoint: .safetensors + .json
    stopped: bool
    history: dict = field(default_factory=dict)


_SESSION_KEYS = itertools.count(1)


def _run_name(config: TrainConfig) -> str:
    return f"{config.dataset}-{config.loss}-{config.dim}d-{datetime.now().strftime('%H%M%S')}"


def _save_trained(done: Any, name: str, out_dir: Path | None) -> tuple[LoadedModel, list[str]]:
    """Write the run as a downloadable checkpoint (never into the shipped folder) and wrap it for the other tabs."""
    from arcdemo.checkpoints import save_checkpoint
    from arcdemo.train import run_card

    folder = Path(tempfile.mkdtemp(prefix="arcdemo-trained-", dir=out_dir))
    card = {"name": name, "trained_in": "arcdemo app (one browser session)", **run_card(done)}
    weights, card_path = save_checkpoint(folder / name, done.model, card)
    full_card = json.loads(card_path.read_text())
    key = f"{SESSION_PREFIX}{next(_SESSION_KEYS)}"
    accuracy = done.evaluation.metrics["accuracy"]
    c = done.config
    label = (
        f"{name} — trained here · {catalog.title(c.dataset)} · {catalog.loss_title(c.loss)} · "
        f"{c.dim}-D · "
        f"{100 * accuracy:.1f}% test{' (stopped early)' if done.stopped else ''}"
    )
    model = LoadedModel(key, label, done.model.eval(), full_card, evaluation=done.evaluation, folder=folder)
    return model, [str(weights), str(card_path)]


def train_events(config: TrainConfig, stop: StopFile) -> Iterator[Any]:
    """One run's compute, the only part that ZeroGPU runs on its GPU (``gpu.on_gpu``, in a process of its own):
    the trainer's events with the final model moved to the CPU to travel back; Stop is ``stop``'s file."""
    from arcdemo.train import DoneEvent, train

    THREADS.yield_to_requests()  # before any torch op: the OpenMP workers it starts inherit the priority
    THREADS.settle()  # this thread's own count: it may have started with a request thread's 1
    for event in train(config, should_stop=stop.is_set):
        if isinstance(event, DoneEvent) and event.model is not None:
            event = dataclasses.replace(event, model=event.model.cpu())
        yield event


# the evaluation at the end is inside the GPU lease too
train_events_on_gpu = on_gpu(int(MAX_TRAIN_S) + 120)(train_events)


def _trainer_thread(config: TrainConfig, stop: StopFile, events: queue.Queue) -> threading.Thread:
    """Run the trainer beside the UI: events go into ``events``; an exception is put there too, then None."""

    def run() -> None:
        try:
            for event in train_events_on_gpu(config, stop):
                events.put(event)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which explains it
            events.put(error)
        finally:
            events.put(None)

    thread = threading.Thread(target=run, name="arcdemo-train", daemon=True)
    thread.start()
    return thread


def _explain(error: BaseException) -> TrainingFailed:
    from arcdemo.data import DatasetMissingError
    from arcdemo.train import TrainingDiverged

    if isinstance(error, TrainingDiverged):
        return TrainingFailed(f"Training diverged: {error}.")
    if isinstance(error, DatasetMissingError):
        return TrainingFailed(f"The training data is not available here: {error}")
    if isinstance(error, ValueError):
        return TrainingFailed(f"Training could not start: {error}")
    return TrainingFailed(f"Training failed: {type(error).__name__}: {error}")


def train_stream(
    config: TrainConfig,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    refresh_s: float = REFRESH_S,
    out_dir: Path | None = None,
    label: str = "",
) -> Iterator[TrainUpdate]:
    """Train in a background thread and yield live updates (at most one per ``refresh_s``): sphere, curves, status.

    ``should_stop`` is polled while training (the Stop button); closing this generator stops the trainer too. The
    last update carries the trained model (usable in the other tabs) and its checkpoint files.
    """
    from arcdemo import viz
    from arcdemo.train import DoneEvent, EpochEvent, SampleEvent, StepEvent, ViewsEvent

    prefix = f"{label}: " if label else ""
    series = ("step", "loss", "train_accuracy", "test_step", "test_accuracy", "test_views")
    history: dict[str, list[float]] = {key: [] for key in series}
    stop = StopFile()
    events: queue.Queue = queue.Queue()
    dataset = catalog.title(config.dataset)
    aligned = _aligned_note(config)
    yield TrainUpdate(progress_html(0, f"{prefix}loading {dataset} and building the model…{aligned}"))
    thread = _trainer_thread(config, stop, events)
    started, timed_out = time.perf_counter(), False
    last_step: StepEvent | None = None
    sample: SampleEvent | None = None
    changed, finished, last_sent, interval = False, False, 0.0, refresh_s
    try:
        while not finished:
            batch = []
            try:
                batch.append(events.get(timeout=refresh_s))
                while True:
                    batch.append(events.get_nowait())
            except queue.Empty:
                pass
            if should_stop():
                stop.set()
            if not timed_out and time.perf_counter() - started > MAX_TRAIN_S:
                timed_out = True
                stop.set()
            for event in batch:
                if event is None:
                    finished = True
                elif isinstance(event, BaseException):
                    raise _explain(event) from event
                elif isinstance(event, StepEvent):
                    last_step, changed = event, True
                    history["step"].append(event.step)
                    history["loss"].append(event.loss)
                    history["train_accuracy"].append(event.train_accuracy)
                elif isinstance(event, SampleEvent):
                    sample, changed = event, True
                elif isinstance(event, ViewsEvent):  # shown at once: there are only a handful
                    yield TrainUpdate(_views_html(event, prefix, stop.is_set(), timed_out))
                elif isinstance(event, EpochEvent):
                    history["test_step"].append(last_step.step if last_step else 0)
                    history["test_accuracy"].append(event.test_accuracy)
                    history["test_views"].append(1)
                    changed = True
                elif isinstance(event, DoneEvent):
                    yield _finish(event, prefix, out_dir, config, timed_out, last_step.stuck if last_step else "")
                    changed = False
            if finished or last_step is None or not changed or time.perf_counter() - last_sent < interval:
                continue
            began = time.perf_counter()
            sphere = None
            if sample is not None:
                sphere = viz.sphere_figure(
                    sample.embeddings, sample.labels, sample.rule, sample.class_names,
                    title=f"{prefix}step {sample.step}: {len(sample.labels):,} test points",
                )
                frame(sphere, LIVE_HEIGHT)
                sample = None
            status = _step_html(last_step, config, prefix, stop.is_set(), timed_out)
            update = TrainUpdate(status, sphere, viz.curves_figure(history))
            # drawing competes with the trainer for the CPU (and the GIL): keep it under ~20% of the time
            interval = max(refresh_s, 4 * (time.perf_counter() - began))
            yield update
            changed, last_sent = False, time.perf_counter()
    finally:
        stop.set()  # Stop, a closed tab or an error: the trainer ends at its next step (then evaluates once)
        thread.join()  # and the desk stays taken until it has: two trainings never share the CPU
        stop.remove()


def _aligned_note(config: TrainConfig) -> str:
    """Your photos' alignment in one line (which had no face), for a run on aligned faces; "" otherwise."""
    if config.backbone not in catalog.ALIGNED_FACE_BACKBONES or not config.data_dir:
        return ""
    from arcdemo.faces.folders import aligned_note

    note = aligned_note(config.data_dir)
    return f"<br>{html.escape(note)}" if note else ""


def _limit_text() -> str:
    return f"this server allows {MAX_TRAIN_S:.0f} s per training (ARCDEMO_MAX_TRAIN_S)"


def _stopping_text(stopping: bool, timed_out: bool) -> str:
    """What the progress line adds once a run is told to stop (Stop, or the server's time limit)."""
    if timed_out:
        return f" · stopping: {_limit_text()}; then one evaluation on the test set…"
    return " · stopping, then one evaluation on the test set…" if stopping else ""


def _views_html(views: Any, prefix: str, stopping: bool, timed_out: bool = False) -> str:
    text = (f"{prefix}the frozen face network embeds every training photo once: view {views.done} of {views.total} "
            f"of {views.photos:,} photos · {views.elapsed_s:.0f} s")
    return progress_html(views.done / views.total, text + _stopping_text(stopping, timed_out))


def _step_html(step: Any, config: TrainConfig, prefix: str, stopping: bool, timed_out: bool = False) -> str:
    text = (
        f"{prefix}step {step.step}/{step.total_steps} · epoch {step.epoch}/{config.epochs} · loss {step.loss:.3f} · "
        f"batch accuracy {100 * step.train_accuracy:.0f}% · margin {100 * step.margin_fraction:.0f}% on · "
        f"{step.images_per_s:,.0f} img/s · {step.elapsed_s:.0f} s"
    )
    if step.stuck:
        text += f" · {step.stuck}"
    if stopping or timed_out:
        text += _stopping_text(stopping, timed_out)
    elif step.step == step.total_steps:
        text += " · evaluating on the test set…"
    return progress_html(step.step / step.total_steps, text)


def _finish(done: Any, prefix: str, out_dir: Path | None, config: TrainConfig, timed_out: bool = False,
            stuck: str = "") -> TrainUpdate:
    from arcdemo import viz

    model, files = _save_trained(done, _run_name(config), out_dir)
    evaluation = done.evaluation
    metrics = evaluation.metrics
    sphere = viz.sphere_figure(
        evaluation.embeddings, evaluation.labels, model.decision_rule(), model.class_names,
        title=f"{prefix}after {done.steps} steps: {len(evaluation.labels):,} test embeddings",
    )
    frame(sphere, LIVE_HEIGHT)
    how = ("stopped early" + (f" ({_limit_text()})" if timed_out else "")) if done.stopped else "done"
    text = (
        f"{prefix}{how} — test accuracy <b>{100 * metrics['accuracy']:.2f}%</b> after {done.steps} steps "
        f"({done.epochs_done} full epoch(s)) in {done.wall_time_s:.0f} s · mean angle to own centre "
        f"{metrics['mean_intra_angle_deg']:.1f}°, to nearest other {metrics['mean_inter_angle_deg']:.1f}° · "
        f"now selectable in Explore, Draw and Classify as <code>{model.key}</code>"
    )
    if stuck:
        text += f"<br><b>This run collapsed</b>: {stuck}"
    text += _aligned_note(config)
    run = TrainedRun(model, files, done.stopped, done.history)
    return TrainUpdate(progress_html(1.0, text, "done"), sphere, viz.curves_figure(done.history), run)


def compare_stream(
    config_a: TrainConfig,
    config_b: TrainConfig,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    refresh_s: float = REFRESH_S,
    out_dir: Path | None = None,
) -> Iterator[TrainUpdate]:
    """Train two configurations one after the other (same data and seed) and stream them side by side."""
    from arcdemo import viz

    label_a, label_b = (catalog.loss_title(c.loss) for c in (config_a, config_b))
    if label_a == label_b:
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    final_a: go.Figure | None = None
    run_a: TrainedRun | None = None
    for update in train_stream(config_a, should_stop, refresh_s=refresh_s, out_dir=out_dir, label=label_a):
        if update.done is not None:
            final_a, run_a = update.sphere, update.done
        yield update
    if run_a is None or run_a.stopped:
        return
    for update in train_stream(config_b, should_stop, refresh_s=refresh_s, out_dir=out_dir, label=label_b):
        sphere = update.sphere
        if sphere is not None and final_a is not None:
            sphere = viz.comparison_figure(final_a, sphere, label_a, label_b)
            frame(sphere, LIVE_HEIGHT)
        status = update.status
        if update.done is not None:
            status = _comparison_html(
                ((label_a, run_a.model.evaluation().metrics), (label_b, update.done.model.evaluation().metrics))
            )
        yield TrainUpdate(status, sphere, update.curves, update.done)


def _comparison_html(runs: tuple[tuple[str, Mapping], ...]) -> str:
    rows = "".join(
        f"<tr><td>{name}</td><td>{100 * m['accuracy']:.2f}%</td><td>{m['mean_intra_angle_deg']:.1f}°</td>"
        f"<td>{m['mean_inter_angle_deg']:.1f}°</td><td>{m['min_centre_angle_deg']:.1f}°</td></tr>"
        for name, m in runs
    )
    table = (
        '<table class="arc-compare"><tr><th>loss</th><th>test accuracy</th><th>mean angle to own centre</th>'
        f"<th>to nearest other centre</th><th>closest two centres</th></tr>{rows}</table>"
    )
    text = f"both trained on the same data and seed; both are now in the model lists{table}"
    return progress_html(1.0, text, "done")


# ------------------------------------------------------------------------------------------------------------ UI


def settings_endpoint(run: Callable[..., Iterator[tuple]], names: tuple[str, ...]) -> Callable:
    """An endpoint whose parameters are ``names`` (the API's, by name, in its inputs' order), then the session and
    the request; ``run(values_by_name, session, request)`` does the work. The zip upload and its "these are faces"
    box, last, are optional."""
    parameter = inspect.Parameter
    optional = {"images_zip": None, "faces": False}
    signature = inspect.Signature([
        *(parameter(name, parameter.POSITIONAL_OR_KEYWORD, default=optional.get(name, parameter.empty))
          for name in names),
        parameter("session", parameter.POSITIONAL_OR_KEYWORD, default=None),
        parameter("request", parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
    ])

    def endpoint(*args: Any, **kwargs: Any) -> Iterator[tuple]:
        values = signature.bind(*args, **kwargs)
        values.apply_defaults()
        values = dict(values.arguments)
        session, request = values.pop("session"), values.pop("request")
        yield from run(values, session or {}, request)

    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.__annotations__ = {"request": gr.Request}
    endpoint.__name__ = endpoint.__qualname__ = run.__name__.lstrip("_")
    endpoint.__doc__ = run.__doc__
    return friendly(endpoint)


def _train_outputs(update: TrainUpdate, files: list[str], session: SessionModels) -> tuple:
    return (
        update.status,
        update.sphere if update.sphere is not None else gr.skip(),
        update.curves if update.curves is not None else gr.skip(),
        files if update.done is not None else gr.skip(),
        session,
    )


class Runs:
    """The Train tab's endpoints around one training desk: a run is bracketed by it (Stop, one at a time), and its
    finished models join the session."""

    def __init__(self, desk: TrainingDesk) -> None:
        self.desk = desk
        self.train = settings_endpoint(self._train, TRAIN_PARAMS)
        self.compare = settings_endpoint(self._compare, COMPARE_PARAMS)

    def _train(self, values: Mapping[str, Any], session: SessionModels, request: gr.Request | None) -> Iterator[tuple]:
        """/train: one run, streamed."""
        config = training_config(TrainSettings(**values))
        yield from self._run(lambda should_stop: train_stream(config, should_stop), session, request)

    def _compare(self, values: Mapping[str, Any], session: SessionModels, request: gr.Request | None
                 ) -> Iterator[tuple]:
        """/compare_losses: the same data and seed with two losses, one after the other, streamed side by side."""
        first = TrainSettings(**{name: values[name] for name in SETTINGS})
        second = dataclasses.replace(first, loss=values["loss_b"], margin=values["margin_b"], scale=values["scale_b"])
        config_a, config_b = training_config(first), training_config(second)
        yield from self._run(lambda should_stop: compare_stream(config_a, config_b, should_stop), session, request)

    def _run(self, make_stream: Callable[[Callable[[], bool]], Iterator[TrainUpdate]], session: SessionModels,
             request: gr.Request | None) -> Iterator[tuple]:
        who = session_id(request)
        flag = self.desk.begin(who)
        if flag is None:
            self.desk.end(who)
            yield (progress_html(0, "Cancelled before it started.", "done"), gr.skip(), gr.skip(), gr.skip(), session)
            return
        files: list[str] = []
        try:
            for update in make_stream(flag.is_set):
                if update.done is not None:
                    session = add_session_model(session, update.done.model)
                    files = files + update.done.files
                yield _train_outputs(update, files, session)
        finally:
            self.desk.end(who)

    def announce(self, request: gr.Request) -> str:
        if self.desk.announce(session_id(request)):
            return progress_html(
                0,
                "⏳ Another training is running on this server (one at a time keeps it responsive). Yours is queued "
                "and starts as soon as it finishes; Stop cancels it.",
            )
        return progress_html(0, "Starting…")

    def stop(self, request: gr.Request) -> str:
        return self.desk.stop(session_id(request))


def aligned_faces(folder: str) -> Any:
    """Your photos aligned (``faces.folders.AlignedFolder``); a folder where no photo holds a face is an InputError."""
    from arcdemo.faces.folders import align_image_folder

    aligned = align_image_folder(folder)
    if len(aligned.without_face) == aligned.photos:
        raise InputError("No face was found in any of your photos: untick \"These are faces\" to train on them as "
                         "they are.")
    return aligned


def data_defaults(dataset: str, images_zip: str | None = None, faces: bool = False, loss: str = "arcface") -> dict:
    """What follows the size of the data (``small_data``): for ORL and your zip, batch, epochs, warm-up, scale and
    dimension; {} for MNIST and CIFAR-10, whose page defaults were chosen on them (or a zip not readable yet)."""
    from arcdemo.small_data import folder_defaults, small_data_defaults

    info = catalog.DATASETS.get(dataset)
    if info is not None and info.train_images:
        return small_data_defaults(info.train_images, len(info.classes or ()), loss, info.frozen_features)
    if info is not None and info.kind == catalog.FOLDER and images_zip:
        try:
            return folder_defaults(str(unpack_image_zip(images_zip, UPLOADS_DIR)), loss, frozen_features=faces)
        except InputError:
            return {}  # said when Train is pressed, with the sentence
    return {}


FOLLOW_THE_DATA = ("batch_size", "epochs", "dim", "warmup_steps", "optimizer", "lr")  # set by data_settings


def data_settings(dataset: str, images_zip: str | None = None, faces: bool = False, loss: str = "arcface") -> tuple:
    """The FOLLOW_THE_DATA settings for the chosen data: the page's defaults, or what follows a small set's size."""
    chosen = data_defaults(dataset, images_zip, faces, loss)
    return (chosen.get("batch_size", DEFAULTS.batch_size), chosen.get("epochs", DEFAULTS.epochs),
            chosen.get("dim", DEFAULTS.dim), chosen.get("margin_warmup_steps", DEFAULTS.warmup_steps),
            chosen.get("optimizer", DEFAULTS.optimizer), chosen.get("lr", DEFAULTS.lr))


def loss_controls(loss: str, dataset: str = "mnist", images_zip: str | None = None, faces: bool = False) -> tuple:
    """Margin and scale sliders follow the loss (and the data): defaults, allowed range, locked where fixed."""
    spec = catalog.LOSSES.get(loss)
    if spec is None:
        return gr.skip(), gr.skip()
    info = catalog.DATASETS.get(dataset)
    margin_value, scale_value = (info.loss_settings if info else {}).get(loss, (spec.margin, spec.scale))
    scale_value = data_defaults(dataset, images_zip, faces, loss).get("scale", scale_value)
    low, high = spec.margin_range
    margin = gr.update(
        value=margin_value, minimum=low, maximum=high if high > low else low + 1, interactive=high > low,
        info=spec.margin_meaning if high > low else f"no margin: {spec.margin_meaning}",
    )
    low_s, high_s = spec.scale_range
    scale = gr.update(
        value=scale_value, minimum=low_s, maximum=high_s if high_s > low_s else low_s + 1,
        interactive=high_s > low_s and spec.uses_scale,
        info="logits are s·cos θ" if spec.uses_scale else "unused: a plain linear layer",
    )
    return margin, scale


DATASET_INFO = (
    "MNIST: 60,000 digits, the quickest to watch settle. CIFAR-10 (~20 s an epoch on a CPU at width 16): ArcFace "
    "needs s ≈ 16 and a margin warm-up there (the sliders switch to m = 0.2, s = 16), and at 3-D cosine heads trained "
    "from scratch stall (Softmax draws a 3-D CIFAR-10 sphere; docs/loss_study.md). ORL: 40 people on a small neck over "
    "the frozen face model, under half a minute. Your images: a zip of class folders; the settings follow its size"
)


def show_upload(dataset: str) -> tuple:
    """The zip upload and its "these are faces" box show for a dataset of your own folders."""
    shown = getattr(catalog.DATASETS.get(dataset), "kind", None) == catalog.FOLDER
    return gr.update(visible=shown), gr.update(visible=shown)


def dataset_choices() -> list[tuple[str, str]]:
    """The datasets the Train tab offers (the catalog's, "your images" capitalised as a choice)."""
    return [(catalog.title(name)[:1].upper() + catalog.title(name)[1:], name) for name in catalog.listed_in(ID)]


def loss_choices() -> list[tuple[str, str]]:
    return [(info.title, name) for name, info in catalog.LOSSES.items()]


def _settings_panel() -> dict[str, Any]:
    """The settings' components, keyed by TrainSettings field."""
    start = DEFAULTS
    c: dict[str, Any] = {}
    c["dataset"] = gr.Radio(dataset_choices(), value=start.dataset, label="Dataset", info=DATASET_INFO)
    c["images_zip"] = gr.File(
        label="Your images: a .zip with one folder of images per class (or train/ and test/ folders of them); 20% "
        "of each class is held out to test on",
        file_types=[".zip"], type="filepath", visible=False, elem_id="train-zip",
    )
    c["faces"] = gr.Checkbox(
        False, label="These are faces: align them", visible=False, elem_id="train-faces",
        info="each photo is searched for a face and warped onto the 112 px template (photos without one are listed "
        "and left out); a small neck on the frozen face model then learns your people",
    )
    shown = page_values(start)
    c["loss"] = gr.Dropdown(loss_choices(), value=start.loss, label="Loss")
    c["margin"] = gr.Slider(  # 0..6 covers every loss; loss_controls narrows it to the chosen one's
        0.0, 6.0, value=shown["margin"], step=0.01, label="Margin m", info=catalog.LOSSES[start.loss].margin_meaning,
    )
    c["scale"] = gr.Slider(1.0, 128.0, value=shown["scale"], step=1.0, label="Scale s", info="logits are s·cos θ")
    with gr.Row():
        c["dim"] = gr.Number(start.dim, label="Embedding dimension", precision=0)
        c["epochs"] = gr.Number(start.epochs, label="Epochs", precision=0)
    with gr.Row():
        c["lr"] = gr.Number(start.lr, label="Peak learning rate (0 = 0.1 SGD / 0.003 Adam)")
        c["warmup_steps"] = gr.Number(
            start.warmup_steps, label="Margin warm-up steps (-1 = 1 epoch if dim ≤ 3)", precision=0,
        )
    with gr.Accordion("More settings", open=False):
        c["optimizer"] = gr.Radio(["sgd", "adam"], value=start.optimizer, label="Optimizer")
        c["batch_size"] = gr.Number(start.batch_size, label="Batch size", precision=0)
        c["seed"] = gr.Number(start.seed, label="Seed", precision=0)
        c["train_subset"] = gr.Number(start.train_subset, label="Training images (0 = all)", precision=0)
    return c


def build(ctx: Context) -> None:
    runs = Runs(ctx.desk)
    with ctx.tab(TITLE, ID), gr.Row():
        with gr.Column(scale=1, min_width=320):
            c = _settings_panel()
            with gr.Row():
                train_button = gr.Button("Train", variant="primary")
                stop_button = gr.Button("Stop", variant="stop")
            stop_note = gr.Markdown()
            with gr.Accordion("Side by side: train a second loss on the same data and seed", open=False):
                c["loss_b"] = gr.Dropdown(loss_choices(), value="softmax", label="Second loss")
                c["margin_b"] = gr.Slider(0.0, 6.0, value=0.0, step=0.01, label="Margin m", interactive=False)
                c["scale_b"] = gr.Slider(1.0, 128.0, value=1.0, step=1.0, label="Scale s", interactive=False)
                compare_button = gr.Button("Train both and compare", variant="secondary")
        with gr.Column(scale=2):
            status = gr.HTML(progress_html(0, "Pick the settings and press Train."), elem_id="train-status")
            sphere = gr.Plot(show_label=False, elem_id="train-sphere")
            curves = gr.Plot(show_label=False, elem_id="train-curves")
            files = gr.File(label="Download the trained checkpoint (.safetensors weights + .json card)",
                            file_count="multiple", interactive=False, height=110)

    data = [c["dataset"], c["images_zip"], c["faces"]]
    for loss, margin, scale in (("loss", "margin", "scale"), SECOND_LOSS):
        for trigger in (c[loss], *data):
            trigger.change(loss_controls, [c[loss], *data], [c[margin], c[scale]], api_visibility="private")
    for trigger in data:
        trigger.change(data_settings, [*data, c["loss"]], [c[name] for name in FOLLOW_THE_DATA],
                       api_visibility="private")
    c["dataset"].change(show_upload, c["dataset"], [c["images_zip"], c["faces"]], api_visibility="private",
                        queue=False)
    outputs = [status, sphere, curves, files, ctx.session]
    options = dict(concurrency_limit=1, concurrency_id="training", show_progress="minimal")
    announce = dict(fn=runs.announce, inputs=None, outputs=status, api_visibility="private", concurrency_limit=None)
    trained = train_button.click(**announce).then(
        runs.train, [*(c[name] for name in TRAIN_PARAMS), ctx.session], outputs, api_name="train", **options
    )
    compared = compare_button.click(**announce).then(
        runs.compare, [*(c[name] for name in COMPARE_PARAMS), ctx.session], outputs, api_name="compare_losses",
        **options,
    )
    stop_button.click(runs.stop, None, stop_note, api_name="stop_training", concurrency_limit=None)

    def wire_after_build() -> None:
        for event in (trained, compared):
            event.then(**ctx.refresh())
        ctx.demo.load(loss_controls, c["loss"], [c["margin"], c["scale"]], api_visibility="private", queue=False)

    ctx.later(wire_after_build)
