"""Training throughput (images/s) of the face recipe at several input sizes: what a CPU epoch on FIW costs.

    python benchmarks/face_throughput.py [--steps 5] [--sizes 112 96 64] [--widths 32] [--threads 2]

One step = face augmentation (``faces.augment.augment_faces``) + MobileFaceNet forward/backward + ArcFace head over
the 2,037 FIW training identities + SGD, batch 128, channels-last (the trainer's CPU setting), on random uint8
faces. Median of ``--steps`` timed steps after 2 warm-up steps. Writes benchmarks/results/face_throughput.json.

On a machine shared with another job, try ``--threads 1``: each op's thread barrier otherwise waits for a time slice.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from arcdemo.data import normalise
from arcdemo.faces.augment import augment_faces
from arcdemo.model import EmbeddingModel, ModelSpec

FIW_TRAIN_IDENTITIES = 2037  # identities left for training after the held-out families (faces.data.source_split)
FIW_TRAIN_IMAGES = 10471
OUT = Path(__file__).resolve().parent / "results" / "face_throughput.json"


def images_per_second(size: int, width: int, dim: int, steps: int, batch: int = 128) -> float:
    torch.manual_seed(0)
    spec = ModelSpec("faces", "mobilefacenet", width, dim, 3, size, tuple(map(str, range(FIW_TRAIN_IDENTITIES))),
                     "arcface", 0.5, 32.0, extra={"input_size": size})
    model = EmbeddingModel(spec).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, FIW_TRAIN_IDENTITIES, (batch,))
    generator = torch.Generator().manual_seed(0)

    def step() -> float:
        start = time.perf_counter()
        x = normalise(augment_faces(images, generator), "faces").contiguous(memory_format=torch.channels_last)
        loss, _ = model(x, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    for _ in range(2):
        step()
    return batch / statistics.median(step() for _ in range(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 96, 64])
    parser.add_argument("--widths", type=int, nargs="+", default=[32])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for width in args.widths:
        for size in args.sizes:
            rate = images_per_second(size, width, args.dim, args.steps)
            rows.append({"backbone": "mobilefacenet", "width": width, "input": size, "dim": args.dim,
                         "images_per_s": round(rate, 1), "epoch_min": round(FIW_TRAIN_IMAGES / rate / 60, 1)})
            print(rows[-1], flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {"hardware": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(), "load_avg_1min": load},
              "method": f"median of {args.steps} steps after 2 warm-up, batch 128, channels-last, with augmentation",
              "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
