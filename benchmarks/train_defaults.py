"""Choosing the Train tab's defaults on held-out training digits, never on the test set.

    .venv/bin/python benchmarks/train_defaults.py

Each candidate (epochs, margin warm-up, learning rate; MNIST, ArcFace m = 0.5, s = 30, 3-D, as the tab trains it,
live snapshots included) trains on the first 55,000 training digits and is scored on the last 5,000, seed 0.
The wall time is scaled by 60/55 to the tab's full training set; the default is the most accurate candidate
expected to finish within the 60 s target here. The test number
comes from ``benchmarks/app_latency.py --train`` afterwards, once. Writes benchmarks/results/train_defaults.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo.checkpoints import hardware  # noqa: E402
from arcdemo.data import Split, load_split  # noqa: E402
from arcdemo.train import DoneEvent, train  # noqa: E402
from arcdemo.ui.tabs.train import TrainSettings, page_values, training_config  # noqa: E402

CANDIDATES = [  # (epochs, margin warm-up steps (-1: one epoch), peak learning rate)
    (1, 150, 0.1), (2, 150, 0.1), (3, 150, 0.1), (2, -1, 0.1), (3, -1, 0.1), (3, 150, 0.2),
]
BUDGET_S = 60.0


def main() -> None:
    digits = load_split("mnist", "train")
    fit = Split(digits.images[:55_000], digits.labels[:55_000], digits.class_names)
    held_out = Split(digits.images[55_000:], digits.labels[55_000:], digits.class_names)
    rows = []
    for epochs, warmup, lr in CANDIDATES:
        settings = {**page_values(), "epochs": epochs, "warmup_steps": warmup, "lr": lr}
        config = training_config(TrainSettings(**settings))
        torch.manual_seed(0)
        started = time.perf_counter()
        done = [event for event in train(config, data=(fit, held_out)) if isinstance(event, DoneEvent)][-1]
        wall = time.perf_counter() - started
        row = {"epochs": epochs, "warmup_steps": warmup, "lr": lr,
               "held_out_accuracy": done.evaluation.metrics["accuracy"], "wall_s": round(wall, 1),
               "expected_full_wall_s": round(wall * 60 / 55, 1)}
        rows.append(row)
        print(row, flush=True)
    fitting = [row for row in rows if row["expected_full_wall_s"] <= BUDGET_S] or rows
    chosen = max(fitting, key=lambda row: (row["held_out_accuracy"], -row["expected_full_wall_s"]))
    print(f"chosen: {chosen}")
    out = {"candidates": rows, "chosen": chosen, "budget_s": BUDGET_S, "hardware": hardware(),
           "command": "python benchmarks/train_defaults.py",
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (REPO / "benchmarks" / "results" / "train_defaults.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
