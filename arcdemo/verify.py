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
    """A face model with its decision threshold (cosine; from the model's LFW evaluation) and where both came from."""

    model: str  # "arcface" (ours) or "reference" (dlib)
    embedder: FaceModel
    threshold: float
    source: str

    def embed(self, face: AlignedFace) -> np.ndarray:
        """Unit embedding of one aligned face."""
        if isinstance(self.embedder, ReferenceModel):
            return self.embedder.embed(face)
        crop = torch.tensor(face.crop).permute(2, 0, 1).unsqueeze(0)
        return embed_crops(self.embedder, crop)[0]

    def compare(self, a: AlignedFace, b: AlignedFace) -> dict:
        """The verdict on two aligned faces: cosine similarity against the threshold."""
        similarity = float(np.dot(self.embed(a), self.embed(b)))
        return {"model": self.model, "similarity": similarity, "same_person": similarity > self.threshold,
                "threshold": self.threshold, "faces_found": [a.faces_found, b.faces_found]}


def load_verifier(model: str = "arcface", checkpoint: Path | None = None) -> Verifier:
    """Our face model from its checkpoint (default ``checkpoints/faces-arcface``) or dlib's reference model.

    Raises ``CheckpointError`` with what to do when the model or its threshold is not there.
    """
    if model == "reference":
        card_path = shipped_dir() / REFERENCE_CARD
        try:
            card = json.loads(card_path.read_text())
            threshold = float(card["threshold"])
        except (OSError, ValueError, KeyError, TypeError):
            raise CheckpointError(
                f"no LFW threshold for the reference model in {card_path}: run `python benchmarks/lfw_reference.py`"
            ) from None
        return Verifier("reference", ReferenceModel(), threshold, str(card_path))
    if model != "arcface":
        raise ValueError(f"unknown face model {model!r}; choose arcface or reference")
    path = Path(checkpoint) if checkpoint is not None else shipped_dir() / FACE_MODEL
    weights, _ = checkpoint_paths(path)
    if checkpoint is None and not weights.exists():
        raise CheckpointError(f"no face model at {weights} yet: {TRAIN_HINT}")
    network, card = load_checkpoint(path)
    if network.spec.dataset != "faces":
        raise CheckpointError(f"{path} is a {network.spec.dataset} model, not a face model")
    threshold = card.get("metrics", {}).get("threshold")
    if not isinstance(threshold, (int, float)):
        raise CheckpointError(
            f"{path}: its card has no LFW threshold (metrics.threshold), which `python -m arcdemo train` writes for "
            "face models; retrain it or use --model reference"
        )
    return Verifier("arcface", network, float(threshold), str(path))
