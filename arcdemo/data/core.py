"""Splits as whole uint8 tensors, where data lives, and the readers registered by dataset name.

A dataset is a ``catalog.DatasetInfo`` plus one reader registered here under its name. ``read_split`` imports the
module the catalog names for it on first use, so a dataset defined outside ``data`` (the face sets in
``arcdemo.faces.data``) registers itself without ``data`` or the trainer importing it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from arcdemo import catalog


class DatasetMissingError(FileNotFoundError):
    """The dataset is not under the data root and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images (N, C, H, W), int64 labels (N,), class names.

    ``teacher``: optionally a reference model's embedding per sample (N, D), NaN rows where it has none; the
    trainer's relational distillation reads it (face sets carry dlib's descriptors).
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    teacher: torch.Tensor | None = None

    def _rows(self, index: torch.Tensor, labels: torch.Tensor, class_names: tuple[str, ...]) -> Split:
        teacher = None if self.teacher is None else self.teacher[index.to(self.teacher.device)]
        return Split(self.images[index.to(self.images.device)], labels, class_names, teacher)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        teacher = None if self.teacher is None else self.teacher.to(device)
        return Split(self.images.to(device), self.labels.to(device), self.class_names, teacher)

    def subset(self, count: int, seed: int = 0) -> Split:
        """A class-balanced-in-expectation random subset of ``count`` samples (whole split if count ≥ N)."""
        if count >= len(self):
            return self
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:count].sort().values
        return self._rows(index, self.labels[index.to(self.labels.device)], self.class_names)

    def classes(self, keep: list[int]) -> Split:
        """Only the samples of the classes ``keep`` (indices, in order), relabelled 0..len(keep)-1."""
        relabel = torch.full((len(self.class_names),), -1, dtype=torch.int64)
        relabel[keep] = torch.arange(len(keep))
        labels = relabel[self.labels.cpu()]
        index = torch.nonzero(labels >= 0).flatten()
        return self._rows(index, labels[index], tuple(self.class_names[i] for i in keep))


def data_root() -> Path:
    """The data root: ``$ARCDEMO_DATA_ROOT`` or ``./data``."""
    return Path(os.environ.get("ARCDEMO_DATA_ROOT", "data")).expanduser()


def cache_dir() -> Path:
    """Where decoded tensors are cached (the data root may be read-only): ``$ARCDEMO_CACHE_DIR`` or ~/.cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arcdemo"
    return Path(os.environ.get("ARCDEMO_CACHE_DIR", default)).expanduser()

Reader = Callable[..., "Split"]  # (split, *, data_dir="", image_size=0) -> Split
READERS: dict[str, Reader] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    """Decorator: ``reader(split, *, data_dir, image_size)`` reads the split of dataset ``name`` (a catalog entry)."""

    def register(reader: Reader) -> Reader:
        READERS[name] = reader
        return reader

    return register


def read_split(dataset: str, split: str, data_dir: str = "", image_size: int = 0) -> Split:
    """A split of any dataset in the catalog, through its registered reader (``data_dir``: a user's folder)."""
    info = catalog.dataset(dataset)
    if split not in info.splits:
        raise ValueError(f"unknown split {split!r} of {dataset}; choose one of {', '.join(info.splits)}")
    if dataset not in READERS:
        importlib.import_module(info.reader)
    return READERS[dataset](split, data_dir=data_dir, image_size=image_size)


def evaluation_split(dataset: str) -> str:
    """The split a run on ``dataset`` is evaluated on: "test", or a face set's held-out identities "val"."""
    return catalog.dataset(dataset).splits[1]


def model_domain(dataset: str) -> str:
    """What a model trained on ``dataset`` is for (``ModelSpec.dataset``): its normalisation and default backbone."""
    return catalog.dataset(dataset).model_domain


def missing_error(name: str, path: Path) -> DatasetMissingError:
    return DatasetMissingError(
        f"{name} not found at {path.resolve()} and it could not be downloaded; "
        f"point ARCDEMO_DATA_ROOT at a folder that holds it (now {data_root().resolve()})"
    )
