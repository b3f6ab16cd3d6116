"""Draw and Classify's shared service: one drawing or image through a model, as probabilities, angles to every
class centre and a point on the sphere among the test points. No gradio here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arcdemo import catalog
from arcdemo.inputs import InputError, model_input
from arcdemo.ui.plots import FigureJSON, SphereBase, sphere_base
from arcdemo.ui.store import LoadedModel, SessionModels, load_model

PREVIEW_SCALE = 5  # model input shown at 5× (28 → 140 px), nearest-neighbour so pixels stay visible


@dataclass(frozen=True)
class Prediction:
    """What the Draw and Classify tabs show for one input."""

    label: str  # the predicted class
    probabilities: dict[str, float]  # every class → probability
    angles: list[list[Any]]  # rows [class, angle to its centre in degrees, probability %], nearest centre first
    figure: FigureJSON  # the sphere with the input highlighted among test points
    preview: np.ndarray  # what the model saw, uint8 (H, W) or (H, W, 3), enlarged
    summary: str  # one markdown line


def draw_base(model: LoadedModel) -> SphereBase:
    """The figure a new point is drawn into: the model's drawn test points (or none, with a note, offline)."""
    from arcdemo.data import DatasetMissingError

    try:
        points = model.drawn_points()
        embeddings, labels = points.embeddings, points.labels
        title = f"{model.key}: your input among {len(labels):,} test images"
    except DatasetMissingError as error:
        embeddings, labels = np.zeros((0, model.spec.embedding_dim), np.float32), np.zeros(0, np.int64)
        title = f"{model.key}: test points not shown: {error}"
    return sphere_base(embeddings, labels, model.decision_rule(), model.class_names, title=title)


def face_input(source: Any, size: int) -> Any:
    """The uint8 (1, 3, size, size) batch of a model of aligned faces: the photo's largest face found and warped
    onto the template by the face pipeline, as its training photos were; no face is an InputError."""
    import torch

    from arcdemo.faces.align import NoFaceError, align_face

    try:
        crop = align_face(source, size=size).crop
    except NoFaceError as error:
        raise InputError(f"This model places faces: {error}.") from None
    return torch.from_numpy(np.array(crop, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0)


def predict(source: Any, key: str, session: SessionModels | None = None) -> Prediction:
    """Classify one drawing or image with a model: probabilities, angles to every centre, the point on the sphere."""
    model = load_model(key, session)
    spec = model.spec
    if spec.backbone in catalog.ALIGNED_FACE_BACKBONES:
        images = face_input(source, spec.image_size)
    else:
        images = model_input(source, spec.dataset, spec.in_channels, spec.image_size)
    probabilities, embeddings = model.predict(images)
    p, embedding = probabilities[0], embeddings[0]
    names = model.class_names
    base = model.draw_base(draw_base)
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
