"""What limits the face model: LFW accuracy against the number of FIW training identities.

    python benchmarks/face_learning_curve.py                       # 25% and 50% of the training families
    python benchmarks/face_learning_curve.py --fractions 0.125 0.25 0.5 1.0

Each point trains the recipe of preset ``faces-fiw-arcface`` (same epochs, schedule, augmentation, seed) at 64 px input,
the size the curve was measured at, on a random subset of the training *families* (whole families, so no relative
of a held-out person sneaks in) and scores it on the full LFW View-2 protocol. The 100% point is the shipped
checkpoint's card when that checkpoint has the same recipe.
Writes benchmarks/results/face_learning_curve.json (each point as it finishes) and docs/face_learning_curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo.checkpoints import hardware, shipped_dir  # noqa: E402
from arcdemo.data import Split  # noqa: E402
from arcdemo.faces.data import face_split, family  # noqa: E402
from arcdemo.faces.evaluate import evaluate_lfw  # noqa: E402
from arcdemo.presets import preset  # noqa: E402
from arcdemo.train import DoneEvent, train  # noqa: E402

PRESET = "faces-fiw-arcface"
IMAGE_SIZE = 64  # px: every point of the committed curve was trained at this size
OUT = REPO / "benchmarks" / "results" / "face_learning_curve.json"
FIGURE = REPO / "docs" / "face_learning_curve.png"


def family_subset(split: Split, fraction: float, seed: int = 0) -> Split:
    """The identities of a random ``fraction`` of the split's families, relabelled 0..k-1."""
    families = sorted({family(name) for name in split.class_names})
    order = torch.randperm(len(families), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen = {families[i] for i in order[: max(1, round(fraction * len(families)))]}
    return split.classes([i for i, name in enumerate(split.class_names) if family(name) in chosen])


def point(fraction: float, train_split: Split, val_split: Split) -> dict:
    config = preset(PRESET, image_size=IMAGE_SIZE)
    card_path = shipped_dir() / f"{PRESET}.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    if fraction >= 1.0 and card.get("config", {}).get("image_size") == IMAGE_SIZE:
        metrics = card["metrics"]
        return {"fraction": 1.0, "identities": len(train_split.class_names), "images": len(train_split),
                "lfw_accuracy": metrics["lfw_accuracy"], "lfw_accuracy_std": metrics["lfw_accuracy_std"],
                "lfw_eer": metrics["lfw_eer"], "val_accuracy": metrics["val_accuracy"],
                "wall_s": card["wall_time_s"], "source": f"checkpoints/{PRESET}.json"}
    subset = family_subset(train_split, fraction)
    start = time.perf_counter()
    done = next(e for e in train(config.resolved(), data=(subset, val_split)) if isinstance(e, DoneEvent))
    lfw = evaluate_lfw(done.model)
    return {"fraction": fraction, "identities": len(subset.class_names), "images": len(subset),
            "lfw_accuracy": lfw["lfw_accuracy"], "lfw_accuracy_std": lfw["lfw_accuracy_std"], "lfw_eer": lfw["lfw_eer"],
            "val_accuracy": done.evaluation.metrics["accuracy"], "wall_s": round(time.perf_counter() - start, 1),
            "source": f"preset {PRESET} at {IMAGE_SIZE} px on the subset"}


def figure(points: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(points, key=lambda p: p["identities"])
    x = [p["identities"] for p in points]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.errorbar(x, [100 * p["lfw_accuracy"] for p in points], yerr=[100 * p["lfw_accuracy_std"] for p in points],
                marker="o", capsize=3, label="LFW 10-fold accuracy (± std over folds)")
    ax.plot(x, [100 * p["val_accuracy"] for p in points], marker="s", linestyle="--",
            label="FIW held-out families, pair accuracy")
    ax.axhline(90, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [f"{n}\n({p['images']} img)" for n, p in zip(x, points)], fontsize=7)
    ax.set_xlabel("training identities (FIW)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("ArcFace MobileFaceNet, same recipe, more people", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURE)
    plt.close(fig)
    print(f"wrote {FIGURE}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {"points": []}
    done = {p["fraction"] for p in results["points"]}
    train_split, val_split = face_split("fiw", "train"), face_split("fiw", "val")
    for fraction in args.fractions:
        if fraction in done:
            continue
        results["points"].append(point(fraction, train_split, val_split))
        results.update(command="python benchmarks/face_learning_curve.py " + " ".join(sys.argv[1:]),
                       updated=datetime.now(timezone.utc).isoformat(timespec="seconds"), hardware=hardware())
        OUT.write_text(json.dumps(results, indent=1))
        print(json.dumps(results["points"][-1]), file=sys.stderr, flush=True)
    figure(results["points"])


if __name__ == "__main__":
    main()
