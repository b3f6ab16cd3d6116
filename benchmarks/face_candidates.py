"""Is one face model really better than another on validation identities? A paired comparison on every pair.

    python benchmarks/face_candidates.py checkpoints/faces-arcface runs/faces-arcface-continued-2   # ~5 min

The candidate tables elsewhere score three draws of 60,000 validation pairs; their TAR at FAR 0.1% then rests on
the ~30 highest different-person scores of each draw, so two models 0.2 pp apart there cannot be told apart. Here
every pair of validation faces is scored as shipped (cohort offsets, ``COHORT_SIZE``): ~64,000 same-person and
~45 million different-person pairs. The validation people are split into 10 disjoint groups (by their index, the
same groups for every model); EER and TAR at FAR 1%, 0.1% and 0.01% are measured on all pairs within each group,
and each later checkpoint is compared with the first group by group: the mean difference, its standard error over
the 10 groups and how many groups it wins. Writes benchmarks/results/face_candidates.json (or ``--out``).
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

from arcdemo.checkpoints import hardware, load_checkpoint  # noqa: E402
from arcdemo.evaluate import equal_error_rate, tar_at_far  # noqa: E402
from arcdemo.faces.data import face_split  # noqa: E402
from arcdemo.faces.verify import COHORT_SIZE, cohort_offsets, embed_crops, face_cohort  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "face_candidates.json"
GROUPS = 10
FARS = (1e-2, 1e-3, 1e-4)
KEYS = ("eer", *(f"tar_at_far_{far:.0e}" for far in FARS))


def pair_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """EER and TAR at ``FARS`` over every pair (i < j) of a score matrix."""
    first, second = np.triu_indices(len(labels), 1)
    pair_scores, same = scores[first, second], labels[first] == labels[second]
    return dict(zip(KEYS, [equal_error_rate(pair_scores, same)[0],
                           *(tar_at_far(pair_scores, same, far) for far in FARS)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="the first is the one the others are compared with")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start = time.perf_counter()
    val, rows = None, {}
    for checkpoint in args.checkpoints:
        model, card = load_checkpoint(checkpoint)
        if val is None:
            val = face_split(card["config"]["dataset"], "val")
            labels = val.labels.numpy()
            group = labels % GROUPS
        embeddings = embed_crops(model, val.images)
        offsets = cohort_offsets(embeddings, face_cohort(model), COHORT_SIZE)
        scores = embeddings @ embeddings.T - offsets[:, None] - offsets[None, :]
        groups = []
        for g in range(GROUPS):
            members = np.flatnonzero(group == g)
            groups.append(pair_metrics(scores[np.ix_(members, members)], labels[members]))
        rows[checkpoint] = {"all_pairs": pair_metrics(scores, labels), "groups": groups}
        print(checkpoint, "  ".join(f"{k} {100 * v:.2f}" for k, v in rows[checkpoint]["all_pairs"].items()), flush=True)
    reference = args.checkpoints[0]
    comparisons = {}
    for checkpoint in args.checkpoints[1:]:
        comparison = {}
        for key in KEYS:
            differences = np.array([mine[key] - theirs[key] for mine, theirs
                                    in zip(rows[checkpoint]["groups"], rows[reference]["groups"])])
            better = differences < 0 if key == "eer" else differences > 0
            comparison[key] = {"mean_difference": float(differences.mean()),
                               "standard_error": float(differences.std(ddof=1) / np.sqrt(GROUPS)),
                               "groups_better": int(better.sum())}
        comparisons[checkpoint] = comparison
        print(f"{checkpoint} − {reference}: " + "  ".join(
            f"{k} {100 * c['mean_difference']:+.2f} ± {100 * c['standard_error']:.2f} pp "
            f"(better in {c['groups_better']}/{GROUPS})" for k, c in comparison.items()))
    photos = np.bincount(labels)
    same_pairs, all_pairs = int((photos * (photos - 1) // 2).sum()), len(labels) * (len(labels) - 1) // 2
    args.out.write_text(json.dumps({
        "checkpoints": args.checkpoints, "dataset": card["config"]["dataset"], "cohort_size": COHORT_SIZE,
        "val_identities": len(val.class_names), "val_images": len(val), "same_pairs": same_pairs,
        "different_pairs": all_pairs - same_pairs, "groups": GROUPS, "metrics": list(KEYS), "models": rows,
        "compared_with_first": comparisons, "seconds": round(time.perf_counter() - start, 1),
        "hardware": hardware(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
