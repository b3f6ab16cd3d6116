"""Decoding the CIFAR-10 test folder (10,000 WebP files): Pillow (what ``data.decode_image_file`` uses) against
torchvision's deprecated ``io.decode_image``, and TorchCodec when it is installed and can decode images here.

    .venv/bin/python benchmarks/decode_speed.py [--repeats 3]

Alternating passes, median seconds per pass; every decoder's pixels are compared with Pillow's.
Writes benchmarks/results/decode_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo.checkpoints import hardware  # noqa: E402
from arcdemo.data import data_root, decode_image_file  # noqa: E402


def torchvision_decoder():  # noqa: ANN201
    from torchvision.io import ImageReadMode, decode_image

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return lambda path: decode_image(str(path), mode=ImageReadMode.RGB)


def torchcodec_decoder():  # noqa: ANN201
    """TorchCodec's image path, or None where it is missing or cannot load (it needs FFmpeg's libraries)."""
    try:
        from torchcodec.decoders import decode_image  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - any import failure means "not available here"
        return None
    return lambda path: decode_image(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = sorted((data_root() / "cifar10" / "test").glob("*/*.webp"))
    decoders = {"pillow": lambda path: decode_image_file(path, 3), "torchvision.io": torchvision_decoder()}
    codec = torchcodec_decoder()
    if codec is not None:
        decoders["torchcodec"] = codec
    reference = [decode_image_file(path, 3) for path in files[:200]]
    times: dict[str, list[float]] = {name: [] for name in decoders}
    identical = {}
    for name, decode in decoders.items():
        identical[name] = all(torch.equal(decode(path), ref) for path, ref in zip(files[:200], reference))
    for _ in range(args.repeats):
        for name, decode in decoders.items():
            started = time.perf_counter()
            for path in files:
                decode(path)
            times[name].append(time.perf_counter() - started)
    result = {
        "images": len(files), "repeats": args.repeats, "torchcodec": "measured" if codec else "not installed here",
        "median_s": {name: round(statistics.median(values), 2) for name, values in times.items()},
        "runs_s": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "same_pixels_as_pillow_on_200": identical, "hardware": hardware(),
        "command": "python benchmarks/decode_speed.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    print({name: f"{len(files) / statistics.median(values):.0f} img/s" for name, values in times.items()})
    (REPO / "benchmarks" / "results" / "decode_speed.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
