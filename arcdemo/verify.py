"""The verdict on two face photos, and the face models that give it: ours (a face checkpoint + its LFW threshold)
or dlib's reference (+ the threshold ``benchmarks/lfw_reference.py`` measured on LFW).

Kept free of the evaluation stack (scikit-learn) so the CLI's ``verify`` and the app load only what a verdict needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arcdemo.checkpoints import CheckpointError, checkpoint_paths, load_checkpoint, shipped_dir
from arcdemo.data import resize_images
from arcdemo.faces import AlignedFace, ReferenceModel
from arcdemo.model import EmbeddingModel

FACE_MODEL = "faces-arcface"  # the shipped checkpoint `verify` uses by default
REFERENCE_CARD = Path("reference") / "lfw.json"  # under checkpoints/: the reference's LFW threshold (benchmark)
TRAIN_HINT = "train it with `python -m arcdemo train --preset faces-arcface`, or use --model reference"

FaceModel = EmbeddingModel | ReferenceModel


def embed_crops(model: EmbeddingModel, crops: torch.Tensor) -> np.ndarray:
    """Unit embeddings (N, D) of aligned uint8 112 px crops: resized to the model's input, flip-TTA."""
    images = resize_images(crops, model.spec.image_size)
    return F.normalize(model.embed(images, batch_size=256, flip_tta=True), dim=1).cpu().numpy()


@dataclass(frozen=True)
class Verifier:
    """A face model with its decision threshold (cosine; from the model's LFW evaluation) and where both came from.

    ``band``: scores around the threshold where LFW saw more than 2% of the other kind of pair
    (``face_eval.uncertain_band``): a verdict there is reported as "uncertain". ``far``/``frr``: LFW error rates
    at the threshold, which is what the threshold means to a user.
    """

    model: str  # "arcface" (ours) or "reference" (dlib)
    embedder: FaceModel
    threshold: float
    source: str
    band: tuple[float, float] = (0.0, 0.0)
    far: float | None = None
    frr: float | None = None

    def embed(self, face: AlignedFace) -> np.ndarray:
        """Unit embedding of one aligned face."""
        if isinstance(self.embedder, ReferenceModel):
            return self.embedder.embed(face)
        crop = torch.tensor(face.crop).permute(2, 0, 1).unsqueeze(0)
        return embed_crops(self.embedder, crop)[0]

    def decide(self, similarity: float) -> str:
        """The decision for a score: ``same``, ``different``, or ``uncertain`` inside the band."""
        low, high = self.band
        if low < similarity < high:
            return "uncertain"
        return "same" if similarity > self.threshold else "different"

    def verdict(self, similarity: float, faces_found: list[int]) -> dict:
        """The verdict on one cosine similarity: the keys of ``verify`` and of the app's ``/verify_faces``."""
        return {"model": self.model, "similarity": similarity, "same_person": similarity > self.threshold,
                "decision": self.decide(similarity), "threshold": self.threshold, "uncertain_band": list(self.band),
                "lfw_far_at_threshold": self.far, "lfw_frr_at_threshold": self.frr, "faces_found": faces_found}

    def compare(self, a: AlignedFace, b: AlignedFace) -> dict:
        """The verdict on two aligned faces: cosine similarity against the threshold."""
        return self.verdict(float(np.dot(self.embed(a), self.embed(b))), [a.faces_found, b.faces_found])


def _from_metrics(model: str, embedder: FaceModel, metrics: dict, source: str) -> Verifier:
    threshold = float(metrics["threshold"])
    band = metrics.get("lfw_uncertain_band") or (threshold, threshold)
    rate = lambda key: float(metrics[key]) if isinstance(metrics.get(key), (int, float)) else None  # noqa: E731
    return Verifier(model, embedder, threshold, source, (float(band[0]), float(band[1])),
                    rate("lfw_far_at_threshold"), rate("lfw_frr_at_threshold"))


def load_verifier(model: str = "arcface", checkpoint: Path | None = None) -> Verifier:
    """Our face model from its checkpoint (default ``checkpoints/faces-arcface``) or dlib's reference model.

    Raises ``CheckpointError`` with what to do when the model or its threshold is not there.
    """
    if model == "reference":
        card_path = shipped_dir() / REFERENCE_CARD
        try:
            return _from_metrics("reference", ReferenceModel(), json.loads(card_path.read_text()), str(card_path))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            raise CheckpointError(
                f"no LFW threshold for the reference model in {card_path}: run `python benchmarks/lfw_reference.py`"
            ) from None
    if model != "arcface":
        raise ValueError(f"unknown face model {model!r}; choose arcface or reference")
    path = Path(checkpoint) if checkpoint is not None else shipped_dir() / FACE_MODEL
    weights, _ = checkpoint_paths(path)
    if checkpoint is None and not weights.exists():
        raise CheckpointError(f"no face model at {weights} yet: {TRAIN_HINT}")
    network, card = load_checkpoint(path)
    if network.spec.dataset != "faces":
        raise CheckpointError(f"{path} is a {network.spec.dataset} model, not a face model")
    metrics = card.get("metrics", {})
    if not isinstance(metrics.get("threshold"), (int, float)):
        raise CheckpointError(
            f"{path}: its card has no LFW threshold (metrics.threshold), which `python -m arcdemo train` writes for "
            "face models; retrain it or use --model reference"
        )
    return _from_metrics("arcface", network, metrics, str(path))
