"""The models the app can show: shipped checkpoints on disk and models trained in this browser session.

Listing reads only the JSON cards (no torch), so building the page stays fast. A shipped checkpoint's test points
(``arcdemo.points``: the drawn test subset, its angles and the head's decision rule) are read from beside it, so
Explore needs neither torch nor the dataset; the model itself, a test-set evaluation (when no points are shipped,
and for session models) and the base figure a new point is drawn into (Draw/Classify) are computed on first use and
cached per model: shipped checkpoints in an LRU cache keyed by path and mtime, session models on their own
``LoadedModel`` object, which lives in the session's ``gr.State``.

Nothing here imports gradio; torch is imported inside functions.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from arcdemo.points import DrawnPoints, load_points, points_path

if TYPE_CHECKING:
    from arcdemo.evaluate import Evaluation
    from arcdemo.margins import DecisionRule
    from arcdemo.model import EmbeddingModel

REPO = Path(__file__).resolve().parents[2]
APP_DATASETS = ("mnist", "cifar10")  # datasets whose test split the app can evaluate and draw
IMAGE_FOLDER = "imagefolder"  # data.IMAGE_FOLDER (a user's class folders), named here without importing torch
DATASET_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "imagefolder": "your images", "faces": "faces"}
LOSS_TITLES = {
    "softmax": "Softmax", "normface": "NormFace", "sphereface": "SphereFace", "cosface": "CosFace",
    "arcface": "ArcFace", "combined": "Combined margin", "subcenter": "Sub-center ArcFace", "triplet": "Triplet",
    "supcon": "SupCon",
}
SESSION_PREFIX = "session:"


class ModelNotFound(LookupError):
    """A model key that is neither a checkpoint on disk nor a model of this session."""


class TestSetMissing(LookupError):
    """No test points are shipped for the model and its test split is not here to compute them."""


def checkpoints_dir() -> Path:
    """Where shipped checkpoints live: ``$ARCDEMO_CHECKPOINTS`` or ``<repo>/checkpoints``."""
    return Path(os.environ.get("ARCDEMO_CHECKPOINTS", REPO / "checkpoints")).expanduser()


# ------------------------------------------------------------------------------------------------------ listing


@dataclass(frozen=True)
class ModelEntry:
    """One selectable model: ``key`` is what dropdowns and the API pass around, ``label`` what people read."""

    key: str
    label: str
    dataset: str
    embedding_dim: int


def describe(name: str, card: Mapping) -> str:
    """'mnist-arcface-3d — MNIST · ArcFace m=0.50 s=30 · 3-D · 99.3% test' from a card."""
    spec = card.get("model", {})
    loss = spec.get("loss", "?")
    parts = [DATASET_TITLES.get(spec.get("dataset"), str(spec.get("dataset"))), LOSS_TITLES.get(loss, loss)]
    if loss not in ("softmax",):
        parts[-1] += f" m={float(spec.get('margin', 0)):.2f} s={float(spec.get('scale', 0)):g}"
    parts.append(f"{spec.get('embedding_dim', '?')}-D")
    accuracy = card.get("metrics", {}).get("accuracy")
    if isinstance(accuracy, (int, float)):
        parts.append(f"{100 * accuracy:.1f}% test")
    return f"{name} — " + " · ".join(parts)


def _read_card_json(path: Path) -> dict | None:
    """The card if it is an arcdemo card with a model spec and its weights exist next to it, else None."""
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or card.get("format") != "arcdemo-checkpoint":
        return None
    if not isinstance(card.get("model"), dict):
        return None
    if not path.with_suffix(".safetensors").is_file():
        return None
    return card


def list_checkpoints(folder: Path | None = None) -> list[ModelEntry]:
    """Every usable checkpoint card in the folder (JSON only: no torch), 3-D models first within a dataset."""
    folder = checkpoints_dir() if folder is None else folder
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        card = _read_card_json(path)
        if card is None:
            continue
        spec = card["model"]
        if spec.get("dataset") not in APP_DATASETS:
            continue  # faces models belong to the faces tab
        dim = int(spec.get("embedding_dim", 0))
        entries.append(ModelEntry(path.stem, describe(path.stem, card), spec["dataset"], dim))
    # per dataset, 3-D models first (they are drawn as they are, no projection), then by name
    return sorted(entries, key=lambda e: (APP_DATASETS.index(e.dataset), e.embedding_dim != 3, e.key))


def available_models(
    session: Mapping[str, LoadedModel] | None = None, dataset: str | tuple[str, ...] | None = None
) -> list[ModelEntry]:
    """Shipped checkpoints, then this session's models (newest first), optionally of one dataset (or several)."""
    entries = list_checkpoints()
    if session:
        entries += [model.entry for model in reversed(list(session.values()))]
    wanted = (dataset,) if isinstance(dataset, str) else dataset
    return [entry for entry in entries if wanted is None or entry.dataset in wanted]


# ------------------------------------------------------------------------------------------- thread discipline


class _ThreadPolicy:
    """Single-image inference runs torch on one thread; training and evaluation on ``training_threads``.

    Measured here: with 2 OpenMP threads on a busy 2-core CPU, one MNIST prediction took ~220 ms (the threads wait
    for each other at every op); on one thread it takes ~2 ms. Torch's thread count is per OS thread (OpenMP's
    setting), and a thread started later begins with whatever count was last set anywhere: so every path sets its
    own on entry (the trainer thread when it starts, a request thread before it predicts or evaluates) and no
    thread's setting reaches another. Training and evaluation use ``$ARCDEMO_TORCH_THREADS`` threads, by default
    one per core this process may use. Measured on this 2-core CPU, the Train tab's defaults (a full MNIST epoch)
    from pressing Train to the result: 52 s on 2 threads and 76 s on 1 when the machine was otherwise idle; with
    other jobs running (load ≈ 5) 1 thread was several times faster (a 3,000-image epoch: 13 s on 1 thread, 53 s
    on 2). Set 1 on a CPU shared with others.
    """

    @staticmethod
    def training_threads() -> int:
        configured = os.environ.get("ARCDEMO_TORCH_THREADS", "")
        if configured.isdigit() and int(configured) > 0:
            return int(configured)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def settle(self) -> None:
        """This thread trains or evaluates next: give it the training thread count."""
        import torch

        torch.set_num_threads(self.training_threads())

    @staticmethod
    def yield_to_requests() -> None:
        """This thread trains: lower its scheduling priority (``$ARCDEMO_TRAINER_NICE``, default 10; "off" keeps
        it) so that a visitor's prediction gets a core the moment it needs one, while the training keeps every
        cycle nobody else wants. Linux keeps a nice value per thread and a new thread inherits its creator's, so
        the OpenMP workers this thread starts with its first parallel op inherit it too: call it before any torch
        op on this thread. (Measured in benchmarks/load.py: dropping the trainer to one thread whenever a
        prediction ran cost it a core for as long as 8 visitors kept one in flight, which was most of the time.)"""
        configured = os.environ.get("ARCDEMO_TRAINER_NICE", "10")
        if not configured.isdigit() or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(configured))
        except OSError:  # a platform that will not: the trainer keeps the default priority
            pass

    @contextmanager
    def single(self) -> Iterator[None]:
        """This thread predicts one image: one torch thread (the next path on this thread sets its own again)."""
        import torch

        torch.set_num_threads(1)
        yield


THREADS = _ThreadPolicy()


def device() -> str:
    """CUDA when available, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------------------- loaded models


@dataclass(frozen=True)
class Shown:
    """A model as Explore shows it: its card and its test points. For a shipped checkpoint both come from disk
    (card JSON + ``<stem>.points.safetensors``) without torch, so the first figure does not wait for it."""

    key: str
    card: dict
    points: DrawnPoints
    metrics: dict  # the card's (checked against a fresh evaluation in CI) or this evaluation's

    @property
    def class_names(self) -> list[str]:
        return list(self.card["model"]["class_names"])

    @property
    def embedding_dim(self) -> int:
        return int(self.card["model"]["embedding_dim"])


class LoadedModel:
    """A model plus everything the UI derives from it, each computed once on first use (thread-safe)."""

    def __init__(self, key: str, label: str, model: EmbeddingModel, card: dict, evaluation: Evaluation | None = None,
                 stem: Path | None = None, folder: Path | None = None):
        self.key, self.label, self.model, self.card, self.stem = key, label, model, card, stem
        self.folder = folder  # a session run's own folder of downloadable files (deleted with the session)
        self._evaluation = evaluation
        self._points: DrawnPoints | None = None
        self._draw_base: object | None = None
        self._evaluation_lock, self._points_lock = threading.Lock(), threading.RLock()

    def delete_files(self) -> None:
        """Delete a session run's folder (shipped checkpoints have none)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __getstate__(self) -> dict:
        """Copyable and picklable (a session's state may be copied or sent to another process): locks are made anew."""
        state = dict(self.__dict__)
        del state["_evaluation_lock"], state["_points_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._evaluation_lock, self._points_lock = threading.Lock(), threading.RLock()

    @property
    def spec(self):  # noqa: ANN201 - ModelSpec, imported lazily
        return self.model.spec

    @property
    def class_names(self) -> list[str]:
        return list(self.model.spec.class_names)

    @property
    def entry(self) -> ModelEntry:
        return ModelEntry(self.key, self.label, self.spec.dataset, self.spec.embedding_dim)

    def unit_centres(self) -> np.ndarray:
        """(C, D) unit class centres (sub-center: the mean of each class's sub-centres), for angles to them."""
        import torch

        return torch.nn.functional.normalize(self.model.head.centres().detach().float().cpu(), dim=1).numpy()

    def decision_rule(self, norm_factor: float = 1.0) -> DecisionRule:
        """What the head predicts on the sphere; softmax's at ``norm_factor`` × the test median embedding norm
        (× 1 when the test points are unavailable)."""
        from arcdemo.data import DatasetMissingError

        try:
            return self.drawn_points().decision_rule(norm_factor)
        except DatasetMissingError:
            return self.model.head.decision_rule(norm=norm_factor)

    def evaluation(self) -> Evaluation:
        """The full test-split evaluation (metrics, embeddings, angles); raises DatasetMissingError offline."""
        with self._evaluation_lock:
            if self._evaluation is None:
                THREADS.settle()
                from arcdemo.evaluate import card_tta, evaluate_model
                from arcdemo.train import card_data

                self._evaluation = evaluate_model(
                    self.model, card_data(self.card), **card_tta(self.card.get("config", {}))
                )
            return self._evaluation

    def drawn_points(self) -> DrawnPoints:
        """The drawn test subset and angles: shipped beside the checkpoint, else from the evaluation (raises
        DatasetMissingError when neither is available)."""
        with self._points_lock:
            if self._points is None:
                shipped = load_points(self.stem) if self.stem is not None else None
                if shipped is None:
                    from arcdemo.evaluate import drawn_points
                    from arcdemo.train import card_data

                    evaluation = self.evaluation()
                    shipped = drawn_points(self.model, card_data(self.card), evaluation)
                self._points = shipped
            return self._points

    def shown(self) -> Shown:
        points = self.drawn_points()
        metrics = self._evaluation.metrics if self._evaluation is not None else self.card["metrics"]
        return Shown(self.key, self.card, points, metrics)

    def draw_base(self, build):  # noqa: ANN001, ANN201 - build: LoadedModel -> SphereBase (ui.plots)
        """The cached figure a new point is spliced into; ``build`` makes it on first use."""
        with self._points_lock:
            if self._draw_base is None:
                self._draw_base = build(self)
            return self._draw_base

    def predict(self, images):  # noqa: ANN001, ANN201 - uint8 tensor (N, C, H, W) -> (probabilities, embeddings)
        """Probabilities (N, C) and unit embeddings (N, D) as numpy, on one torch thread (see _ThreadPolicy)."""
        with THREADS.single():
            probabilities, embeddings = self.model.predict(images)
        return probabilities.float().cpu().numpy(), embeddings.float().cpu().numpy()


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _load_shipped(stem_path: str, key: str, mtime_ns: int) -> LoadedModel:
    from arcdemo.checkpoints import load_checkpoint

    model, card = load_checkpoint(stem_path, device=device())
    return LoadedModel(key, describe(key, card), model, card, stem=Path(stem_path))


@lru_cache(maxsize=16)
def _shipped_points(stem_path: str, mtimes_ns: tuple[int, int]) -> DrawnPoints | None:
    return load_points(stem_path)


def _shipped_card(key: str) -> Path:
    """The card path of a shipped checkpoint named ``key``; ModelNotFound for anything else."""
    if key.startswith(SESSION_PREFIX):
        raise ModelNotFound(f"Model {key!r} was trained in another browser session (or the page was reloaded).")
    if "/" in key or "\\" in key or key.startswith("."):
        raise ModelNotFound(f"No checkpoint named {key!r}.")
    card_path = checkpoints_dir() / f"{key}.json"
    if _read_card_json(card_path) is None:
        names = ", ".join(entry.key for entry in list_checkpoints()) or "none"
        raise ModelNotFound(f"No checkpoint named {key!r} (available: {names}).")
    return card_path


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ModelNotFound("No model is selected.")


def load_model(key: str, session: Mapping[str, LoadedModel] | None = None) -> LoadedModel:
    """The model behind a dropdown/API key: a session model, or a checkpoint in ``checkpoints_dir()``."""
    _check_key(key)
    if session and key in session:
        return session[key]
    card_path = _shipped_card(key)
    weights = card_path.with_suffix(".safetensors")
    with _LOAD_LOCK:  # two tabs asking at once must share one model (and its cached evaluation)
        return _load_shipped(str(card_path.with_suffix("")), key, weights.stat().st_mtime_ns)


def shown_model(key: str, session: Mapping[str, LoadedModel] | None = None) -> Shown:
    """What Explore draws for ``key``: from the shipped card and points when they match the weights (no torch,
    no dataset), else from the loaded model (its evaluation needs the test split)."""
    _check_key(key)
    if not (session and key in session):
        card_path = _shipped_card(key)
        stem = card_path.with_suffix("")
        files = (card_path.with_suffix(".safetensors"), points_path(stem))
        points = _shipped_points(str(stem), tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files))
        if points is not None:
            card = _read_card_json(card_path)
            return Shown(key, card, points, card["metrics"])
    from arcdemo.data import DatasetMissingError

    model = load_model(key, session)
    try:
        return model.shown()
    except DatasetMissingError as error:
        dataset = DATASET_TITLES.get(model.spec.dataset, model.spec.dataset)
        raise TestSetMissing(f"The {dataset} test set is not available here: {error}") from None
