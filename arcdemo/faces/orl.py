"""ORL (the AT&T "Database of Faces"): 40 people × 10 photos, aligned like every face here, as a closed set.

Photos 1-7 of each person train and photos 8-10 test, so the test photos are of known people but never seen. The
photos are aligned once through the face pipeline (detect, 5-point warp to 112 px) and cached like LFW.
"""

from __future__ import annotations

from pathlib import Path

import torch

from arcdemo.data import DatasetMissingError, Split, register_augmenter, register_reader
from arcdemo.faces.augment import augment_faces
from arcdemo.faces.data import NO_FACE, align_images, faces_root

PEOPLE = 40
TRAIN_PHOTOS = 7  # photos 1-7 of each person; 8-10 are the test split


def orl_paths(folder: Path | None = None) -> list[Path]:
    """Every ORL photo, person by person (s1 … s40), photo 1 … 10 within each."""
    folder = folder or faces_root() / "orl"
    paths = sorted(folder.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    people = {p.parent.name for p in paths}
    if len(people) != PEOPLE:
        raise DatasetMissingError(
            f"ORL's 40 people are not under {folder.resolve()} ({len(people)} found): put its s1 … s40 folders of "
            ".pgm photos there (the AT&T Database of Faces), or point ARCDEMO_DATA_ROOT at a data root that has "
            "faces/orl")
    return paths


@register_reader("orl")
def orl_split(split: str, **_: object) -> Split:
    """"train" (photos 1-7) or "test" (8-10) of ORL as aligned 112 px crops; a photo without a face is left out."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; ORL has train and test")
    paths = orl_paths()
    aligned = align_images(paths, "orl")
    rows = [i for i, path in enumerate(paths)
            if (int(path.stem) <= TRAIN_PHOTOS) == (split == "train") and aligned.detection[i] != NO_FACE]
    labels = torch.tensor([int(paths[i].parent.name[1:]) - 1 for i in rows], dtype=torch.int64)
    names = tuple(f"s{i}" for i in range(1, PEOPLE + 1))
    return Split(aligned.crops[torch.tensor(rows, dtype=torch.int64)], labels, names)


register_augmenter("orl")(augment_faces)
