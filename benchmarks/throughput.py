"""Training throughput (images/s) of each backbone + ArcFace head on this machine: NCHW vs channels-last, and
channels-last under bfloat16 autocast (``--amp on``).

    python benchmarks/throughput.py                      # writes benchmarks/results/throughput.json
    python benchmarks/throughput.py --only cifar_net     # one backbone; other rows of the file are kept

Times 10 optimiser steps of batch 128 after 3 warm-up steps, median of 3 repeats. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from arcdemo.backbones import build_backbone
from arcdemo.checkpoints import hardware
from arcdemo.heads import build_head

CASES = [("mnist_cnn", 16, 1, 28), ("mnist_cnn", 32, 1, 28), ("cifar_net", 16, 3, 32), ("cifar_net", 32, 3, 32),
         ("cifar_net", 64, 3, 32), ("mobilefacenet", 32, 3, 112)]
OUT = Path(__file__).resolve().parent / "results" / "throughput.json"


def images_per_second(
    name: str, width: int, channels: int, size: int, channels_last: bool, bf16: bool = False, batch: int = 128
) -> float:
    torch.manual_seed(0)
    model = build_backbone(name, 3, channels, width=width)
    head = build_head("arcface", 3, 10)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=memory)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = head(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    repeats = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(10):
            step()
        repeats.append(10 * batch / (time.perf_counter() - start))
    return statistics.median(repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted({case[0] for case in CASES}))
    args = parser.parse_args()
    kept = json.loads(OUT.read_text())["rows"] if args.only and OUT.exists() else []
    rows = [row for row in kept if row["backbone"] != args.only]
    for name, width, channels, size in CASES:
        if args.only and name != args.only:
            continue
        for channels_last, bf16 in ((False, False), (True, False), (True, True)):
            rate = images_per_second(name, width, channels, size, channels_last, bf16)
            rows.append({"backbone": name, "width": width, "input": f"{channels}x{size}x{size}",
                         "channels_last": channels_last, "bf16": bf16, "images_per_s": round(rate)})
            print(rows[-1], flush=True)
    OUT.write_text(json.dumps({"hardware": {**hardware(), "threads": torch.get_num_threads()},
                               "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
