"""Datasets as whole-split uint8 tensors, a tensor cache, and batched per-sample augmentation.

The training hot path never touches a Python image object: a split is one ``(N, C, H, W)`` uint8 tensor that
lives on the training device, and augmentation draws its randomness per sample on tensors (torchvision's batch
transforms would apply one crop/flip to the whole batch).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

# Face training sets (arcdemo.faces.data reads them): open-set, evaluated by verification, normalised as "faces".
FACE_DATASETS = ("fiw", "celeba", "fiw+celeba")
IMAGE_FOLDER = "imagefolder"  # a user's own class folders (read_image_folder_split); normalised by its own statistics
DATASETS = ("mnist", "cifar10", IMAGE_FOLDER, *FACE_DATASETS)
# Splits each dataset offers; the second is the one a run is evaluated on. A face set's "val" holds identities never
# seen in training: face models are judged by verification, not by classifying known people.
SPLITS: dict[str, tuple[str, str]] = {
    "mnist": ("train", "test"), "cifar10": ("train", "test"), IMAGE_FOLDER: ("train", "test"),
    **{name: ("train", "val") for name in FACE_DATASETS},
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm", ".ppm", ".gif", ".tif", ".tiff")

# The usual MNIST normalisation constants and the published CIFAR-10 train statistics.
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "faces": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # insightface's convention for aligned face crops
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

MNIST_FILES = {  # file → md5 (the values torchvision checks)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR10_BINARY = ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")


class DatasetMissingError(FileNotFoundError):
    """The dataset is not under the data root and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images (N, C, H, W), int64 labels (N,), class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device), self.class_names)

    def subset(self, count: int, seed: int = 0) -> Split:
        """A class-balanced-in-expectation random subset of ``count`` samples (whole split if count ≥ N)."""
        if count >= len(self):
            return self
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:count].sort().values
        return Split(
            self.images[index.to(self.images.device)], self.labels[index.to(self.labels.device)], self.class_names
        )

    def classes(self, keep: list[int]) -> Split:
        """Only the samples of the classes ``keep`` (indices, in order), relabelled 0..len(keep)-1."""
        relabel = torch.full((len(self.class_names),), -1, dtype=torch.int64)
        relabel[keep] = torch.arange(len(keep))
        labels = relabel[self.labels.cpu()]
        index = torch.nonzero(labels >= 0).flatten()
        return Split(self.images[index], labels[index], tuple(self.class_names[i] for i in keep))


def data_root() -> Path:
    """The data root: ``$ARCDEMO_DATA_ROOT`` or ``./data``."""
    return Path(os.environ.get("ARCDEMO_DATA_ROOT", "data")).expanduser()


def cache_dir() -> Path:
    """Where decoded tensors are cached (the data root may be read-only): ``$ARCDEMO_CACHE_DIR`` or ~/.cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arcdemo"
    return Path(os.environ.get("ARCDEMO_CACHE_DIR", default)).expanduser()


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


def _missing(name: str, path: Path) -> DatasetMissingError:
    return DatasetMissingError(
        f"{name} not found at {path.resolve()} and it could not be downloaded; "
        f"point ARCDEMO_DATA_ROOT at a folder that holds it (now {data_root().resolve()})"
    )


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
            raise _missing("MNIST", raw) from error
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
        raise _missing("CIFAR-10", folder) from error


def decode_image_file(path: Path, channels: int) -> torch.Tensor:
    """Decode one image file to uint8 (C, H, W) with Pillow, converting to ``channels`` (1 or 3).

    Pillow reads every format here; torchvision's decoders are deprecated from 0.29 and skip PGM/TIFF/GIF/BMP.
    On CIFAR-10's 10,000 test WebP files (benchmarks/decode_speed.py, same pixels): Pillow 1.66 s, TorchCodec 0.17
    1.34 s, torchvision 1.11 s. TorchCodec's gain (~2 s over all 60,000 CIFAR-10 files, paid once: decoded splits
    are cached) does not pay for a binary dependency pinned to the torch version that reads fewer formats."""
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


def load_split(dataset: str, split: str) -> Split:
    """Load a split (see ``SPLITS``) as uint8 tensors, decoding once and caching as safetensors.

    Face sets are aligned face by face and have their own cache: ``arcdemo.faces.data.face_split`` reads them.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS[dataset]:
        raise ValueError(f"unknown split {split!r} of {dataset}; choose one of {', '.join(SPLITS[dataset])}")
    if dataset in FACE_DATASETS:
        raise ValueError(f"{dataset} is a face set: read it with arcdemo.faces.data.face_split")
    if dataset == IMAGE_FOLDER:
        raise ValueError("a user's image folder has no fixed place: read it with image_folder_layout(directory)")
    source = data_root().resolve()
    cache = cache_dir() / f"{dataset}-{split}-{stable_key(str(source))}.safetensors"
    cached = read_cached_split(cache)
    if cached is not None:
        return cached
    result = _read_mnist(split) if dataset == "mnist" else _read_cifar10(split)
    write_cached_split(cache, result)
    return result


def evaluation_split(dataset: str) -> str:
    """The split a run on ``dataset`` is evaluated on: "test", or FIW's held-out identities "val"."""
    return SPLITS[dataset][1]


def model_domain(dataset: str) -> str:
    """What a model trained on ``dataset`` is for (``ModelSpec.dataset``): its normalisation and default backbone."""
    return "faces" if dataset in FACE_DATASETS else dataset


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


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (…, C, H, W) → uint8 (…, C, size, size), antialiased bilinear.

    The one resize for a smaller face model: training crops and evaluation/upload crops are all aligned at 112 px
    and shrunk by this same function, so the model never sees two different resamplings.
    """
    from torchvision.transforms.v2.functional import resize

    if tuple(images.shape[-2:]) == (size, size):
        return images
    return resize(images, [size, size], antialias=True)


def centre_square(image: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 (C, H, W) → (C, side, side): the largest centred square, antialiased resize. The one way an image of
    any shape becomes a model input, for a user's training folder and for an upload alike."""
    from torchvision.transforms.v2.functional import center_crop

    short = min(image.shape[1:])
    return resize_images(center_crop(image, [short, short]), side).contiguous()


def normalise(
    images: torch.Tensor, dataset: str, statistics: tuple[tuple[float, ...], tuple[float, ...]] | None = None
) -> torch.Tensor:
    """uint8 or [0,1] float images → float32 normalised with the dataset's mean/std (or ``statistics``)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean, std = statistics or NORMALISATION[dataset]
    shape = (1, -1, 1, 1)
    return (x - torch.tensor(mean, device=x.device).view(shape)) / torch.tensor(std, device=x.device).view(shape)


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True
) -> torch.Tensor:
    """Per-sample random crop (zero padding of ``padding`` px) and horizontal flip, on a whole batch at once."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(device)
    rows = (dy.view(n, 1) + torch.arange(h, device=device)).view(n, 1, h, 1).expand(n, c, h, w)
    cols = (dx.view(n, 1) + torch.arange(w, device=device)).view(n, 1, 1, w).expand(n, c, h, w)
    cropped = _gather_crop(padded, rows, cols)
    if flip:
        mirror = torch.rand(n, generator=generator, device=generator.device).to(device) < 0.5
        cropped = torch.where(mirror.view(n, 1, 1, 1), cropped.flip(3), cropped)
    return cropped


def _gather_crop(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Pick rows then columns per sample: two gathers, no Python loop over the batch."""
    n, c, h, w = rows.shape
    by_rows = padded.gather(2, rows[..., :1].expand(n, c, h, padded.shape[3]))
    return by_rows.gather(3, cols)


def mixup(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): returns mixed float images, the partner labels and λ (loss = λ·L(y) + (1−λ)·L(y'))."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(labels), generator=generator, device=generator.device).to(images.device)
    return lam * images + (1 - lam) * images[order], labels[order], lam


def cutmix(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al. 2019): paste one random box from a shuffled batch; λ is the kept area fraction."""
    n, _, h, w = images.shape
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(n, generator=generator, device=generator.device).to(images.device)
    cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy = int(torch.randint(0, h, (1,), generator=generator, device=generator.device))
    cx = int(torch.randint(0, w, (1,), generator=generator, device=generator.device))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[order, :, top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (h * w)
    return mixed, labels[order], kept
