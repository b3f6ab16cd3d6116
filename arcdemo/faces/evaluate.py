"""Face verification, measured: thresholds chosen on held-out validation identities, then LFW and ORL.

Both face models are scored the same way on the same faces: ours on the aligned 112 px crop resized to its input
size, with flip-TTA; dlib's ``ReferenceModel`` on its own chip built from the same detection and landmarks.
Score = cosine of unit embeddings; for our model, less each face's cohort offset (``verify.cohort_offsets``: how
much it looks like its nearest training identities) when calibrated with a cohort; "same person" means score >
threshold.

Where a number comes from matters here. The verdict's threshold, its uncertain band and the open-set gallery rule
come from validation identities (:func:`calibrate`: FIW families and CelebA identities never trained on); LFW is
only reported on: its 10-fold accuracy is the protocol number (thresholds picked on 9 folds, tested on the 10th),
and the FAR/FRR that the validation threshold gives on LFW are the out-of-sample error rates a user can expect.

No-face rule: a pair with an image in which no face is found gets a score below any pair's (the verifier
rejects it, as the CLI/app do with "no face found"): a false reject when the pair is the same person, a correct
reject when not; never dropped. The count is reported (``lfw_pairs_without_face``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arcdemo.evaluate import equal_error_rate, roc, unit_rows, verification_metrics
from arcdemo.faces.align import DETECTIONS
from arcdemo.faces.data import AlignedSource, align_images, face_split, faces_root, validation_references
from arcdemo.faces.reference import ReferenceModel
from arcdemo.faces.verify import STRANGER_NAMED, FaceModel, cohort_offsets, embed_crops, face_cohort, gallery_threshold

NO_FACE_SCORE = -3.0  # below any pair score (cosine ≥ -1, less two offsets ≤ 1/2): a pair without a face is rejected
UNCERTAIN_ERROR = 0.02  # a verdict is "uncertain" where validation saw more than 2% of the other kind of pair
# "Same person" is said only above the score that at most this share of validation different-person pairs reach: a
# verdict a visitor can act on. Below it, down to where fewer than UNCERTAIN_ERROR of same-person pairs fall,
# the verdict is "uncertain".
TARGET_FAR = 0.01
IMPOSTOR_PAIRS = 400_000  # different-identity validation pairs behind the gallery rule (FAR down to ~1e-5)
GALLERY_TRIALS = 20_000  # galleries drawn per size to measure how often a stranger is named (±0.07 pp at 1%)


def uncertain_band(
    scores: np.ndarray, same: np.ndarray, threshold: float, error: float = UNCERTAIN_ERROR
) -> list[float]:
    """[low, high] around the threshold where a verdict should not be trusted.

    Above ``high`` fewer than ``error`` of different-person pairs scored; below ``low`` fewer than ``error`` of
    same-person pairs.  A weak verifier gets a wide band, a strong one a band that shrinks to the threshold.
    """
    high = float(np.quantile(scores[~same], 1.0 - error)) if (~same).any() else threshold
    low = float(np.quantile(scores[same], error)) if same.any() else threshold
    return [min(low, threshold), max(high, threshold)]


def far_threshold(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most ``far`` of the sorted ``impostor`` scores are accepted (score >
    threshold): the score ranked ⌊far·n⌋ + 1 from the top."""
    accepted = int(np.floor(far * len(impostor)))
    return float(impostor[len(impostor) - 1 - accepted])


def embed_aligned(model: FaceModel, aligned: AlignedSource) -> np.ndarray:
    """Unit embeddings of aligned images; rows without a face are zero (and are scored by the no-face rule)."""
    if isinstance(model, ReferenceModel):
        if aligned.reference is None:
            raise ValueError("the reference model needs align_images(..., reference=True)")
        vectors = np.nan_to_num(aligned.reference.numpy().astype(np.float32))
    else:
        vectors = embed_crops(model, aligned.crops)
    return np.where(aligned.found[:, None], vectors, 0.0)


def pair_scores(
    embeddings: np.ndarray, found: np.ndarray, first: np.ndarray, second: np.ndarray,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(pair scores, mask of pairs lacking a face): cosines less the faces' ``offsets`` (``cohort_offsets``; none:
    plain cosines); pairs lacking a face score ``NO_FACE_SCORE``."""
    missing = ~(found[first] & found[second])
    scores = np.sum(embeddings[first] * embeddings[second], axis=1)
    if offsets is not None:
        scores = scores - offsets[first] - offsets[second]
    return np.where(missing, NO_FACE_SCORE, scores), missing


def model_offsets(model: FaceModel, embeddings: np.ndarray, cohort_size: int) -> np.ndarray | None:
    """``cohort_offsets`` of the embeddings against the model's training identities (None: plain cosines)."""
    if not cohort_size:
        return None
    cohort = face_cohort(model)
    if cohort is None:
        raise ValueError("the reference model has no training identities to normalise scores against")
    return cohort_offsets(embeddings, cohort, cohort_size)


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
    model: FaceModel, root: Path | None = None, folds: Sequence[int] | None = None, pairs_per_fold: int | None = None,
    threshold: float | None = None, cohort_size: int = 0,
) -> dict:
    """LFW verification of ``model``: 10-fold accuracy ± std, EER, TAR at FAR 1e-2/1e-3, ROC.

    Every image is aligned once with ``align_face`` (cached). ``threshold``: the model's operating threshold,
    chosen elsewhere (:func:`calibrate`, on validation identities); LFW's FAR/FRR at it are reported out of
    sample. ``cohort_size``: score with cohort offsets (as calibrated). ``root``: the LFW folder or a folder above
    it (default: data root).
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
    scores, missing = pair_scores(embeddings, aligned.found, first, second,
                                  model_offsets(model, embeddings, cohort_size))
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
        "lfw_protocol_threshold": metrics["threshold"],
        **({} if threshold is None else {
            "lfw_far_at_threshold": float(np.mean(scores[~same] > threshold)),
            "lfw_frr_at_threshold": float(np.mean(scores[same] <= threshold)),
        }),
        "lfw_tar_at_far_1e-2": metrics["tar_at_far_1e-2"],
        "lfw_tar_at_far_1e-3": metrics["tar_at_far_1e-3"],
        "lfw_fold_accuracies": metrics["fold_accuracies"],
        "lfw_pairs": int(len(pairs)),
        "lfw_pairs_without_face": int(missing.sum()),
        "lfw_same_pairs_without_face": int((missing & same).sum()),
        "lfw_accuracy_no_face_counted_wrong": float(np.mean(strict)),
        "lfw_cohort_size": cohort_size,
        "lfw_images": len(paths),
        "lfw_images_without_face": int((~aligned.found).sum()),
        "lfw_images_found_by_cnn": int((aligned.detection.numpy() == DETECTIONS.index("cnn")).sum()),
        "lfw_folds": sorted({f for *_, f in pairs}),
        "lfw_protocol": protocol,
        "lfw_roc": {"far": np.round(far, 6).tolist(), "tar": np.round(tar, 6).tolist()},
        "flip_tta": not isinstance(model, ReferenceModel),
        "lfw_seconds": round(time.perf_counter() - start, 1),
    }


def evaluate_orl(model: FaceModel, root: Path | None = None, cohort_size: int = 0) -> dict:
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
    scores, missing = pair_scores(embeddings, aligned.found, first, second,
                                  model_offsets(model, embeddings, cohort_size))
    same = labels[first] == labels[second]
    eer, threshold = equal_error_rate(scores, same)
    return {"orl_eer": eer, "orl_eer_threshold": threshold, "orl_pairs": int(len(same)),
            "orl_images_without_face": int((~aligned.found).sum())}


def evaluate_faces(
    model: FaceModel, threshold: float | None = None, folds: Sequence[int] | None = None,
    pairs_per_fold: int | None = None, cohort_size: int = 0,
) -> dict:
    """A face model's test metrics: LFW (``evaluate_lfw``, FAR/FRR at ``threshold``) and ORL EER, both scored with
    ``cohort_size`` as calibrated."""
    return {**evaluate_lfw(model, None, folds, pairs_per_fold, threshold, cohort_size),
            **evaluate_orl(model, cohort_size=cohort_size)}


# --- calibration on validation identities ----------------------------------------------------------------------


def _same_pairs(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Every same-identity pair (i < j), or ``limit`` of them drawn at random."""
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    pairs = np.array([(g[a], g[b]) for g in groups for a, b in zip(*np.triu_indices(len(g), 1))],
                     dtype=np.int64).reshape(-1, 2)
    return pairs[rng.choice(len(pairs), limit, replace=False)] if len(pairs) > limit else pairs


def _different_pairs(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    i, j = rng.integers(0, len(labels), size=(2, 2 * count))
    keep = labels[i] != labels[j]
    return np.stack([i[keep], j[keep]], 1)[:count]


def stranger_rates(embeddings: np.ndarray, labels: np.ndarray, calibration: dict, sizes: Sequence[int] = (1, 10, 50),
                   trials: int = GALLERY_TRIALS, seed: int = 0, offsets: np.ndarray | None = None) -> dict:
    """How often a stranger is named, and an enrolled person found, with galleries of ``sizes`` identities.

    Each trial enrols one random photo each of N random identities, then shows a photo of someone not enrolled
    (named = the best score clears the N-person threshold) and another photo of an enrolled person (found =
    the right name comes first and clears it). Rates also at the 1:1 threshold, which the gallery used before.
    ``offsets``: the faces' cohort offsets, as in :func:`pair_scores`.
    """
    rng = np.random.default_rng(seed)
    offsets = np.zeros(len(labels)) if offsets is None else offsets
    by_identity = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    repeat = {k for k, rows in enumerate(by_identity) if len(rows) >= 2}
    result = {}
    for size in sizes:
        if size + 1 > len(by_identity):
            continue
        strict = gallery_threshold(calibration, size)
        named = {"gallery": 0, "one_to_one": 0}
        found = 0
        for _ in range(trials):
            chosen = rng.choice(len(by_identity), size + 1, replace=False)
            members, stranger = chosen[:size], chosen[size]
            # an enrolled person with a second photo is the genuine probe
            with_second = [k for k in members if k in repeat]
            enrolled = np.array([rng.choice(by_identity[k]) for k in members])
            gallery, gallery_offsets = embeddings[enrolled], offsets[enrolled]
            stranger_photo = rng.choice(by_identity[stranger])
            best = float((gallery @ embeddings[stranger_photo] - gallery_offsets - offsets[stranger_photo]).max())
            named["gallery"] += best > strict
            named["one_to_one"] += best > calibration["threshold"]
            if with_second:
                k = with_second[rng.integers(len(with_second))]
                slot = int(np.flatnonzero(members == k)[0])
                probe = rng.choice([r for r in by_identity[k] if r != enrolled[slot]])
                scores = gallery @ embeddings[probe] - gallery_offsets - offsets[probe]
                found += int(np.argmax(scores) == slot and scores[slot] > strict)
        result[str(size)] = {"threshold": strict, "stranger_named": named["gallery"] / trials,
                             "stranger_named_at_1to1_threshold": named["one_to_one"] / trials,
                             "enrolled_found": found / trials, "trials": trials}
    return result


def calibrate(
    embeddings: np.ndarray, labels: np.ndarray, seed: int = 0, offsets: np.ndarray | None = None,
    gallery_trials: int = GALLERY_TRIALS,
) -> dict:
    """The operating point of a face model, from validation identities only (never LFW).

    Identities are cut in two halves by label parity. On the first: the 1:1 threshold (the lowest score that
    accepts at most ``TARGET_FAR`` of ``IMPOSTOR_PAIRS`` random different-identity pairs), the uncertain band, and the
    impostor score table behind :func:`gallery_threshold`. On the second, out of sample: accuracy, FAR and FRR at
    that threshold, and the gallery rates of :func:`stranger_rates`. ``offsets``: the faces' cohort offsets (pair
    score = cosine less both, as in :func:`pair_scores`); none: plain cosines.
    """
    embeddings = unit_rows(np.asarray(embeddings, dtype=np.float32))
    labels = np.asarray(labels)
    offsets = np.zeros(len(labels), dtype=np.float32) if offsets is None else np.asarray(offsets, dtype=np.float32)
    rng = np.random.default_rng(seed)
    halves = [np.flatnonzero(labels % 2 == parity) for parity in (0, 1)]
    fit, check = halves

    def pairs_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        same_pairs = rows[_same_pairs(labels[rows], IMPOSTOR_PAIRS, rng)]
        different = rows[_different_pairs(labels[rows], IMPOSTOR_PAIRS, rng)]
        pairs = np.concatenate([same_pairs, different])
        scores = np.einsum("ij,ij->i", embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
        scores -= offsets[pairs[:, 0]] + offsets[pairs[:, 1]]
        return scores, np.arange(len(pairs)) < len(same_pairs)

    scores, same = pairs_of(fit)
    impostor = np.sort(scores[~same])
    threshold = far_threshold(impostor, TARGET_FAR)
    grid = np.logspace(-5, np.log10(0.5), 60)
    table = {"far": grid.tolist(), "threshold": [float(np.quantile(impostor, 1 - f)) for f in grid]}
    calibration = {"threshold": threshold, "target_far": TARGET_FAR,
                   "fit_frr": float(np.mean(scores[same] <= threshold)),
                   "uncertain_band": uncertain_band(scores, same, threshold),
                   "impostor_quantiles": table, "stranger_named_target": STRANGER_NAMED,
                   "fit_identities": int(len(np.unique(labels[fit]))), "fit_same_pairs": int(same.sum()),
                   "fit_different_pairs": int((~same).sum())}
    scores, same = pairs_of(check)
    accepted = scores > threshold
    calibration.update(
        check_identities=int(len(np.unique(labels[check]))),
        check_far=float(accepted[~same].mean()), check_frr=float((~accepted[same]).mean()),
        check_balanced_accuracy=float(0.5 * (accepted[same].mean() + (~accepted[~same]).mean())),
        check_eer=equal_error_rate(scores, same)[0],
        gallery=stranger_rates(embeddings[check], labels[check], calibration, trials=gallery_trials, seed=seed,
                               offsets=offsets[check]),
    )
    return calibration


def calibrate_model(model: FaceModel, dataset: str, cohort_size: int = 0) -> dict:
    """:func:`calibrate` on the validation identities of a face set: our model on their crops (scores with
    ``cohort_size`` cohort offsets, which the calibration records), the reference on its cached descriptors."""
    if isinstance(model, ReferenceModel):
        vectors, labels = validation_references(dataset)
    else:
        val = face_split(dataset, "val")
        vectors, labels = embed_crops(model, val.images), val.labels.numpy()
    offsets = model_offsets(model, vectors, cohort_size)
    return {**calibrate(vectors, labels, offsets=offsets), "dataset": dataset, "cohort_size": cohort_size}


# --- LFW pairs.txt ---------------------------------------------------------------------------------------------------


def _lfw_dir(root: Path) -> Path:
    root = Path(root)
    for cand in (root, root / "lfw", root / "faces" / "lfw"):
        if (cand / "pairs.txt").is_file():
            return cand
    raise FileNotFoundError(f"no LFW pairs.txt under {root} (looked in ., lfw/, faces/lfw/)")


def lfw_pairs(root: Path) -> list[tuple[Path, Path, bool, int]]:
    """The official LFW View-2 pairs as ``(image_a, image_b, same, fold)``, fold in 0..9.

    ``root`` is the LFW folder (holding ``pairs.txt``), or the data root /
    ``faces`` folder above it.  ``pairs.txt``: a header ``<folds> <n>``, then per
    fold ``n`` matched lines ``name i j`` and ``n`` mismatched lines
    ``name1 i name2 j``; images are ``<name>/<name>_<i:04d>.jpg``.
    """
    lfw = _lfw_dir(root)
    lines = [ln.split() for ln in (lfw / "pairs.txt").read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise ValueError(f"{lfw / 'pairs.txt'}: bad header {lines[:1]}")
    n_folds, n_per = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != n_folds * 2 * n_per:
        raise ValueError(f"{lfw / 'pairs.txt'}: expected {n_folds * 2 * n_per} pairs, found {len(body)}")

    def img(name: str, idx: str) -> Path:
        return lfw / name / f"{name}_{int(idx):04d}.jpg"

    pairs: list[tuple[Path, Path, bool, int]] = []
    for k, parts in enumerate(body):
        fold, pos = divmod(k, 2 * n_per)
        same = pos < n_per
        if same and len(parts) == 3:
            pairs.append((img(parts[0], parts[1]), img(parts[0], parts[2]), True, fold))
        elif not same and len(parts) == 4:
            pairs.append((img(parts[0], parts[1]), img(parts[2], parts[3]), False, fold))
        else:
            raise ValueError(f"{lfw / 'pairs.txt'}: line {k + 2} {parts} does not fit the View-2 layout")
    return pairs
