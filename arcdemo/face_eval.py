"""Face verification benchmarks: LFW (official View-2 pairs, 10 folds) and ORL, for our model and the reference.

Both face models are scored the same way on the same faces: our ``EmbeddingModel`` (trained on FIW) on the
aligned 112 px crop resized to its input size, with flip-TTA; dlib's ``ReferenceModel`` on its own chip built from
the same detection and landmarks.  Score = cosine of unit embeddings; "same person" means score > threshold.

No-face rule: a pair with an image in which the detector finds no face gets the worst possible score, -1 (the
verifier rejects it, as the CLI/app do with "no face found").  So it costs a false reject when the pair is the same
person and is a correct reject when it is not; it is never dropped.  The count is reported
(``lfw_pairs_without_face``), with the accuracy if every such pair counted as wrong instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arcdemo.data import data_root
from arcdemo.evaluate import equal_error_rate, roc, verification_metrics
from arcdemo.face_data import AlignedImages, align_images
from arcdemo.faces import ReferenceModel, lfw_pairs
from arcdemo.verify import FaceModel, embed_crops

NO_FACE_SCORE = -1.0  # the lowest cosine: a pair without a face is always rejected
UNCERTAIN_ERROR = 0.02  # a verdict is "uncertain" where LFW saw more than 2% of the other kind of pair score


def uncertain_band(scores: np.ndarray, same: np.ndarray, threshold: float, error: float = UNCERTAIN_ERROR) -> list[float]:
    """[low, high] around the threshold where a verdict should not be trusted.

    Above ``high`` fewer than ``error`` of different-person pairs scored; below ``low`` fewer than ``error`` of
    same-person pairs.  A weak verifier gets a wide band, a strong one a band that shrinks to the threshold.
    """
    high = float(np.quantile(scores[~same], 1.0 - error)) if (~same).any() else threshold
    low = float(np.quantile(scores[same], error)) if same.any() else threshold
    return [min(low, threshold), max(high, threshold)]


def faces_root() -> Path:
    return data_root() / "faces"


def embed_aligned(model: FaceModel, aligned: AlignedImages) -> np.ndarray:
    """Unit embeddings of aligned images; rows without a face are zero (and are scored by the no-face rule)."""
    if isinstance(model, ReferenceModel):
        if aligned.reference is None:
            raise ValueError("the reference model needs align_images(..., reference=True)")
        vectors = aligned.reference.numpy().astype(np.float32)
    else:
        vectors = embed_crops(model, aligned.crops)
    return np.where(aligned.found[:, None], vectors, 0.0)


def pair_scores(
    embeddings: np.ndarray, found: np.ndarray, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cosine scores, mask of pairs lacking a face): those pairs score ``NO_FACE_SCORE``."""
    missing = ~(found[first] & found[second])
    scores = np.sum(embeddings[first] * embeddings[second], axis=1)
    return np.where(missing, NO_FACE_SCORE, scores), missing


def protocol_folds(folds: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, str]:
    """The folds the k-fold threshold protocol runs on.

    Two or more official folds: those.  A single fold (a quick run on fold 0): ten folds within it, interleaved
    so that each holds same and different pairs -- the numbers then estimate, not reproduce, the official ones.
    """
    if len(np.unique(folds)) >= 2:
        return folds, "official LFW View-2 folds"
    inner = np.empty(len(same), dtype=np.int64)
    for group in (same, ~same):
        inner[group] = np.arange(int(group.sum())) % 10
    return inner, "10 interleaved folds within the one LFW fold given"


def select_lfw_pairs(
    root: Path, folds: Sequence[int] | None = None, pairs_per_fold: int | None = None
) -> list[tuple[Path, Path, bool, int]]:
    """LFW View-2 pairs of the given official folds (all by default); with ``pairs_per_fold`` only the first
    half that many same and different pairs of each fold (smoke runs and tests)."""
    if pairs_per_fold is not None and pairs_per_fold < 2:
        raise ValueError(f"pairs per fold must be ≥ 2 (one same, one different), got {pairs_per_fold}")
    pairs = lfw_pairs(root)
    wanted = set(range(10) if folds is None else folds)
    unknown = wanted - {p[3] for p in pairs}
    if unknown:
        raise ValueError(f"LFW has folds 0-9; no fold {sorted(unknown)}")
    chosen = []
    for fold in sorted(wanted):
        for same in (True, False):
            group = [p for p in pairs if p[3] == fold and p[2] == same]
            chosen += group[: pairs_per_fold // 2] if pairs_per_fold else group
    return chosen


def model_name(model: FaceModel) -> str:
    if isinstance(model, ReferenceModel):
        return ReferenceModel.name
    spec = model.spec
    return f"{spec.backbone}-{spec.width} {spec.loss} {spec.embedding_dim}-d @{spec.image_size}px"


def evaluate_lfw(
    model: FaceModel, root: Path | None = None, folds: Sequence[int] | None = None, pairs_per_fold: int | None = None
) -> dict:
    """LFW verification of ``model``: k-fold accuracy ± std, EER, TAR at FAR 1e-2/1e-3, threshold, ROC.

    Every image is aligned once with ``align_face`` (cached); the threshold (``threshold``) is the one the
    protocol picks on all evaluated pairs.  ``root``: the LFW folder or a folder above it (default: data root).
    """
    start = time.perf_counter()
    pairs = select_lfw_pairs(root or faces_root(), folds, pairs_per_fold)
    paths = sorted({str(p) for a, b, _, _ in pairs for p in (a, b)})
    row = {p: i for i, p in enumerate(paths)}
    aligned = align_images([Path(p) for p in paths], "lfw", reference=isinstance(model, ReferenceModel))
    embeddings = embed_aligned(model, aligned)
    first = np.array([row[str(a)] for a, _, _, _ in pairs])
    second = np.array([row[str(b)] for _, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    scores, missing = pair_scores(embeddings, aligned.found, first, second)
    folds_used, protocol = protocol_folds(np.array([f for *_, f in pairs]), same)
    metrics = verification_metrics(scores, same, folds_used)
    far, tar, _ = roc(scores, same)
    # the same k-fold protocol with every no-face pair counted wrong (the rule above makes the different ones right)
    strict = [np.mean(((scores[f] > t) == same[f]) & ~missing[f])
              for f, t in ((folds_used == k, t) for k, t in zip(np.unique(folds_used), metrics["fold_thresholds"]))]
    return {
        "model": model_name(model),
        "lfw_accuracy": metrics["accuracy"],
        "lfw_accuracy_std": metrics["accuracy_std"],
        "lfw_eer": metrics["eer"],
        "threshold": metrics["threshold"],
        "lfw_uncertain_band": uncertain_band(scores, same, metrics["threshold"]),
        "lfw_far_at_threshold": metrics["far_at_threshold"],
        "lfw_frr_at_threshold": metrics["frr_at_threshold"],
        "lfw_tar_at_far_1e-2": metrics["tar_at_far_1e-2"],
        "lfw_tar_at_far_1e-3": metrics["tar_at_far_1e-3"],
        "lfw_fold_accuracies": metrics["fold_accuracies"],
        "lfw_pairs": int(len(pairs)),
        "lfw_pairs_without_face": int(missing.sum()),
        "lfw_same_pairs_without_face": int((missing & same).sum()),
        "lfw_accuracy_no_face_counted_wrong": float(np.mean(strict)),
        "lfw_images": len(paths),
        "lfw_images_without_face": int((~aligned.found).sum()),
        "lfw_folds": sorted({f for *_, f in pairs}),
        "lfw_protocol": protocol,
        "lfw_roc": {"far": np.round(far, 6).tolist(), "tar": np.round(tar, 6).tolist()},
        "flip_tta": not isinstance(model, ReferenceModel),
        "lfw_seconds": round(time.perf_counter() - start, 1),
    }


def evaluate_orl(model: FaceModel, root: Path | None = None) -> dict:
    """ORL (40 people × 10 grey photos) verification EER over all 79,800 image pairs, same no-face rule.

    ``root``: the ORL folder (``s1`` … ``s40``; default ``<data root>/faces/orl``).
    """
    folder = root or faces_root() / "orl"
    paths = sorted(folder.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    if not paths:
        raise FileNotFoundError(f"no ORL images (s<person>/<n>.pgm) under {folder}")
    aligned = align_images(paths, "orl", reference=isinstance(model, ReferenceModel))
    embeddings = embed_aligned(model, aligned)
    labels = np.array([p.parent.name for p in paths])
    first, second = np.triu_indices(len(paths), k=1)
    scores, missing = pair_scores(embeddings, aligned.found, first, second)
    same = labels[first] == labels[second]
    eer, threshold = equal_error_rate(scores, same)
    return {"orl_eer": eer, "orl_eer_threshold": threshold, "orl_pairs": int(len(same)),
            "orl_images_without_face": int((~aligned.found).sum())}


def evaluate_faces(model: FaceModel, folds: Sequence[int] | None = None, pairs_per_fold: int | None = None) -> dict:
    """A face model's card metrics: LFW (``evaluate_lfw``) and ORL EER, from the data root."""
    return {**evaluate_lfw(model, None, folds, pairs_per_fold), **evaluate_orl(model)}
