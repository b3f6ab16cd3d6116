"""Cheap ways to a better face verifier, measured on validation identities only (LFW is never touched here).

    python benchmarks/face_variants.py                                        # the shipped model alone (~6 min)
    python benchmarks/face_variants.py --with runs/faces-arcface-celeba-stage3  # + two-model variants (~9 min)

For one face checkpoint: the pair accuracy (10 folds), EER and TAR at FAR 1% of 6,000 validation pairs (the
trainer's protocol and pairs) when its embeddings are taken

- with flip-TTA (what the app and the card use), and with flip + 1 px shift views (4 more, ``tta_views``);
- centred: the mean unit embedding of 6,000 random *training* faces subtracted before the cosine (a common
  trick when a model's embeddings share a direction; the mean comes from training data, so nothing is fitted
  on the pairs scored);

and, with ``--with OTHER`` (a checkpoint of the same architecture, e.g. a further fine-tune of the same run):
OTHER alone, the two embeddings concatenated (an ensemble: twice the compute), and one model whose weights
(and BatchNorm statistics) are the average of the two (a "model soup": the compute of one).

Writes benchmarks/results/face_variants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from arcdemo.checkpoints import hardware, load_checkpoint, shipped_dir  # noqa: E402
from arcdemo.data import resize_images  # noqa: E402
from arcdemo.evaluate import random_pairs, unit_rows, verification_metrics  # noqa: E402
from arcdemo.faces.data import face_split  # noqa: E402
from arcdemo.faces.verify import FACE_MODEL, embed_crops  # noqa: E402
from arcdemo.model import EmbeddingModel  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "face_variants.json"


def with_shift_views(model: EmbeddingModel, crops: torch.Tensor) -> np.ndarray:
    """``embed_crops`` (what the app embeds: resized, flip-TTA) with the 1 px shift views added."""
    images = resize_images(crops, model.spec.image_size)
    return unit_rows(model.embed(images, flip_tta=True, shift_tta=True).cpu().numpy())


def averaged(first: EmbeddingModel, second: EmbeddingModel) -> EmbeddingModel:
    """One model whose floating-point weights and buffers are the mean of two of the same architecture."""
    a, b = first.state_dict(), second.state_dict()
    soup = EmbeddingModel(first.spec)
    soup.load_state_dict({k: (a[k] + b[k]) / 2 if a[k].is_floating_point() else a[k] for k in a})
    return soup.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(shipped_dir() / FACE_MODEL))
    parser.add_argument("--with", dest="other", default="", help="a second checkpoint of the same architecture")
    parser.add_argument("--centre-samples", type=int, default=6000, help="training faces behind the mean embedding")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model, card = load_checkpoint(args.checkpoint)
    dataset = card["config"]["dataset"]
    val, train = face_split(dataset, "val"), face_split(dataset, "train")
    first, second, same = random_pairs(val.labels.numpy(), 6000, 0)
    folds = np.arange(len(same)) % 10
    results: dict[str, dict] = {}

    def score(name: str, embed: Callable[[], np.ndarray]) -> np.ndarray:
        """Time ``embed`` (unit embeddings of the validation faces), score its pairs, return the embeddings."""
        start = time.perf_counter()
        unit = embed()
        seconds = time.perf_counter() - start
        m = verification_metrics(np.sum(unit[first] * unit[second], axis=1), same, folds)
        results[name] = {"val_accuracy": m["accuracy"], "val_accuracy_std": m["accuracy_std"], "val_eer": m["eer"],
                         "val_tar_at_far_1e-2": m["tar_at_far_1e-2"], "seconds": round(seconds, 1)}
        print(f"{name:34s} {100 * m['accuracy']:6.2f}%  EER {100 * m['eer']:5.2f}%  "
              f"TAR@1% {100 * m['tar_at_far_1e-2']:5.1f}%  ({seconds:.0f} s)", flush=True)
        return unit

    def centred() -> np.ndarray:
        rows = torch.from_numpy(np.random.default_rng(0).choice(len(train), args.centre_samples, replace=False))
        return unit_rows(plain - embed_crops(model, train.images[rows]).mean(0))

    plain = score("flip", lambda: embed_crops(model, val.images))
    score("flip + shift", lambda: with_shift_views(model, val.images))
    score("flip, centred on training mean", centred)
    if args.other:
        other, _ = load_checkpoint(args.other)
        other_plain = score("other, flip", lambda: embed_crops(other, val.images))
        score("both, embeddings concatenated", lambda: unit_rows(np.concatenate([plain, other_plain], 1)))
        score("weights averaged, flip", lambda: embed_crops(averaged(model, other), val.images))
    OUT.write_text(json.dumps({
        "checkpoint": args.checkpoint, "other": args.other or None, "dataset": dataset,
        "val_identities": len(val.class_names), "val_images": len(val), "val_pairs": int(len(same)),
        "centre_samples": args.centre_samples, "variants": results, "hardware": hardware(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
