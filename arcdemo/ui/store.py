"""The session's model store: shipped checkpoints on disk and the models trained in this browser session.

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
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from arcdemo import catalog
from arcdemo.catalog import checkpoints_dir
from arcdemo.points import DrawnPoints, load_points, points_path
from arcdemo.ui.threads import THREADS

if TYPE_CHECKING:
    from arcdemo.evaluate import Evaluation
    from arcdemo.margins import DecisionRule
    from arcdemo.model import EmbeddingModel

SESSION_PREFIX = "session:"


class ModelNotFound(LookupError):
    """A model key that is neither a checkpoint on disk nor a model of this session."""


class TestSetMissing(LookupError):
    """No test points are shipped for the model and its test split is not here to compute them."""


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
    parts = [catalog.title(spec.get("dataset")), catalog.loss_title(loss)]
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
    shown = catalog.listed_in("explore")  # datasets whose test split the app can evaluate and draw
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        card = _read_card_json(path)
        if card is None:
            continue
        spec = card["model"]
        if spec.get("dataset") not in shown:
            continue  # faces models belong to the faces tab
        dim = int(spec.get("embedding_dim", 0))
        entries.append(ModelEntry(path.stem, describe(path.stem, card), spec["dataset"], dim))
    # per dataset, 3-D models first (they are drawn as they are, no projection), then by name
    return sorted(entries, key=lambda e: (shown.index(e.dataset), e.embedding_dim != 3, e.key))


def available_models(
    session: Mapping[str, LoadedModel] | None = None, dataset: str | tuple[str, ...] | None = None
) -> list[ModelEntry]:
    """Shipped checkpoints, then this session's models (newest first), optionally of one dataset (or several)."""
    entries = list_checkpoints()
    if session:
        entries += [model.entry for model in reversed(list(session.values()))]
    wanted = (dataset,) if isinstance(dataset, str) else dataset
    return [entry for entry in entries if wanted is None or entry.dataset in wanted]


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
        """Probabilities (N, C) and unit embeddings (N, D) as numpy, on one torch thread (see threads.ThreadPolicy)."""
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
        dataset = catalog.title(model.spec.dataset)
        raise TestSetMissing(f"The {dataset} test set is not available here: {error}") from None


# ------------------------------------------------------------------------------------------------ session models

SessionModels = Mapping[str, LoadedModel]
MAX_SESSION_MODELS = 6  # per browser session; the oldest is dropped (and its files deleted)
# how long a session's models and files live after its last change (a shared public server's limit)
SESSION_TTL_S = float(os.environ.get("ARCDEMO_SESSION_TTL_S", str(6 * 3600)))


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
