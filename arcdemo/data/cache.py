"""The tensor cache: a decoded split saved as safetensors, written atomically, never trusted when damaged."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from arcdemo.data.core import Split, cache_dir, data_root


def cached_split(dataset: str, split: str, read: Callable[[str], Split]) -> Split:
    """``read(split)`` decoded once per data root, then read back from ``cache_dir()``."""
    source = data_root().resolve()
    path = cache_dir() / f"{dataset}-{split}-{stable_key(str(source))}.safetensors"
    cached = read_cached_split(path)
    if cached is not None:
        return cached
    result = read(split)
    write_cached_split(path, result)
    return result


def read_cached_split(path: Path) -> Split | None:
    """A split cached by :func:`write_cached_split`, or None; a truncated or foreign file is deleted, never trusted."""
    if not path.exists():
        return None
    try:
        tensors = load_file(path)
        names = tensors.pop("class_names").numpy().tobytes().decode().split("\n")
        return Split(tensors["images"], tensors["labels"], tuple(names))
    except Exception:
        path.unlink(missing_ok=True)
        return None


def write_cached_split(path: Path, split: Split) -> None:
    """Write atomically (temporary file + rename); an unwritable cache only costs decode time next run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = torch.frombuffer(bytearray("\n".join(split.class_names).encode()), dtype=torch.uint8)
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"images": split.images.contiguous(), "labels": split.labels, "class_names": names}, temporary)
        temporary.replace(path)
    except OSError:
        pass


def stable_key(text: str) -> str:
    """Short digest (of the data root, of the alignment code) so caches of different sources never mix."""
    return hashlib.sha1(text.encode()).hexdigest()[:10]
