"""Image folders: a user's class folders (planned, split reproducibly, decoded at one side) and plain ImageFolders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arcdemo.catalog import IMAGE_FOLDER, IMAGE_SUFFIXES
from arcdemo.data.augment import centre_square
from arcdemo.data.core import DatasetMissingError, Split, register_reader


def decode_image_file(path: Path, channels: int) -> torch.Tensor:
    """Decode one image file to uint8 (C, H, W) with Pillow, converting to ``channels`` (1 or 3).

    Pillow reads every format here (torchvision's decoders skip PGM/TIFF/GIF/BMP), and decoding is paid once per
    split because decoded splits are cached; ``benchmarks/decode_speed.py`` compares the decoders."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def read_image_folder(folder: Path, size: int, channels: int = 3) -> Split:
    """Read an ImageFolder (``<folder>/<class>/<image>``; classes sorted give label indices) into one tensor.

    Images not already ``size``×``size`` are resized (antialiased bilinear) so the split is one tensor.
    """
    class_names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if not class_names:
        raise DatasetMissingError(f"{folder} has no class folders")
    files = [(path, label) for label, name in enumerate(class_names) for path in _image_files(folder / name)]
    if not files:
        raise DatasetMissingError(f"{folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    return _decode_files(files, class_names, size, channels)


# A user's folder: the shorter side of its images (median) becomes the input side, within these bounds.
FOLDER_IMAGE_SIDES = (16, 64)
HELD_OUT_FRACTION = 0.2


class ImageFolderError(ValueError):
    """A user's image folder cannot be trained on; the message says what to change."""


@dataclass(frozen=True)
class FolderLayout:
    """What a user's image folder holds, decided before decoding: files per split, classes, input side, channels."""

    files: dict[str, list[tuple[Path, int]]]  # split → (image file, label)
    class_names: tuple[str, ...]
    image_size: int
    channels: int
    held_out: str  # how the test split was made, for the card

    def split(self, name: str) -> Split:
        return _decode_files(self.files[name], self.class_names, self.image_size, self.channels)


def image_folder_layout(directory: str | Path, image_size: int = 0) -> FolderLayout:
    """Plan the splits of a user's ImageFolder: ``train/`` and ``test/`` (or ``val/``) folders of class folders
    when present, else class folders whose images are split reproducibly (``HELD_OUT_FRACTION`` of each class by
    a hash of the file name, so adding images never moves the old ones). Any image size and mode: one channel when
    every image is greyscale, else RGB; side ``image_size`` or the median shorter side within ``FOLDER_IMAGE_SIDES``.
    """
    from PIL import Image

    root = Path(directory)
    if not root.is_dir():
        raise ImageFolderError(f"{root} is not a folder: give a folder with one sub-folder of images per class")
    test_dir = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes = _class_folders(root / "train")
        if _class_folders(test_dir) != classes:
            raise ImageFolderError(f"{root.name}/train and {root.name}/{test_dir.name} must hold the same classes")
        files = {"train": _labelled_files(root / "train", classes), "test": _labelled_files(test_dir, classes)}
        held_out = f"the {test_dir.name}/ folder"
    else:
        classes = _class_folders(root)
        files = {"train": [], "test": []}
        for label, name in enumerate(classes):
            ordered = sorted(_image_files(root / name), key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
            if len(ordered) < 2:
                raise ImageFolderError(
                    f"class {name!r} has {len(ordered)} image{'s' * (len(ordered) != 1)}: each class needs at least "
                    "2 (one to train on, one to test)"
                )
            cut = max(1, round(HELD_OUT_FRACTION * len(ordered)))
            files["test"] += [(path, label) for path in ordered[:cut]]
            files["train"] += [(path, label) for path in ordered[cut:]]
        held_out = f"{HELD_OUT_FRACTION:.0%} of each class, chosen by a hash of the file name"
    for split, entries in files.items():
        counts = np.bincount([label for _, label in entries], minlength=len(classes))
        if (counts == 0).any():
            empty = classes[int(np.argmin(counts))]
            raise ImageFolderError(f"class {empty!r} has no images in the {split} split")
    modes, sides = set(), []
    for path, _ in files["train"] + files["test"]:
        try:
            with Image.open(path) as image:
                modes.add(image.mode)
                sides.append(min(image.size))
        except Exception:  # noqa: BLE001 - whatever Pillow raises, the file is not an image it can read
            raise ImageFolderError(f"{path.parent.name}/{path.name} is not an image Pillow can read") from None
    low, high = FOLDER_IMAGE_SIDES
    size = image_size or int(np.clip(np.median(sides), low, high))
    channels = 1 if modes <= {"1", "L", "LA", "I", "I;16", "F", "P"} and not _has_colour(files, modes) else 3
    return FolderLayout(files, classes, size, channels, held_out)


def _has_colour(files: dict[str, list[tuple[Path, int]]], modes: set[str]) -> bool:
    """Palette images may hold colour: look at one (greyscale palettes are common in old datasets)."""
    if "P" not in modes:
        return False
    from PIL import Image

    for path, _ in files["train"]:
        with Image.open(path) as image:
            if image.mode == "P":
                rgb = np.asarray(image.convert("RGB"))
                return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
    return False


def _class_folders(folder: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise ImageFolderError(f"{folder.name} needs at least 2 class folders (one per class), found {found}")
    return classes


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _labelled_files(folder: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    return [(path, label) for label, name in enumerate(classes) for path in _image_files(folder / name)]


def _decode_files(files: list[tuple[Path, int]], class_names: tuple[str, ...], size: int, channels: int) -> Split:
    images = [centre_square(decode_image_file(path, channels), size) for path, _ in files]
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return Split(torch.stack(images), labels, class_names)


def channel_statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] units: the normalisation of a model of a user's folder."""
    x = images.float().div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(round(float(v), 4) for v in x.mean(1)), tuple(round(max(float(v), 1e-3), 4) for v in x.std(1))



@register_reader(IMAGE_FOLDER)
def read_folder_split(split: str, *, data_dir: str = "", image_size: int = 0) -> Split:
    return image_folder_layout(data_dir, image_size).split(split)
