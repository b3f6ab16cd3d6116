"""The built-in datasets, MNIST and CIFAR-10, read from the data root (downloaded when missing) and cached."""

from __future__ import annotations

import gzip
import struct
import tarfile
from pathlib import Path

import numpy as np
import torch

from arcdemo.catalog import CIFAR10_CLASSES
from arcdemo.data.cache import cached_split
from arcdemo.data.core import Split, data_root, missing_error, register_reader
from arcdemo.data.folders import read_image_folder

MNIST_FILES = {  # file → md5 (the values torchvision checks)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR10_BINARY = ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array, checking the header against the payload size."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    payload = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, payload has {payload.size} bytes")
    return payload.reshape(dims)

def _download_mnist(raw: Path) -> None:
    from torchvision.datasets.utils import download_url

    raw.mkdir(parents=True, exist_ok=True)
    for name, md5 in MNIST_FILES.items():
        download_url(MNIST_MIRROR + name, str(raw), filename=name, md5=md5)


def _read_mnist(split: str) -> Split:
    raw = data_root() / "MNIST" / "raw"
    prefix = "train" if split == "train" else "t10k"
    images_path, labels_path = raw / f"{prefix}-images-idx3-ubyte.gz", raw / f"{prefix}-labels-idx1-ubyte.gz"
    if not (images_path.exists() and labels_path.exists()):
        try:
            _download_mnist(raw)
        except Exception as error:  # offline, read-only root, bad checksum: all mean "not available here"
            raise missing_error("MNIST", raw) from error
    images = torch.from_numpy(read_idx(images_path).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
    return Split(images, labels, tuple(str(i) for i in range(10)))


def _read_cifar10_binary(archive: Path, split: str) -> Split:
    """Parse the official binary release (1 label byte + 3072 pixel bytes per record): no pickles."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    chunks = []
    with tarfile.open(archive) as tar:
        for name in names:
            member = tar.extractfile(f"cifar-10-batches-bin/{name}")
            chunks.append(np.frombuffer(member.read(), np.uint8).reshape(-1, 3073))
    records = np.concatenate(chunks)
    images = torch.from_numpy(records[:, 1:].copy()).view(-1, 3, 32, 32)
    return Split(images, torch.from_numpy(records[:, 0].astype(np.int64)), CIFAR10_CLASSES)


def _read_cifar10(split: str) -> Split:
    folder = data_root() / "cifar10" / split
    if folder.is_dir():
        result = read_image_folder(folder, size=32)
        if result.class_names != CIFAR10_CLASSES:
            raise ValueError(f"{folder} has classes {result.class_names}, expected the CIFAR-10 ones")
        return result
    archive = data_root() / "cifar-10-binary.tar.gz"
    try:
        if not archive.exists():
            from torchvision.datasets.utils import download_url

            download_url(CIFAR10_BINARY[0], str(archive.parent), filename=archive.name, md5=CIFAR10_BINARY[1])
        return _read_cifar10_binary(archive, split)
    except Exception as error:
        raise missing_error("CIFAR-10", folder) from error


@register_reader("mnist")
def read_mnist_split(split: str, **_: object) -> Split:
    return cached_split("mnist", split, _read_mnist)


@register_reader("cifar10")
def read_cifar10_split(split: str, **_: object) -> Split:
    return cached_split("cifar10", split, _read_cifar10)
