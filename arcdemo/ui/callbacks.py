"""The app's behaviour as typed functions of plain values: no gradio here, so each is tested without a server.

Errors a person can fix raise ``AppInputError`` (``InputError`` from ``arcdemo.inputs``, ``ModelNotFound``,
``TrainingFailed``); the UI layer shows their message as a sentence, never a traceback.
"""

from __future__ import annotations

import dataclasses
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

import numpy as np

from arcdemo.inputs import InputError, model_input, unpack_image_zip
from arcdemo.ui.gpu import StopFile, on_gpu
from arcdemo.ui.models import (
    DATASET_TITLES,
    IMAGE_FOLDER,
    LOSS_TITLES,
    SESSION_PREFIX,
    THREADS,
    LoadedModel,
    ModelNotFound,
    TestSetMissing,
    load_model,
    shown_model,
)
from arcdemo.ui.plots import FigureJSON, SphereBase, frame, sphere_base

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from arcdemo.train import TrainConfig

SessionModels = Mapping[str, LoadedModel]
MAX_SESSION_MODELS = 6  # per browser session; the oldest is dropped (and its files deleted)
# Limits for a shared public server, from the environment: a training's wall time (it stops there and keeps the
# model), and how long a session's models and files live after its last change.
MAX_TRAIN_S = float(os.environ.get("ARCDEMO_MAX_TRAIN_S", "900"))
SESSION_TTL_S = float(os.environ.get("ARCDEMO_SESSION_TTL_S", str(6 * 3600)))
UPLOADS_DIR = Path(os.environ.get("ARCDEMO_UPLOADS_DIR", Path(tempfile.gettempdir()) / "arcdemo-uploads"))
LIVE_POINTS = 1000  # test points in each live snapshot
LIVE_SAMPLE_EVERY = 10  # steps between live snapshots (~1 s on a 2-core CPU; the UI shows at most one per REFRESH_S)
REFRESH_S = 0.5  # at most this often a training streams a new figure
EXPLORE_HEIGHT, LIVE_HEIGHT = 640, 560  # px of the sphere figures
PREVIEW_SCALE = 5  # model input shown at 5× (28 → 140 px), nearest-neighbour so pixels stay visible

# The Train tab's starting values (also what benchmarks/app_latency.py --train times): two epochs of 3-D ArcFace
# on MNIST, the margin ramped in over 150 steps, SGD at 0.1. Chosen on held-out training digits by
# `python benchmarks/train_defaults.py` (benchmarks/results/train_defaults.json): 1 epoch 98.38%, 2 epochs 99.22%,
# 3 epochs 99.32% but past 60 s on this 2-core CPU; a one-epoch warm-up or lr 0.2 did no better.
TRAIN_DEFAULTS = dict(
    dataset="mnist", loss="arcface", margin=0.5, scale=30.0, dim=3, epochs=2, lr=0.0, warmup_steps=150,
    optimizer="sgd", batch_size=128, seed=0, train_subset=0,
)

# bounds a public server accepts (the trainer itself allows more); checked before anything is queued
TRAIN_LIMITS = {
    "epochs": (1, 20),
    "dim": (2, 512),
    "train_subset": (0, 60_000),
    "batch_size": (16, 1024),
    "warmup_steps": (-1, 100_000),
    "seed": (0, 2**31 - 1),
}


class TrainingFailed(RuntimeError):
    """A training run that could not finish (diverged, data missing); the message says what to change."""


AppInputError = (InputError, ModelNotFound, TrainingFailed)


# --------------------------------------------------------------------------------------------------- predict


@dataclass(frozen=True)
class Prediction:
    """What the Draw and Classify tabs show for one input."""

    label: str  # the predicted class
    probabilities: dict[str, float]  # every class → probability
    angles: list[list[Any]]  # rows [class, angle to its centre in degrees, probability %], nearest centre first
    figure: FigureJSON  # the sphere with the input highlighted among test points
    preview: np.ndarray  # what the model saw, uint8 (H, W) or (H, W, 3), enlarged
    summary: str  # one markdown line


def _draw_base(model: LoadedModel) -> SphereBase:
    from arcdemo.data import DatasetMissingError

    try:
        points = model.drawn_points()
        embeddings, labels = points.embeddings, points.labels
        title = f"{model.key}: your input among {len(labels):,} test images"
    except DatasetMissingError as error:
        embeddings, labels = np.zeros((0, model.spec.embedding_dim), np.float32), np.zeros(0, np.int64)
        title = f"{model.key}: test points not shown: {error}"
    return sphere_base(embeddings, labels, model.decision_rule(), model.class_names, title=title)


def predict(source: Any, key: str, session: SessionModels | None = None) -> Prediction:
    """Classify one drawing or image with a model: probabilities, angles to every centre, the point on the sphere."""
    model = load_model(key, session)
    spec = model.spec
    images = model_input(source, spec.dataset, spec.in_channels, spec.image_size)
    probabilities, embeddings = model.predict(images)
    p, embedding = probabilities[0], embeddings[0]
    names = model.class_names
    base = model.draw_base(_draw_base)
    centres = model.unit_centres()
    angles = np.degrees(np.arccos(np.clip(centres @ (embedding / max(np.linalg.norm(embedding), 1e-12)), -1, 1)))
    best = int(np.argmax(p))
    order = np.argsort(angles)
    rows = [[names[i], round(float(angles[i]), 1), round(100 * float(p[i]), 2)] for i in order]
    preview = images[0].numpy()
    preview = preview[0] if preview.shape[0] == 1 else np.transpose(preview, (1, 2, 0))
    preview = np.kron(preview, np.ones((PREVIEW_SCALE, PREVIEW_SCALE) + (1,) * (preview.ndim - 2), np.uint8))
    summary = f"**{names[best]}** with probability {100 * p[best]:.1f}% — {angles[best]:.1f}° from its class centre"
    others = [i for i in order if i != best]
    if others:
        summary += f" (nearest other centre: {names[others[0]]} at {angles[others[0]]:.1f}°)"
    return Prediction(
        names[best], {name: float(value) for name, value in zip(names, p)}, rows,
        base.with_point(embedding, f"{names[best]} ({100 * p[best]:.0f}%)"), preview, summary,
    )


# --------------------------------------------------------------------------------------------------- explore


@dataclass(frozen=True)
class ExploreView:
    sphere: go.Figure
    summary: str  # markdown
    confusion: go.Figure
    angles: go.Figure
    card: dict


def explore(
    key: str, paint_surface: bool = False, session: SessionModels | None = None, norm_factor: float = 1.0
) -> ExploreView:
    """A model's test embeddings on the sphere with boundaries and margin bands, plus its statistics.

    ``norm_factor`` scales the embedding norm softmax's regions are drawn at (1 = the test median): its logits
    W·x + b grow with ‖x‖, so its cells on the sphere change with it; every normalised head ignores it.
    """
    if not isinstance(norm_factor, (int, float)) or not 0.05 <= norm_factor <= 20:
        raise InputError("The embedding-norm factor must be a number between 0.05 and 20.")
    from arcdemo import viz

    try:
        shown = shown_model(key, session)
    except TestSetMissing as error:
        raise InputError(str(error)) from None
    points, names, metrics = shown.points, shown.class_names, shown.metrics
    title = f"{shown.key}: {len(points.labels):,} of {points.samples:,} test embeddings"
    if shown.embedding_dim > 3:
        title += f" ({shown.embedding_dim}-D)"
    sphere = viz.sphere_figure(
        points.embeddings, points.labels, points.decision_rule(float(norm_factor)), names, title=title,
        paint_surface=bool(paint_surface),
    )
    frame(sphere, EXPLORE_HEIGHT)
    confusion = viz.confusion_figure(np.asarray(metrics["confusion_matrix"]), names)
    confusion.update_layout(height=420)
    angles = viz.angle_histogram_figure(points.intra_deg, points.inter_deg)
    angles.update_layout(
        title="Angles: to its own centre vs to the nearest other centre", height=380,
        margin=dict(t=50, b=10), legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
    )
    summary = explore_summary(shown.key, shown.card, metrics)
    return ExploreView(sphere, summary, confusion, angles, _card_for_display(shown.card))


def _card_for_display(card: Mapping) -> dict:
    """The card without its bulky confusion matrix (shown as a figure already)."""
    shown = {k: v for k, v in card.items() if k != "metrics"}
    shown["metrics"] = {k: v for k, v in card.get("metrics", {}).items() if k != "confusion_matrix"}
    return json.loads(json.dumps(shown, default=float))


def _degrees(value: Any) -> str:
    return f"{value:.1f}°" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def explore_summary(key: str, card: Mapping, metrics: Mapping) -> str:
    """Accuracy, angle statistics and the loss in a few markdown lines, from a model's card and test metrics."""
    from arcdemo.margins import LOSSES

    spec = card["model"]
    loss = LOSSES.get(spec["loss"])
    margin_text = ""
    if loss is not None and loss.margin_range != (0.0, 0.0):
        margin = float(spec["margin"])
        unit = f" rad = {math.degrees(margin):.1f}°" if spec["loss"] in ("arcface", "subcenter", "combined") else ""
        margin_text = f" · margin m = {margin:.2f}{unit} ({loss.margin_meaning})"
    scale_text = f" · scale s = {float(spec['scale']):g}" if loss is None or loss.uses_scale else ""
    trained = ""
    if card.get("wall_time_s") is not None:
        hardware = card.get("hardware", {})
        where = hardware.get("gpu") or f"{hardware.get('cpu', 'CPU')} ×{hardware.get('cpu_count', '?')}"
        trained = (
            f"\n\nTrained {card.get('epochs', '?')} epoch(s), {card.get('steps', '?')} steps in "
            f"{card['wall_time_s']} s on {where}."
        )
    return (
        f"### {key}\n"
        f"**Test accuracy {100 * metrics['accuracy']:.2f}%** on {metrics.get('samples', 0):,} images"
        f" · macro F1 {metrics.get('f1', float('nan')):.3f}\n\n"
        f"{LOSS_TITLES.get(spec['loss'], spec['loss'])}{margin_text}{scale_text} · {spec['embedding_dim']}-D "
        "embedding\n\n"
        "| angle | degrees |\n|---|---:|\n"
        f"| mean angle to own class centre | {_degrees(metrics.get('mean_intra_angle_deg'))} |\n"
        f"| median / 90th / 99th percentile of it | {_degrees(metrics.get('intra_angle_p50_deg'))} / "
        f"{_degrees(metrics.get('intra_angle_p90_deg'))} / {_degrees(metrics.get('intra_angle_p99_deg'))} |\n"
        f"| mean angle to nearest other centre | {_degrees(metrics.get('mean_inter_angle_deg'))} |\n"
        f"| smallest angle between two centres | {_degrees(metrics.get('min_centre_angle_deg'))} |"
        f"{trained}"
    )


# ---------------------------------------------------------------------------------------------------- train


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


def training_config(
    dataset: str = "mnist", loss: str = "arcface", margin: float | None = None, scale: float | None = None,
    dim: int = 3, epochs: int = 1, lr: float | None = None, warmup_steps: int = -1, seed: int = 0,
    train_subset: int = 0, batch_size: int = 128, optimizer: str = "sgd", images_zip: str | None = None,
) -> TrainConfig:
    """A validated ``TrainConfig`` from UI/API values; anything unusable raises InputError with the allowed range.
    Dataset "imagefolder" trains on ``images_zip`` (a zip of class folders), unpacked under ``UPLOADS_DIR``."""
    from arcdemo.data import image_folder_layout
    from arcdemo.train import TrainConfig

    integers = {"dim": dim, "epochs": epochs, "warmup_steps": warmup_steps, "seed": seed, "train_subset": train_subset,
                "batch_size": batch_size}
    checked: dict[str, int] = {}
    for name, value in integers.items():
        number = int(_number(name.replace("_", " ").capitalize(), value, integer=True))
        low, high = TRAIN_LIMITS[name]
        if not low <= number <= high:
            what = name.replace("_", " ").capitalize()
            raise InputError(f"{what} must be between {low} and {high} here, got {number}.")
        checked[name] = number
    margin = None if margin is None else _number("Margin", margin)
    scale = None if scale is None else _number("Scale", scale)
    lr = None if lr is None or lr == 0 else _number("Learning rate", lr)
    if lr is not None and not 0 < lr <= 10:
        raise InputError(f"Learning rate must be above 0 and at most 10 (0 picks the default), got {lr:g}.")
    data_dir = ""
    if dataset == IMAGE_FOLDER:
        data_dir = str(unpack_image_zip(images_zip or "", UPLOADS_DIR))
        training_images = len(image_folder_layout(data_dir).files["train"])
        if training_images < checked["batch_size"]:
            raise InputError(
                f"Your images give {training_images} to train on, fewer than one batch of {checked['batch_size']}: "
                "lower the batch size (More settings) or add images."
            )
    config = TrainConfig(
        dataset=str(dataset), data_dir=data_dir, loss=str(loss), margin=margin, scale=scale, dim=checked["dim"],
        epochs=checked["epochs"],
        lr=lr, optimizer=str(optimizer), batch_size=checked["batch_size"], margin_warmup_steps=checked["warmup_steps"],
        seed=checked["seed"], train_subset=checked["train_subset"], sample_every=LIVE_SAMPLE_EVERY,
        sample_size=LIVE_POINTS,
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


def _progress_html(fraction: float, text: str, state: str = "running") -> str:
    percent = max(0.0, min(100.0, 100 * fraction))
    return (
        f'<div class="arc-progress arc-{state}"><div class="arc-bar"><div style="width:{percent:.1f}%"></div></div>'
        f"<span>{text}</span></div>"
    )


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
        f"{name} — trained here · {DATASET_TITLES.get(c.dataset)} · {LOSS_TITLES.get(c.loss, c.loss)} · "
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
    from arcdemo.train import DoneEvent, EpochEvent, SampleEvent, StepEvent

    prefix = f"{label}: " if label else ""
    series = ("step", "loss", "train_accuracy", "test_step", "test_accuracy", "test_views")
    history: dict[str, list[float]] = {key: [] for key in series}
    stop = StopFile()
    events: queue.Queue = queue.Queue()
    dataset = DATASET_TITLES.get(config.dataset)
    yield TrainUpdate(_progress_html(0, f"{prefix}loading {dataset} and building the model…"))
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
                elif isinstance(event, EpochEvent):
                    history["test_step"].append(last_step.step if last_step else 0)
                    history["test_accuracy"].append(event.test_accuracy)
                    history["test_views"].append(1)
                    changed = True
                elif isinstance(event, DoneEvent):
                    yield _finish(event, prefix, out_dir, config, timed_out)
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


def _limit_text() -> str:
    return f"this server allows {MAX_TRAIN_S:.0f} s per training (ARCDEMO_MAX_TRAIN_S)"


def _step_html(step: Any, config: TrainConfig, prefix: str, stopping: bool, timed_out: bool = False) -> str:
    text = (
        f"{prefix}step {step.step}/{step.total_steps} · epoch {step.epoch}/{config.epochs} · loss {step.loss:.3f} · "
        f"batch accuracy {100 * step.train_accuracy:.0f}% · margin {100 * step.margin_fraction:.0f}% on · "
        f"{step.images_per_s:,.0f} img/s · {step.elapsed_s:.0f} s"
    )
    if timed_out:
        text += f" · stopping: {_limit_text()}; then one evaluation on the test set…"
    elif stopping:
        text += " · stopping, then one evaluation on the test set…"
    elif step.step == step.total_steps:
        text += " · evaluating on the test set…"
    return _progress_html(step.step / step.total_steps, text)


def _finish(done: Any, prefix: str, out_dir: Path | None, config: TrainConfig, timed_out: bool = False) -> TrainUpdate:
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
    run = TrainedRun(model, files, done.stopped, done.history)
    return TrainUpdate(_progress_html(1.0, text, "done"), sphere, viz.curves_figure(done.history), run)


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

    label_a, label_b = (LOSS_TITLES.get(c.loss, c.loss) for c in (config_a, config_b))
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
    return _progress_html(1.0, text, "done")


def add_session_model(session: SessionModels | None, model: LoadedModel) -> dict[str, LoadedModel]:
    """A new session mapping with ``model`` added (the oldest dropped beyond MAX_SESSION_MODELS)."""
    models = dict(session or {})
    models[model.key] = model
    while len(models) > MAX_SESSION_MODELS:
        models.pop(next(iter(models))).delete_files()
    return models


def forget_session(session: SessionModels | None) -> None:
    """A session has ended (its tab closed an hour ago, or ``SESSION_TTL_S`` passed): delete its runs' files."""
    for model in (session or {}).values():
        model.delete_files()


class TrainingDesk:
    """One training at a time per server, and Stop for the session that asked.

    ``announce`` (the UI calls it before queueing) registers a pending run that Stop can cancel while it waits;
    ``begin``/``end`` bracket the run itself; ``stop`` sets the running run's flag, which the trainer polls every
    step. The concurrency limit of the events does the queueing; this only keeps track of who to stop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}
        self._running: dict[str, threading.Event] = {}

    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    def announce(self, session: str) -> bool:
        """Register a pending run; True when a training is running already (so this one waits in the queue)."""
        with self._lock:
            self._pending[session] = threading.Event()
            return bool(self._running)

    def begin(self, session: str) -> threading.Event | None:
        """The run's stop flag, or None when Stop was pressed while it waited in the queue."""
        with self._lock:
            pending = self._pending.pop(session, None)
            if pending is not None and pending.is_set():
                return None
            flag = self._running[session] = threading.Event()
            return flag

    def end(self, session: str) -> None:
        with self._lock:
            self._running.pop(session, None)

    def stop(self, session: str) -> str:
        """Ask this session's running and/or queued training to stop; the answer says what happened."""
        with self._lock:
            running, pending = self._running.get(session), self._pending.get(session)
            for flag in (running, pending):
                if flag is not None:
                    flag.set()
        if running is not None:
            return "Stopping: the current step finishes, then the model is evaluated once and kept."
        if pending is not None:
            return "Cancelled: the queued training will not start."
        return "No training is running in this session."
