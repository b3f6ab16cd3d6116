"""How many cached augmented views a neck on the frozen face network needs: ORL's shipped 3-D recipe
(``--preset orl-arcface-3d``: 50 epochs of 8 steps of 32 photos) with the face embeddings of 8, 16 or 32 views of
each training photo computed once, against the frozen network run on every batch's fresh augmentation (0).

    python benchmarks/neck_views.py             # ~6 min on 2 CPU cores, after ORL is aligned (cached)

The frozen face network is the shipped ``faces-arcface``; the results name its preset.

Per setting, seeds 0-2: the held-out accuracy (photos 8-10 of the 40 people) and the run's wall time (the whole
``train()``, evaluations included). ``TrainConfig.neck_views`` was chosen from this table.
Writes benchmarks/results/neck_views.json.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402

from arcdemo.catalog import FACE_MODEL  # noqa: E402
from arcdemo.checkpoints import find_checkpoint, hardware, read_card  # noqa: E402
from arcdemo.data import read_split  # noqa: E402
from arcdemo.presets import preset  # noqa: E402
from arcdemo.train import DoneEvent, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "neck_views.json"
VIEWS = (0, 8, 16, 32)
SEEDS = (0, 1, 2)


def main() -> None:
    data = read_split("orl", "train"), read_split("orl", "test")  # read (and aligned) once, outside the timings
    rows = []
    for views in VIEWS:
        accuracies, seconds = [], []
        for seed in SEEDS:
            started = time.perf_counter()
            done = [e for e in train(preset("orl-arcface-3d", neck_views=views, seed=seed, sample_every=0), data=data)
                    if isinstance(e, DoneEvent)][-1]
            seconds.append(time.perf_counter() - started)
            accuracies.append(done.evaluation.metrics["accuracy"])
            print(f"views {views:>2}  seed {seed}  held-out {accuracies[-1]:.4f}  {seconds[-1]:.1f} s", flush=True)
        rows.append({"neck_views": views, "held_out_accuracy": accuracies, "seconds": seconds,
                     "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
                     "seconds_median": float(np.median(seconds))})
    for row in rows:
        print(f"views {row['neck_views']:>2}: {100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}%"
              f"  median {row['seconds_median']:.1f} s")
    OUT.write_text(json.dumps({
        "what": __doc__.split("\n\n")[0], "preset": "orl-arcface-3d", "seeds": list(SEEDS), "rows": rows,
        "face_model": {"name": FACE_MODEL, "preset": read_card(find_checkpoint(FACE_MODEL))["preset"]},
        "hardware": hardware(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
