"""The verdict on two face photos, and the face models that give it: ours (a face checkpoint) or dlib's reference,
each with the operating point calibrated on validation identities (``faces.evaluate.calibrate``).

Kept free of the evaluation stack (scikit-learn) so the CLI's ``verify`` and the app load only what a verdict needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arcdemo.catalog import FACE_MODEL
from arcdemo.checkpoints import CheckpointError, checkpoint_paths, load_checkpoint, shipped_dir
from arcdemo.data import resize_images
from arcdemo.faces.align import AlignedFace
from arcdemo.faces.reference import ReferenceModel
from arcdemo.faces.sphere import GalleryView, PairView, cohort_direction, gallery_view, pair_view
from arcdemo.model import EmbeddingModel

REFERENCE_CARD = Path("reference") / "lfw.json"  # under checkpoints/: the reference's calibration and LFW numbers
TRAIN_HINT = f"train it with `python -m arcdemo train --preset {FACE_MODEL}`, or use --model reference"

FaceModel = EmbeddingModel | ReferenceModel
STRANGER_NAMED = 0.01  # the open-set gallery names a stranger at most this often, whatever the gallery's size
# Our model's pair score subtracts how much each face resembles its COHORT_SIZE most similar training identities
# (``cohort_offsets``). Chosen on validation identities by benchmarks/face_cohort.py (run 5 of the presets, 60,000
# pairs, three draws; benchmarks/results/face_cohort-run5.json): 10-fold accuracy 91.36% → 91.78%, EER 8.98% → 8.51%,
# TAR @ FAR 0.1% 56.8% → 59.2%; flat from 10 to 75 nearest identities (the shipped run 6 likewise).
COHORT_SIZE = 20


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


def face_cohort(model: FaceModel) -> np.ndarray | None:
    """The unit centres (C, D) of the identities our model was trained on (its head's class weights, shipped in the
    checkpoint); the reference model has none."""
    if isinstance(model, ReferenceModel):
        return None
    return model.head.centres().cpu().numpy()


def cohort_offsets(vectors: np.ndarray, cohort: np.ndarray | None, size: int) -> np.ndarray:
    """Half the mean cosine of each unit row with its ``size`` most similar cohort rows; zeros without a cohort.

    A face that looks like many people (blurred, small, half-turned, a common look) scores high against anyone, so
    its pairs are over-accepted. The pair score ``cos(a, b) − offset(a) − offset(b)`` takes that back: adaptive
    cohort normalisation (speaker verification's AS-norm, its mean part) with the training identities as cohort.
    """
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if cohort is None or size <= 0:
        return np.zeros(len(vectors), dtype=np.float32)
    if size > len(cohort):
        raise ValueError(f"a cohort of {size} nearest identities needs at least {size}; this model has {len(cohort)}")
    similarities = vectors @ cohort.T
    return 0.5 * np.partition(similarities, -size, axis=1)[:, -size:].mean(axis=1)


def embed_crops(model: EmbeddingModel, crops: torch.Tensor) -> np.ndarray:
    """Unit embeddings (N, D) of aligned uint8 112 px crops: resized to the model's input, flip-TTA."""
    images = resize_images(crops, model.spec.image_size)
    return F.normalize(model.embed(images, flip_tta=True), dim=1).cpu().numpy()


@dataclass(frozen=True)
class Verifier:
    """A face model with its operating point and where it came from.

    ``threshold`` and ``band`` (on the pair score, :meth:`score`) were chosen on validation identities: inside the
    band, validation saw more than 2% of the other kind of pair, so a verdict there is "uncertain". ``far``/``frr``:
    the error rates that threshold gave on LFW, out of sample -- what it means to a user; ``validation_rates``: the
    same on the validation identities the threshold was not set on. ``gallery_quantiles``: the
    impostor score table behind the open-set rule (:meth:`gallery_threshold`). ``cohort``/``cohort_size``: the
    training identities the score is normalised against (``cohort_offsets``; none: the score is the cosine).
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
    cohort: np.ndarray | None = field(default=None, compare=False, repr=False)
    cohort_size: int = 0
    validation_rates: tuple[float, float] | None = None  # (FAR, FRR) at the threshold on the held-out check half

    def scores(self, gallery: np.ndarray, probe: np.ndarray) -> np.ndarray:
        """The pair scores of a unit embedding against each row of ``gallery``: cosines, less both faces' cohort
        offsets (if a cohort), each face's offset computed once."""
        gallery = np.atleast_2d(gallery)
        offsets = cohort_offsets(np.vstack([gallery, probe]), self.cohort, self.cohort_size)
        return gallery @ probe - offsets[:-1] - offsets[-1]

    def cohort_direction(self, vectors: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The mean direction of the training identities the score measures these faces against, and its name
        (None without a cohort)."""
        if self.cohort is None or self.cohort_size <= 0:
            return None, ""
        return (cohort_direction(vectors, self.cohort, self.cohort_size),
                f"C: the mean of the {self.cohort_size} training identities nearest to each face (the score's cohort)")

    def pair_view(self, first: np.ndarray, second: np.ndarray) -> PairView:
        """The verdict on two unit embeddings as angles on S²: b inside the cap around a ⇔ ``same_person``, on
        the ring ⇔ ``uncertain``."""
        pair = np.stack([first, second])
        offsets = cohort_offsets(pair, self.cohort, self.cohort_size)
        third, name = self.cohort_direction(pair)
        return pair_view(first, second, self.threshold, self.band, (float(offsets[0]), float(offsets[1])), third, name)

    def gallery_view(self, gallery: np.ndarray, probe: np.ndarray, names: list[str] | None = None) -> GalleryView:
        """The gallery rule for a probe as caps around the enrolled faces (rows of ``gallery``), at the threshold
        for a gallery of that size."""
        vectors = np.vstack([np.atleast_2d(gallery), probe])
        offsets = cohort_offsets(vectors, self.cohort, self.cohort_size).astype(float)
        third, _ = self.cohort_direction(vectors)
        return gallery_view(probe, vectors[:-1], self.gallery_threshold(len(vectors) - 1), offsets[:-1],
                            float(offsets[-1]), third, names)

    def score(self, first: np.ndarray, second: np.ndarray) -> float:
        """The pair score of two unit embeddings (:meth:`scores` of one)."""
        return float(self.scores(first, second)[0])

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

    def verdict(self, first: np.ndarray, second: np.ndarray, faces_found: list[int]) -> dict:
        """The verdict on two unit embeddings: the keys of ``verify`` and of the app's ``/verify_faces``.
        ``similarity`` is the pair score the threshold applies to; ``cosine`` the plain cosine behind it; the
        angles (``PairView.fields``) are those of :meth:`pair_view`, which draws it."""
        similarity = self.score(first, second)
        return {"model": self.model, "similarity": similarity, "cosine": float(np.dot(first, second)),
                "cohort_size": self.cohort_size, "same_person": similarity > self.threshold,
                "decision": self.decide(similarity), "threshold": self.threshold, "uncertain_band": list(self.band),
                "lfw_far_at_threshold": self.far, "lfw_frr_at_threshold": self.frr,
                "validation_far_at_threshold": self.validation_rates and self.validation_rates[0],
                "validation_frr_at_threshold": self.validation_rates and self.validation_rates[1],
                "faces_found": faces_found, **self.pair_view(first, second).fields()}

    def compare(self, a: AlignedFace, b: AlignedFace) -> dict:
        """The verdict on two aligned faces: their pair score against the threshold."""
        return self.verdict(self.embed(a), self.embed(b), [a.faces_found, b.faces_found])


def _from_metrics(model: str, embedder: FaceModel, metrics: dict, source: str) -> Verifier:
    calibration = metrics["calibration"]
    threshold = float(calibration["threshold"])
    band = calibration["uncertain_band"]
    rate = lambda key: float(metrics[key]) if isinstance(metrics.get(key), (int, float)) else None  # noqa: E731
    cohort_size = int(calibration.get("cohort_size", 0))  # cards calibrated before cohort scores: the cosine
    checked = ("check_far", "check_frr")
    validation_rates = tuple(float(calibration[k]) for k in checked) if all(k in calibration for k in checked) else None
    return Verifier(model, embedder, threshold, source, (float(band[0]), float(band[1])),
                    rate("lfw_far_at_threshold"), rate("lfw_frr_at_threshold"), calibration["impostor_quantiles"],
                    cohort=face_cohort(embedder) if cohort_size else None, cohort_size=cohort_size,
                    validation_rates=validation_rates)


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
