"""Whole-process CLI timings on this machine, and the side-by-side race against the reference
MNIST ArcFace script (../shared/reference/arcface_mnist_reference.py).

    python benchmarks/core_speed.py                 # all three measurements (~8 min on a 2-core CPU)
    python benchmarks/core_speed.py --only race     # just the reference race (ours 2×5 runs, reference 3)

Writes benchmarks/results/core_speed.json. Each run is a fresh process (imports, data load and evaluation
included), so the times are what a user waits for. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from arcdemo.checkpoints import hardware

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARCDEMO_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
REFERENCE = REPO.parent / "shared" / "reference" / "arcface_mnist_reference.py"
OUT = REPO / "benchmarks" / "results" / "core_speed.json"


def timed(command: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "ARCDEMO_DATA_ROOT": str(DATA)}
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stdout.strip().splitlines()


def ours(dim: int, epochs: int, tmp: Path, *extra: str, repeats: int = 1) -> dict:
    command = [sys.executable, "-m", "arcdemo", "train", "--dataset", "mnist", "--loss", "arcface", "--dim", str(dim),
               "--epochs", str(epochs), "--seed", "0", "--quiet", *extra,
               "--out", str(tmp / f"mnist-{dim}d-{epochs}e{''.join(extra)}")]
    runs = [timed(command) for _ in range(repeats)]
    walls = [round(seconds, 2) for seconds, _ in runs]
    metrics = json.loads(runs[-1][1][-1])
    return {"command": " ".join(command[1:]), "wall_s": round(statistics.median(walls), 1), "runs_s": walls,
            "accuracy": metrics["accuracy"]}


def reference_to_95(repeats: int) -> dict:
    """The reference program, stopped as soon as an epoch ends at ≥ 95% test accuracy; median of ``repeats``."""
    command = [sys.executable, str(REFERENCE), str(DATA / "MNIST" / "raw"), "15", "0.95"]
    runs = [timed(command) for _ in range(repeats)]
    walls = [round(seconds, 1) for seconds, _ in runs]
    epochs = [json.loads(line) for line in runs[-1][1] if line.startswith("{")]
    reached = [e for e in epochs if e["test_accuracy"] >= 0.95]
    return {"command": "python ../shared/reference/arcface_mnist_reference.py MNIST/raw 15 0.95",
            "wall_s": round(statistics.median(walls), 1), "runs_s": walls, "epochs": epochs,
            "reached_95": bool(reached)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("3d", "128d", "race"))
    args = parser.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "arcdemo-bench"
    tmp.mkdir(parents=True, exist_ok=True)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["hardware"] = {**hardware(), "python": platform.python_version()}
    if args.only in (None, "3d"):
        results["mnist_arcface_3d_3_epochs"] = ours(3, 3, tmp)
        print("3-D, 3 epochs:", results["mnist_arcface_3d_3_epochs"], flush=True)
    if args.only in (None, "128d"):
        results["mnist_arcface_128d_3_epochs"] = ours(128, 3, tmp)
        print("128-D, 3 epochs:", results["mnist_arcface_128d_3_epochs"], flush=True)
    if args.only in (None, "race"):
        # the machine is shared and noisy (±0.7 s on a 9 s run): medians of several fresh processes on each side
        race = {"ours_128d_1_epoch": ours(128, 1, tmp, repeats=5),
                "ours_128d_1_epoch_bf16": ours(128, 1, tmp, "--amp", "on", repeats=5),
                "reference": reference_to_95(repeats=3)}
        race["speedup"] = round(race["reference"]["wall_s"] / race["ours_128d_1_epoch"]["wall_s"], 1)
        race["speedup_bf16"] = round(race["reference"]["wall_s"] / race["ours_128d_1_epoch_bf16"]["wall_s"], 1)
        results["race_to_95"] = race
        print("race:", {k: (v if k.startswith("speedup") else v["wall_s"]) for k, v in race.items()}, flush=True)
    results["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    OUT.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
