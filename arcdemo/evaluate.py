"""Evaluation: classification metrics, angle statistics on the sphere, and verification (ROC, EER, 10-fold)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from arcdemo.data import Split
from arcdemo.model import EmbeddingModel
from arcdemo.points import DrawnPoints, shown_subset


def sklearn_metrics() -> ModuleType:
    """scikit-learn's metrics, imported on first use: the trainer imports them (a slow import) on a worker thread
    while a model trains, so the evaluation at the end does not wait for them."""
    import sklearn.metrics

    return sklearn.metrics


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
    """Accuracy, macro precision/recall/F1 and the confusion matrix (rows = true class)."""
    metrics = sklearn_metrics()
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        labels, predictions, labels=np.arange(num_classes), average="macro", zero_division=0
    )
    return {
        "accuracy": float(np.mean(labels == predictions)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "confusion_matrix": metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes)).tolist(),
    }


def angles_to_centres(embeddings: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Angle in degrees (N, C) between each embedding and each class centre."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    c = centres / np.linalg.norm(centres, axis=1, keepdims=True).clip(1e-12)
    return np.degrees(np.arccos(np.clip(x @ c.T, -1.0, 1.0)))


def intra_inter_angles(
    embeddings: np.ndarray, labels: np.ndarray, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, in degrees: angle to its own class centre, and to the nearest *other* centre."""
    angles = angles_to_centres(embeddings, centres)
    rows = np.arange(len(labels))
    intra = angles[rows, labels]
    angles[rows, labels] = np.inf
    return intra, angles.min(axis=1) if len(centres) > 1 else np.full(len(labels), np.nan)


def angle_statistics(intra: np.ndarray, inter: np.ndarray, centres: np.ndarray) -> dict:
    """How tight the classes are (intra-class angles) and how far apart the centres sit, in degrees."""
    centre_angles = angles_to_centres(centres, centres)
    np.fill_diagonal(centre_angles, np.inf)
    p50, p90, p99 = np.percentile(intra, [50, 90, 99]) if len(intra) else (np.nan,) * 3
    return {
        "mean_intra_angle_deg": float(intra.mean()) if len(intra) else float("nan"),
        "intra_angle_p50_deg": float(p50),
        "intra_angle_p90_deg": float(p90),
        "intra_angle_p99_deg": float(p99),
        "mean_inter_angle_deg": float(inter.mean()) if len(inter) else float("nan"),
        "min_centre_angle_deg": float(centre_angles.min()) if len(centres) > 1 else float("nan"),
    }


@dataclass(frozen=True)
class Evaluation:
    """A model's test-split results plus the arrays the UI draws from.

    For open-set (face) evaluation the split's identities are not the head's classes: there are no predictions
    or probabilities, and ``centres`` are the unit mean embeddings of the split's own identities.
    """

    metrics: dict
    embeddings: np.ndarray  # unit embeddings (N, D)
    labels: np.ndarray
    predictions: np.ndarray | None
    probabilities: np.ndarray | None
    centres: np.ndarray  # unit centres (C, D)
    intra_deg: np.ndarray
    inter_deg: np.ndarray


def card_tta(config: dict) -> dict[str, bool]:
    """The test-time views a checkpoint card's ``config`` was evaluated with, as ``evaluate_model`` keywords
    (cards older than shift-TTA have no ``shift_tta``)."""
    return {"flip_tta": bool(config.get("flip_tta", False)), "shift_tta": bool(config.get("shift_tta", False))}


def evaluate_model(model: EmbeddingModel, split: Split, flip_tta: bool = False, shift_tta: bool = False) -> Evaluation:
    """Run the model on a split and collect metrics, angle statistics and the arrays behind them."""
    probabilities, embeddings = model.predict(split.images, flip_tta=flip_tta, shift_tta=shift_tta)
    probabilities, embeddings = probabilities.cpu().numpy(), embeddings.cpu().numpy()
    labels = split.labels.cpu().numpy()
    predictions = probabilities.argmax(axis=1)
    centres = model.head.centres().cpu().numpy()
    intra, inter = intra_inter_angles(embeddings, labels, centres)
    metrics = classification_metrics(labels, predictions, model.spec.num_classes)
    metrics.update(angle_statistics(intra, inter, centres))
    metrics["samples"] = int(len(labels))
    metrics.update(flip_tta=flip_tta, shift_tta=shift_tta)
    return Evaluation(metrics, embeddings, labels, predictions, probabilities, centres, intra, inter)


def drawn_points(model: EmbeddingModel, split: Split, evaluation: Evaluation) -> DrawnPoints:
    """What Explore and Draw show of an evaluation: its drawn subset, its angles, the head's decision rule and, for
    a linear head, the raw single-view embedding norm its regions are drawn at."""
    import torch

    index = shown_subset(len(evaluation.labels))
    norm = None
    if not getattr(model.head, "normalise", True):
        norm = float(model.embed(split.images[torch.from_numpy(index)]).norm(dim=1).median())
    return DrawnPoints(index, evaluation.embeddings[index], evaluation.labels[index], evaluation.intra_deg,
                      evaluation.inter_deg, model.head.decision_rule(), norm)


# --- verification: scores of pairs (higher = more likely the same identity) --------------------------------------


def roc(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false accept rate, true accept rate, thresholds) over all thresholds, via scikit-learn."""
    far, tar, thresholds = sklearn_metrics().roc_curve(same.astype(int), scores)
    return far, tar, thresholds


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) where the false accept rate equals the false reject rate (linear interpolation)."""
    far, tar, thresholds = roc(scores, same)
    frr = 1.0 - tar
    i = int(np.nonzero(far >= frr)[0][0])
    if i == 0:
        return float(far[0]), float(thresholds[0])
    # interpolate between point i-1 (far < frr) and i (far ≥ frr)
    d0, d1 = frr[i - 1] - far[i - 1], frr[i] - far[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    threshold = (
        thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1]) if np.isfinite(thresholds[i - 1]) else thresholds[i]
    )
    return float(eer), float(threshold)


def tar_at_far(scores: np.ndarray, same: np.ndarray, far_target: float) -> float:
    """True accept rate at the largest operating point whose false accept rate is ≤ ``far_target``."""
    far, tar, _ = roc(scores, same)
    allowed = far <= far_target
    return float(tar[allowed].max()) if allowed.any() else 0.0


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy of "score > t means same": sort once, count at every cut."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order].astype(int)
    # cut k predicts "different" for the k lowest scores and "same" for the rest
    correct = np.concatenate([[0], np.cumsum(1 - y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    cuts = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    return float(cuts[int(np.argmax(correct))])


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """LFW View-2 protocol: for each fold pick the threshold on the other folds, test on it.

    Returns mean/std accuracy over folds, the per-fold thresholds and the threshold picked on all pairs.
    """
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        train = folds != fold
        threshold = best_threshold(scores[train], same[train])
        accuracies.append(float(np.mean((scores[~train] > threshold) == same[~train])))
        thresholds.append(threshold)
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "fold_thresholds": thresholds,
        "threshold": best_threshold(scores, same),
    }


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """What a verifier is judged by: k-fold accuracy (± std), EER, TAR at FAR 1e-2/1e-3, and the threshold
    picked on all pairs with the FAR/FRR it gives there (what a user of that threshold should expect)."""
    kfold = kfold_accuracy(scores, same, folds)
    threshold = kfold["threshold"]
    accepted = scores > threshold
    return {
        "accuracy": kfold["accuracy"],
        "accuracy_std": kfold["accuracy_std"],
        "fold_accuracies": kfold["fold_accuracies"],
        "fold_thresholds": kfold["fold_thresholds"],
        "eer": equal_error_rate(scores, same)[0],
        "threshold": threshold,
        "far_at_threshold": float(accepted[~same].mean()) if (~same).any() else float("nan"),
        "frr_at_threshold": float((~accepted[same]).mean()) if same.any() else float("nan"),
        "tar_at_far_1e-2": tar_at_far(scores, same, 1e-2),
        "tar_at_far_1e-3": tar_at_far(scores, same, 1e-3),
    }


def evaluate_verification(
    model: EmbeddingModel, split: Split, flip_tta: bool = False, shift_tta: bool = False, pairs: int = 6000,
    seed: int = 0,
) -> Evaluation:
    """Open-set evaluation on identities the model never saw (FIW "val"): same/different pairs, 10 folds.

    ``metrics["accuracy"]`` is the 10-fold verification accuracy (what the trainer reports per epoch), so
    model selection uses the same protocol as LFW without touching LFW.
    """
    embeddings = unit_rows(model.embed(split.images, flip_tta=flip_tta, shift_tta=shift_tta).cpu().numpy())
    labels = split.labels.cpu().numpy()
    first, second, same = random_pairs(labels, pairs, seed)
    scores = np.sum(embeddings[first] * embeddings[second], axis=1)
    identities = np.unique(labels)
    centres = unit_rows(np.stack([embeddings[labels == c].mean(0) for c in range(len(split.class_names))]))
    intra, inter = intra_inter_angles(embeddings, labels, centres)
    metrics = verification_metrics(scores, same, np.arange(len(same)) % 10)
    metrics.update(angle_statistics(intra, inter, centres))
    metrics.update(samples=int(len(labels)), identities=int(len(identities)), pairs=int(len(same)), flip_tta=flip_tta,
                   shift_tta=shift_tta)
    return Evaluation(metrics, embeddings, labels, None, None, centres, intra, inter)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def random_pairs(labels: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random (i, j) pairs, half same-class and half different-class, for a verification-style EER."""
    rng = np.random.default_rng(seed)
    half = count // 2
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    usable = [c for c, idx in by_class.items() if len(idx) >= 2]
    cls = rng.choice(usable, size=half)
    same_pairs = np.array([rng.choice(by_class[c], size=2, replace=False) for c in cls]).reshape(-1, 2)
    i = rng.integers(0, len(labels), size=4 * (count - half))
    j = rng.integers(0, len(labels), size=4 * (count - half))
    keep = labels[i] != labels[j]
    diff_pairs = np.stack([i[keep], j[keep]], axis=1)[: count - half]
    pairs = np.concatenate([same_pairs, diff_pairs])
    same = np.concatenate([np.ones(half, bool), np.zeros(len(diff_pairs), bool)])
    return pairs[:, 0], pairs[:, 1], same


def pair_eer(embeddings: np.ndarray, labels: np.ndarray, count: int = 6000, seed: int = 0) -> float:
    """EER of cosine scores on ``count`` random same/different pairs of a labelled set."""
    i, j, same = random_pairs(labels, count, seed)
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    return equal_error_rate(np.sum(x[i] * x[j], axis=1), same)[0]
