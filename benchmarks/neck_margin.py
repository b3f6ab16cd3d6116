"""Which ArcFace margin suits a neck on the frozen face model? Chosen on validation photos, not on the test photos.

    python benchmarks/neck_margin.py        # ~12 min on 2 CPU cores, ORL aligned (cached)

ORL's recipe (``--preset orl-arcface-3d``, what ``--dataset orl --loss arcface`` picks: 3-D, batch 32, 50 epochs,
warm-up 100, s = 8, AdamW 0.02, weight decay 0.5) trains on photos 1-6 of each person and is scored on photo 7
(40 validation photos); photos 8-10, the shipped model's test split, are not read. Each margin, three seeds.
Writes benchmarks/results/neck_margin.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import torch  # noqa: E402

from arcdemo.checkpoints import hardware  # noqa: E402
from arcdemo.data import Split, read_split  # noqa: E402
from arcdemo.presets import PRESETS  # noqa: E402
from arcdemo.train import DoneEvent, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "neck_margin.json"
MARGINS = (0.1, 0.2, 0.3, 0.5)
SEEDS = (0, 1, 2)
VALIDATION_PHOTO = 6  # the 7th training photo of each person (0-based within the person's training photos)


def validation_split(split: Split) -> tuple[Split, Split]:
    """(photos 1-6, photo 7) of each person in ORL's training split (rows are person by person, photo by photo)."""
    seen: dict[int, int] = {}
    held = []
    for label in split.labels.tolist():
        held.append(seen.get(label, 0) == VALIDATION_PHOTO)
        seen[label] = seen.get(label, 0) + 1
    held_out = torch.tensor(held)
    return (Split(split.images[~held_out], split.labels[~held_out], split.class_names),
            Split(split.images[held_out], split.labels[held_out], split.class_names))


def validation_accuracy(margin: float, seed: int, data: tuple[Split, Split]) -> tuple[float, float]:
    config = replace(PRESETS["orl-arcface-3d"], margin=margin, seed=seed, sample_every=0)
    for event in train(config, data=data):
        if isinstance(event, DoneEvent):
            return float(event.evaluation.metrics["accuracy"]), event.wall_time_s
    raise RuntimeError("training ended without a result")


def main() -> None:
    start = time.time()
    data = validation_split(read_split("orl", "train"))
    rows = []
    for margin in MARGINS:
        runs = [validation_accuracy(margin, seed, data) for seed in SEEDS]
        accuracies = [100 * accuracy for accuracy, _ in runs]
        rows.append({"margin": margin, "validation_accuracy": accuracies,
                     "mean": statistics.mean(accuracies), "std": statistics.stdev(accuracies),
                     "seconds_per_run": statistics.median(seconds for _, seconds in runs)})
        print(f"m = {margin}: {rows[-1]['mean']:.2f} ± {rows[-1]['std']:.2f}% of {len(data[1])} validation photos "
              f"({', '.join(f'{a:.1f}' for a in accuracies)})", flush=True)
    OUT.write_text(json.dumps({
        "what": "ORL neck on the frozen face model: validation accuracy (photo 7 of each person) by ArcFace margin",
        "recipe": "orl-arcface-3d with the margin varied; trained on photos 1-6", "seeds": list(SEEDS),
        "train_photos": len(data[0]), "validation_photos": len(data[1]), "rows": rows,
        "hardware": hardware(), "minutes": round((time.time() - start) / 60, 1),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
