"""How many nearest training identities a face's cohort offset should average, measured on validation identities
only (LFW is never touched here).

    python benchmarks/face_cohort.py            # the shipped face model, ~2 min

Our pair score is ``cos(a, b) − offset(a) − offset(b)``, the offset being half the mean cosine of a face with its
K most similar training identities (``arcdemo.faces.verify.cohort_offsets``; K = 0 is the plain cosine). For each
K: 10-fold pair accuracy, EER and TAR at FAR 1% and 0.1% of the trainer's 6,000 validation pairs (seed 0) and the
mean over three further draws of 60,000 pairs (seeds 1-3), which separate variants 0.1 pp apart better.
``COHORT_SIZE`` was chosen from this table. Beside it, full adaptive score normalisation (AS-norm: each side's
cosine less the mean of its K nearest identities, divided by their standard deviation, the two sides averaged),
which speaker verification prefers to the mean alone. Writes benchmarks/results/face_cohort.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402

from arcdemo.checkpoints import hardware, load_checkpoint, shipped_dir  # noqa: E402
from arcdemo.evaluate import random_pairs, verification_metrics  # noqa: E402
from arcdemo.faces.data import face_split  # noqa: E402
from arcdemo.faces.evaluate import pair_scores  # noqa: E402
from arcdemo.faces.verify import COHORT_SIZE, FACE_MODEL, cohort_offsets, embed_crops, face_cohort  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "face_cohort.json"
SIZES = (0, 5, 10, 20, 30, 50, 75, 100, 150)
AS_NORM_SIZES = (20, 50, 100, 200, 400, 1000)  # a standard deviation wants more neighbours than a mean
DRAWS = ((6000, 0), (60000, 1), (60000, 2), (60000, 3))  # (pairs, seed)
KEYS = ("accuracy", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(shipped_dir() / FACE_MODEL))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start = time.perf_counter()
    model, card = load_checkpoint(args.checkpoint)
    val = face_split(card["config"]["dataset"], "val")
    embeddings, labels = embed_crops(model, val.images), val.labels.numpy()
    cohort = face_cohort(model)
    draws = [random_pairs(labels, pairs, seed) for pairs, seed in DRAWS]
    found = np.ones(len(labels), dtype=bool)  # every validation image is an aligned face

    def measure(scorer) -> dict:
        measured = []
        for first, second, same in draws:
            metrics = verification_metrics(scorer(first, second), same, np.arange(len(same)) % 10)
            measured.append([metrics[key] for key in KEYS])
        trainer_pairs, wide = measured[0], np.mean(measured[1:], axis=0)
        return {"pairs_6000_seed_0": dict(zip(KEYS, trainer_pairs)),
                "pairs_60000_mean_of_seeds_1_3": dict(zip(KEYS, wide.tolist()))}

    def show(label: str, row: dict) -> None:
        print(f"{label:16s} 6,000 pairs: " + "  ".join(f"{100 * v:5.2f}" for v in row["pairs_6000_seed_0"].values())
              + "   60,000 × 3: " + "  ".join(f"{100 * v:5.2f}" for v in row["pairs_60000_mean_of_seeds_1_3"].values()),
              flush=True)

    results, as_norm = {}, {}
    for size in SIZES:
        offsets = cohort_offsets(embeddings, cohort, size)
        results[str(size)] = measure(lambda a, b, o=offsets: pair_scores(embeddings, found, a, b, o)[0])
        show(f"K = {size}", results[str(size)])
    nearest = np.sort(embeddings @ cohort.T, axis=1)
    for size in AS_NORM_SIZES:
        mean, spread = nearest[:, -size:].mean(axis=1), nearest[:, -size:].std(axis=1)

        def normalised(a: np.ndarray, b: np.ndarray, mean=mean, spread=spread) -> np.ndarray:
            cosines = np.sum(embeddings[a] * embeddings[b], axis=1)
            return 0.5 * ((cosines - mean[a]) / spread[a] + (cosines - mean[b]) / spread[b])

        as_norm[str(size)] = measure(normalised)
        show(f"AS-norm K = {size}", as_norm[str(size)])
    args.out.write_text(json.dumps({
        "checkpoint": args.checkpoint, "dataset": card["config"]["dataset"], "val_identities": len(val.class_names),
        "val_images": len(val), "cohort_identities": len(cohort), "metrics": list(KEYS), "draws": DRAWS,
        "chosen": COHORT_SIZE, "by_cohort_size": results, "as_norm_by_cohort_size": as_norm,
        "seconds": round(time.perf_counter() - start, 1),
        "hardware": hardware(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"wrote {args.out} (columns: {', '.join(KEYS)})")


if __name__ == "__main__":
    main()
