"""Inference speed (images/s) of each kind of shipped model against the batch size ``EmbeddingModel.embed`` uses.

    python benchmarks/embed_batch.py [--images 512] [--repeats 3] [--batches 4 8 16 32 64 128 256] [--models NAME ...]

For the shipped MNIST, CIFAR-10 and face models: ``embed`` over ``--images`` random uint8 images of the model's input
size, with the test-time views its card evaluates with (faces: flip; CIFAR-10: flip + shift; MNIST: shift), at each
batch size; median of ``--repeats`` after one warm-up. Evaluation, calibration and the face benchmarks all go through
``embed``, so its batch size is their speed. Writes benchmarks/results/embed_batch.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from arcdemo.checkpoints import find_checkpoint, hardware, load_checkpoint

MODELS = {"mnist-arcface-128d": dict(shift_tta=True), "cifar10-arcface-512d": dict(flip_tta=True, shift_tta=True),
          "faces-arcface": dict(flip_tta=True)}
OUT = Path(__file__).resolve().parent / "results" / "embed_batch.json"


def images_per_second(name: str, batches: list[int], count: int, repeats: int) -> dict[int, float]:
    model, _ = load_checkpoint(find_checkpoint(name))
    spec = model.spec
    images = torch.randint(0, 256, (count, spec.in_channels, spec.image_size, spec.image_size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    speeds = {}
    for batch in batches:
        model.embed(images[: 2 * batch], batch_size=batch, **MODELS[name])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.embed(images, batch_size=batch, **MODELS[name])
            times.append(time.perf_counter() - start)
        speeds[batch] = count / statistics.median(times)
        print(f"{name:22s} batch {batch:>3}: {speeds[batch]:7.0f} images/s", flush=True)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    results = {name: images_per_second(name, args.batches, args.images, args.repeats) for name in args.models}
    OUT.write_text(json.dumps({
        "command": " ".join(["python benchmarks/embed_batch.py", *sys.argv[1:]]), "images": args.images,
        "repeats": args.repeats,
        "images_per_second": results, "threads": torch.get_num_threads(), "hardware": hardware(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
