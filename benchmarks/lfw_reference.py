"""LFW View-2 verification of dlib's reference model and of ours, in one run, through the same alignment.

    python benchmarks/lfw_reference.py                 # all 6,000 pairs (~7 min alignment + dlib on 2 cores, cached)
    python benchmarks/lfw_reference.py --folds 0       # fold 0 only: 600 pairs, 10 folds inside it

Every LFW image is detected and aligned once (``arcdemo.faces.align.align_face``); from that one detection come
both the 112 px crop our model embeds and the dlib chip the reference embeds, so the two are scored on exactly the
same faces, pairs, no-face rule and protocol (``arcdemo.faces.evaluate``). The reference's operating point is
calibrated on the validation identities of ``--dataset`` (default fiw+celeba), as ours is; each model's LFW FAR/FRR
are then measured at its own calibrated threshold. Our model is included when ``--checkpoint`` (default
checkpoints/<FACE_MODEL>, the shipped face model) exists.

Writes benchmarks/results/lfw.json and, for runs over whole folds, checkpoints/reference/lfw.json: the reference's
calibration and LFW numbers that ``python -m arcdemo verify --model reference`` and the app use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo.checkpoints import checkpoint_paths, hardware, load_checkpoint, shipped_dir  # noqa: E402
from arcdemo.faces.data import align_images, faces_root  # noqa: E402
from arcdemo.faces.evaluate import calibrate_model, evaluate_lfw, select_lfw_pairs  # noqa: E402
from arcdemo.faces.reference import ReferenceModel  # noqa: E402
from arcdemo.faces.verify import FACE_MODEL, REFERENCE_CARD  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "lfw.json"
CARD_KEYS = ("model", "lfw_accuracy", "lfw_accuracy_std", "lfw_eer", "lfw_far_at_threshold", "lfw_frr_at_threshold",
             "lfw_tar_at_far_1e-2", "lfw_pairs", "lfw_pairs_without_face", "lfw_images_without_face",
             "lfw_images_found_by_cnn", "lfw_folds", "lfw_protocol")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", help="official folds to use (default: all ten)")
    parser.add_argument("--pairs-per-fold", type=int, help="only the first N pairs of each fold (smoke runs)")
    parser.add_argument("--checkpoint", type=Path, default=shipped_dir() / FACE_MODEL, help="our face model")
    parser.add_argument("--dataset", default="fiw+celeba", help="whose validation identities calibrate the reference")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    command = "python benchmarks/lfw_reference.py " + " ".join(sys.argv[1:])

    pairs = select_lfw_pairs(faces_root(), args.folds, args.pairs_per_fold)
    paths = sorted({p for a, b, _, _ in pairs for p in (a, b)})
    start = time.perf_counter()
    align_images(paths, "lfw", reference=True)  # one detection per image feeds both models (cached)
    align_s = time.perf_counter() - start
    calibration = calibrate_model(ReferenceModel(), args.dataset)
    results = {"reference": evaluate_lfw(ReferenceModel(), None, args.folds, args.pairs_per_fold,
                                         calibration["threshold"])}
    if checkpoint_paths(args.checkpoint)[0].exists():
        model, card = load_checkpoint(args.checkpoint)
        ours = card["metrics"].get("calibration", {})
        results["arcface"] = evaluate_lfw(model, None, args.folds, args.pairs_per_fold, ours.get("threshold"),
                                          ours.get("cohort_size", 0))
    report = {
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": {**hardware(), "load_avg_1min": os.getloadavg()[0]},
        "images": len(paths),
        "align_and_describe_s": round(align_s, 1),  # alignment + dlib descriptors; ~0 when already cached
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.pairs_per_fold is None:  # whole folds only: a threshold from a handful of pairs is not worth shipping
        card = shipped_dir() / REFERENCE_CARD
        card.parent.mkdir(parents=True, exist_ok=True)
        fields = {k: results["reference"][k] for k in CARD_KEYS}
        card.write_text(json.dumps({**fields, "calibration": calibration, "command": command,
                                    "created": report["created"]}, indent=2) + "\n")
    for name, metrics in results.items():
        print(name, {k: metrics.get(k) for k in CARD_KEYS if k != "model"}, flush=True)
    if args.folds is None and args.pairs_per_fold is None:
        roc_figure(results, REPO / "docs" / "lfw_roc.png")


def roc_figure(results: dict, path: Path) -> None:
    """Both models' LFW ROC curves (TAR against FAR, log FAR) with their thresholds' operating points."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no ROC figure", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"arcface": "ours (ArcFace)", "reference": "dlib ResNet (reference)"}
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    for name, metrics in results.items():
        far, tar = metrics["lfw_roc"]["far"], metrics["lfw_roc"]["tar"]
        line, = ax.plot([max(f, 1e-4) for f in far], tar,
                        label=f"{titles[name]}: {100 * metrics['lfw_accuracy']:.2f}%, "
                              f"EER {100 * metrics['lfw_eer']:.2f}%")
        ax.plot(max(metrics["lfw_far_at_threshold"], 1e-4), 1 - metrics["lfw_frr_at_threshold"], "o",
                color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_xlabel("false accept rate (different people accepted)")
    ax.set_ylabel("true accept rate")
    ax.set_title("LFW View-2, 6,000 pairs (dots: validation thresholds)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
