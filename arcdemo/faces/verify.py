"""The verdict on two face photos, and the face models that give it: ours (a face checkpoint) or dlib's reference,
each with the operating point calibrated on validation identities (``faces.evaluate.calibrate``).

Kept free of the evaluation stack (scikit-learn) so the CLI's ``verify`` and the app load only what a verdict needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arcdemo.checkpoints import CheckpointError, checkpoint_paths, load_checkpoint, shipped_dir
from arcdemo.data import resize_images
from arcdemo.faces.align import AlignedFace
from arcdemo.faces.reference import ReferenceModel
from arcdemo.model import EmbeddingModel

FACE_MODEL = "faces-arcface-celeba-112px-dropout-stage2"  # the shipped checkpoint `verify` uses by default
REFERENCE_CARD = Path("reference") / "lfw.json"  # under checkpoints/: the reference's calibration and LFW numbers
TRAIN_HINT = f"train it with `python -m arcdemo train --preset {FACE_MODEL}`, or use --model reference"

FaceModel = EmbeddingModel | ReferenceModel
STRANGER_NAMED = 0.01  # the open-set gallery names a stranger at most this often, whatever the gallery's size


def gallery_far(size: int, stranger_named: float = STRANGER_NAMED) -> float:
    """The per-comparison false accept rate at which a stranger beats none of ``size`` enrolled people with
    probability 1 − ``stranger_named``: 1 − (1 − p)^(1/N), assuming independent comparisons."""
    return 1.0 - (1.0 - stranger_named) ** (1.0 / max(1, size))


def gallery_threshold(calibration: dict, size: int) -> float:
    """The 1:N acceptance threshold for a gallery of ``size`` people, from the impostor table of
    ``faces.evaluate.calibrate``: never below the 1:1 threshold, so a larger gallery is only ever stricter."""
    table = calibration["impostor_quantiles"]  # far rising, threshold falling; interpolated in log(far)
    wanted = np.log10(max(gallery_far(size), table["far"][0]))
    threshold = float(np.interp(wanted, np.log10(table["far"]), table["threshold"]))
    return max(threshold, float(calibration["threshold"]))


def embed_crops(model: EmbeddingModel, crops: torch.Tensor) -> np.ndarray:
    """Unit embeddings (N, D) of aligned uint8 112 px crops: resized to the model's input, flip-TTA."""
    images = resize_images(crops, model.spec.image_size)
    return F.normalize(model.embed(images, batch_size=256, flip_tta=True), dim=1).cpu().numpy()


@dataclass(frozen=True)
class Verifier:
    """A face model with its operating point and where it came from.

    ``threshold`` (cosine) and ``band`` were chosen on validation identities: inside the band, validation saw more
    than 2% of the other kind of pair, so a verdict there is "uncertain". ``far``/``frr``: the error rates that
    threshold gave on LFW, out of sample -- what it means to a user. ``gallery_quantiles``: the impostor score
    table behind the open-set rule (:meth:`gallery_threshold`).
    """

    model: str  # "arcface" (ours) or "reference" (dlib)
    embedder: FaceModel
    threshold: float
    source: str
    band: tuple[float, float] = (0.0, 0.0)
    far: float | None = None
    frr: float | None = None
    gallery_quantiles: dict | None = None
    trained_on: tuple[str, int, int] = ("", 0, 0)  # our model: (dataset, training faces, training identities)

    def gallery_threshold(self, size: int) -> float:
        """The score a gallery of ``size`` people must clear so that a stranger is named at most ~1% of the time."""
        if not self.gallery_quantiles:
            return self.threshold
        return gallery_threshold({"threshold": self.threshold, "impostor_quantiles": self.gallery_quantiles}, size)

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
    calibration = metrics["calibration"]
    threshold = float(calibration["threshold"])
    band = calibration["uncertain_band"]
    rate = lambda key: float(metrics[key]) if isinstance(metrics.get(key), (int, float)) else None  # noqa: E731
    return Verifier(model, embedder, threshold, source, (float(band[0]), float(band[1])),
                    rate("lfw_far_at_threshold"), rate("lfw_frr_at_threshold"), calibration["impostor_quantiles"])


def load_verifier(model: str = "arcface", checkpoint: Path | None = None, device: str = "cpu") -> Verifier:
    """Our face model from its checkpoint (default ``checkpoints/<FACE_MODEL>``) or dlib's reference model.

    Raises ``CheckpointError`` with what to do when the model or its threshold is not there.
    """
    if model == "reference":
        card_path = shipped_dir() / REFERENCE_CARD
        try:
            return _from_metrics("reference", ReferenceModel(), json.loads(card_path.read_text()), str(card_path))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            raise CheckpointError(
                f"no calibration for the reference model in {card_path}: run `python benchmarks/lfw_reference.py`"
            ) from None
    if model != "arcface":
        raise ValueError(f"unknown face model {model!r}; choose arcface or reference")
    path = Path(checkpoint) if checkpoint is not None else shipped_dir() / FACE_MODEL
    weights, _ = checkpoint_paths(path)
    if checkpoint is None and not weights.exists():
        raise CheckpointError(f"no face model at {weights} yet: {TRAIN_HINT}")
    network, card = load_checkpoint(path, device)
    if network.spec.dataset != "faces":
        raise CheckpointError(f"{path} is a {network.spec.dataset} model, not a face model")
    metrics = card.get("metrics", {})
    if not isinstance(metrics.get("calibration", {}).get("threshold"), (int, float)):
        raise CheckpointError(
            f"{path}: its card has no calibrated threshold (metrics.calibration), which `python -m arcdemo train` "
            f"writes for face models; run `python -m arcdemo calibrate --checkpoint {path}` or use --model reference"
        )
    verifier = _from_metrics("arcface", network, metrics, str(path))
    data = card.get("data", {})
    trained_on = (str(data.get("dataset", "")), int(data.get("train_images", 0)), len(network.spec.class_names))
    return replace(verifier, trained_on=trained_on)
