"""What a user hands the app (a Sketchpad drawing, an uploaded image) → the uint8 tensor a model takes.

MNIST-like models get a digit prepared the way MNIST was made (LeCun et al.): the ink is cropped to its bounding
box, scaled to fit a 20×20 box keeping its aspect ratio (anti-aliased, so grey levels appear), and placed in a
28×28 field so that its centre of mass sits at the centre. RGB models (CIFAR-10) get the largest centred square,
resized to the model's side with torchvision's v2 transforms.

Any mode PIL reads is accepted: grey, palette, RGBA (composited on white), CMYK, 16-bit and float images. Bad input
raises :class:`InputError` (a ValueError) whose message is a sentence for the person who sent it. Nothing here
imports gradio; torch/torchvision are imported inside the functions that return tensors.
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

MAX_PIXELS = 50_000_000  # 50 MP (e.g. 8660×5773); bigger uploads are refused with a message, never decoded
MAX_FILE_BYTES = 50 * 1024 * 1024
WORKING_SIDE = 1024  # large images are box-reduced to about this long side first (fast, exact area average)
MNIST_BOX = 20  # MNIST digits were size-normalised to fit 20×20 …
MNIST_FIELD = 28  # … and centred by centre of mass in 28×28
INK_LEVEL = 0.15  # fraction of full contrast below which a pixel counts as background (anti-aliasing, noise)
MIN_INK_PIXELS = 10  # fewer ink pixels than this is an empty canvas, not a digit

SUPPORTED = "PNG, JPEG, WebP, GIF, BMP or TIFF"


class InputError(ValueError):
    """Input the app cannot use; the message says why in words meant for the user."""


# ------------------------------------------------------------------------------------------------ reading images


def _describe(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} MP)"


def _too_big(size: tuple[int, int] | None = None) -> InputError:
    what = f"This image is {_describe(size)}" if size else "This image is too large"
    return InputError(f"{what}; the limit is {MAX_PIXELS / 1e6:.0f} MP. Please upload a smaller image.")


def _open_file(source: str | os.PathLike | bytes) -> Image.Image:
    """Open (lazily) a path or bytes with PIL, turning every failure into a sentence."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_FILE_BYTES:
            raise InputError(f"The file is {len(source) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MB.")
        stream: Any = io.BytesIO(bytes(source))
        name = "The upload"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"No image file was received ({path.name or path} does not exist).")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path.name} is empty (0 bytes); please upload an image file ({SUPPORTED}).")
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path.name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MB.")
        stream, name = path, path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except Image.DecompressionBombError:
        raise _too_big() from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image I can read; please upload a {SUPPORTED} file.") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"{name} could not be read as an image ({error}).") from None
    return image


def check_image_file(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the header of an image file; InputError for a non-image, an empty or oversized file."""
    with _open_file(path) as image:
        size = image.size
    if size[0] * size[1] > MAX_PIXELS:
        raise _too_big(size)
    return size


def open_image(source: Any) -> Image.Image:
    """A decoded PIL image from a path, bytes, numpy array or PIL image; upright (EXIF) and size-checked."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = array_to_image(source)
    elif isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        image = _open_file(source)
    elif source is None:
        raise InputError("No image was received; please upload an image.")
    else:
        raise InputError(f"Expected an image, got {type(source).__name__}.")
    if image.width < 1 or image.height < 1:
        raise InputError("The image has no pixels.")
    if image.width * image.height > MAX_PIXELS:
        raise _too_big(image.size)
    try:
        image.load()
        if getattr(image, "is_animated", False):  # first frame of a GIF/WebP/APNG animation
            image.seek(0)
        transposed = ImageOps.exif_transpose(image)
        if transposed is not None:
            image = transposed
    except Image.DecompressionBombError:
        raise _too_big(image.size) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"The image file is damaged or truncated ({error}).") from None
    return image


def array_to_image(array: np.ndarray) -> Image.Image:
    """numpy (H, W), (H, W, 1|3|4) of uint8/uint16/bool/float → a PIL image (L, RGB or RGBA)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"Expected an image array of shape (H, W) or (H, W, 3|4), got {array.shape}.")
    if array.shape[0] * array.shape[1] > MAX_PIXELS:
        raise _too_big((array.shape[1], array.shape[0]))
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError("The image has no pixels.")
    mode = "L" if array.ndim == 2 else ("RGBA" if array.shape[2] == 4 else "RGB")
    return Image.fromarray(_to_uint8(array), mode)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Any numeric pixel values → uint8: 8-bit kept, 16-bit scaled by 1/257, [0, 1] floats by 255, else min–max."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise InputError(f"Pixel values of type {values.dtype} are not an image.")
    floating = np.issubdtype(values.dtype, np.floating)
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if floating and 0.0 <= low and high <= 1.0:
        values = values * 255.0
    elif low < 0.0 or high > (255.0 if floating else 65535.0):
        values = (values - low) / max(high - low, 1e-12) * 255.0
    elif high > 255.0:
        values = values / 257.0
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _flatten(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` ("L" or "RGB"): transparency composited on white, high bit depths scaled to 8 bits."""
    if image.mode.startswith("I;16"):  # 16-bit grey: full range is 0..65535 whatever the content
        values = np.asarray(image).astype(np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    elif image.mode in ("I", "F"):
        image = Image.fromarray(_to_uint8(np.asarray(image)), "L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode == mode:
        return image
    try:
        return image.convert("RGB").convert(mode) if image.mode not in ("L", "RGB", "1") else image.convert(mode)
    except ValueError:
        raise InputError(f"Images in colour mode {image.mode} are not supported; please save it as RGB.") from None


def _working_copy(image: Image.Image, mode: str, side: int) -> Image.Image:
    """``image`` as ``mode``, box-reduced by an integer factor so its long side is at most about ``side``.

    Opaque images are reduced before conversion (cheap on a 50-MP photo); images with transparency, palettes or
    16-bit pixels are flattened first (averaging colours hidden under transparent pixels would darken the edges).
    """
    if image.mode in ("L", "RGB", "CMYK", "YCbCr", "I", "F") and "transparency" not in image.info:
        factor = max(image.size) // side
        image = image.reduce(factor) if factor >= 2 else image
    image = _flatten(image, mode)
    factor = max(image.size) // side
    return image.reduce(factor) if factor >= 2 else image


def load_rgb(source: Any, max_side: int | None = None) -> np.ndarray:
    """Any image (path, bytes, PIL image or array) → (H, W, 3) uint8 RGB: the one loader for photos and faces.

    The same rules as every upload (EXIF orientation, transparency on white, 16-bit scaled to 8, size limits,
    :class:`InputError` with a sentence). ``max_side``: a JPEG at least twice that long is decoded at 1/2, 1/4 or
    1/8 scale by libjpeg (nearly free), keeping its long side ≥ ``max_side``; a 12 MP photo then costs no 150 ms
    of decoding that face detection would throw away.
    """
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 3:
        return np.ascontiguousarray(source)
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        image = _open_file(source)
        if max_side and image.format == "JPEG" and max(image.size) >= 2 * max_side:
            factor = max_side / max(image.size)
            image.draft("RGB", (math.ceil(image.size[0] * factor), math.ceil(image.size[1] * factor)))
        source = image
    return np.ascontiguousarray(np.asarray(_flatten(open_image(source), "RGB"), dtype=np.uint8))


# --------------------------------------------------------------------------------------------------- MNIST-like


def ink_map(grey: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds (0..1) for a uint8 grey image of either polarity.

    The background level is the median of the border pixels: dark ink on paper (the Sketchpad) and light ink on
    black (an MNIST image) both come out as ink = 1 at full contrast. Faint pixels below ``INK_LEVEL`` become 0.
    """
    darkness = 1.0 - np.asarray(grey, dtype=np.float32) / 255.0
    border = np.concatenate([darkness[0], darkness[-1], darkness[:, 0], darkness[:, -1]])
    background = float(np.median(border))
    if background <= 0.5:
        ink = (darkness - background) / max(1.0 - background, 1e-6)
    else:
        ink = (background - darkness) / max(background, 1e-6)
    ink = np.clip(ink, 0.0, 1.0)
    ink[ink < INK_LEVEL] = 0.0
    return ink


def mnist_field(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit 20×20 keeping aspect, centre by centre of mass in 28×28 → uint8 (28, 28), ink = 255."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if np.count_nonzero(ink) < MIN_INK_PIXELS or not len(rows):
        raise InputError("The canvas is empty: draw a digit first (pick the brush, then draw with the mouse).")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    scale = MNIST_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    patch = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, resample), dtype=np.float32)
    patch = np.clip(patch, 0.0, None)
    if patch.max() <= 0:
        raise InputError("The drawing is too faint to read; draw with darker or thicker strokes.")
    patch /= patch.max()  # thin strokes on a big canvas fade when shrunk; MNIST strokes are saturated
    total = patch.sum()
    cy = float((patch.sum(axis=1) * np.arange(patch.shape[0])).sum() / total)
    cx = float((patch.sum(axis=0) * np.arange(patch.shape[1])).sum() / total)
    centre = MNIST_FIELD / 2  # MNIST's centres of mass sit at pixel (14, 14): 14.0 ± 0.3 on its test set
    top = int(np.clip(round(centre - cy), 0, MNIST_FIELD - patch.shape[0]))
    left = int(np.clip(round(centre - cx), 0, MNIST_FIELD - patch.shape[1]))
    field = np.zeros((MNIST_FIELD, MNIST_FIELD), np.float32)
    field[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return np.round(field * 255.0).astype(np.uint8)


def sketch_image(value: Any) -> Image.Image:
    """The drawing in a Sketchpad value ``{"background", "layers", "composite"}`` (or a bare image) as one image.

    The composite is used when present; otherwise background and layers are stacked. Transparent areas are paper.
    """
    if isinstance(value, Mapping):
        composite = value.get("composite")
        if composite is not None:
            return open_image(composite)
        parts = [value.get("background")] + list(value.get("layers") or [])
        images = [open_image(part).convert("RGBA") for part in parts if part is not None]
        if not images:
            raise InputError("The canvas is empty: draw a digit first (pick the brush, then draw with the mouse).")
        canvas = Image.new("RGBA", images[0].size, (255, 255, 255, 255))
        for image in images:
            canvas.alpha_composite(image if image.size == canvas.size else image.resize(canvas.size))
        return canvas
    if value is None:
        raise InputError("The canvas is empty: draw a digit first (pick the brush, then draw with the mouse).")
    return open_image(value)


def mnist_like(source: Any) -> np.ndarray:
    """Any drawing or image of a digit → uint8 (28, 28) in MNIST's format (white ink on black)."""
    image = sketch_image(source)
    grey = np.asarray(_working_copy(image, "L", WORKING_SIDE))
    return mnist_field(ink_map(grey))


# -------------------------------------------------------------------------------------------------------- RGB


def square_image(source: Any, side: int, channels: int = 3) -> torch.Tensor:
    """Any image → uint8 (channels, side, side), grey or RGB: the largest centred square, antialiased resize
    (``data.centre_square``, as a user's training folder is read)."""
    import torch

    from arcdemo.data import centre_square

    image = _working_copy(open_image(source), "L" if channels == 1 else "RGB", min(4 * side, WORKING_SIDE))
    tensor = torch.from_numpy(np.array(image, dtype=np.uint8))
    return centre_square(tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1), side)


# ------------------------------------------------------------------------------------------------- model input


def model_input(source: Any, dataset: str, in_channels: int, image_size: int) -> torch.Tensor:
    """The uint8 (1, C, H, W) batch a model of this dataset takes: MNIST-like for 1-channel digit models, a centred
    square (grey or RGB) for the rest (a model of aligned faces: ``ui.predict.face_input``)."""
    import torch

    if in_channels == 1 and dataset == "mnist":
        field = mnist_like(source)
        if image_size != MNIST_FIELD:
            field = np.asarray(Image.fromarray(field).resize((image_size, image_size), Image.Resampling.BILINEAR))
        return torch.from_numpy(field.copy()).view(1, 1, image_size, image_size)
    if in_channels not in (1, 3):
        raise InputError(f"This model takes {in_channels}-channel images, which this app cannot prepare.")
    return square_image(source, image_size, in_channels).unsqueeze(0)


# ------------------------------------------------------------------------------------------------ image folders

ZIP_MAX_BYTES = 100 * 1024 * 1024  # the uploaded archive
ZIP_MAX_UNPACKED_BYTES = 500 * 1024 * 1024
ZIP_MAX_FILES = 20_000
ZIP_MAX_CLASSES = 100


@functools.lru_cache(maxsize=32)
def _archive_digest(path: str, size: int, mtime_ns: int) -> str:
    """The archive's content hash, named by its path, size and time, so the several handlers that see one upload
    (defaults, sliders, Train) read the file once."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def unpack_image_zip(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """A zip of class folders (``<class>/<image>``, optionally inside one top folder, or ``train/`` and ``test/``
    folders of them) → the folder to train on, unpacked under ``destination`` (a folder named by the archive's
    hash, reused when the same archive comes again). Bounded in size, file count and classes; anything unusable
    raises InputError with a sentence."""
    import shutil
    import tempfile
    import zipfile

    from arcdemo.data import ImageFolderError, image_folder_layout

    path = Path(source)
    if not path.is_file():
        raise InputError("Upload a .zip of class folders first (one folder of images per class).")
    if path.stat().st_size > ZIP_MAX_BYTES:
        raise InputError(f"That archive is {path.stat().st_size / 2**20:.0f} MB; the limit is "
                         f"{ZIP_MAX_BYTES // 2**20} MB.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"{path.name} is not a zip archive: make one of your class folders (zip -r).") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _hidden(m.filename)]
        if not members:
            raise InputError(f"{path.name} holds no files.")
        if len(members) > ZIP_MAX_FILES:
            raise InputError(f"{path.name} holds {len(members):,} files; the limit is {ZIP_MAX_FILES:,}.")
        if sum(m.file_size for m in members) > ZIP_MAX_UNPACKED_BYTES:
            raise InputError(f"{path.name} unpacks to more than {ZIP_MAX_UNPACKED_BYTES // 2**20} MB.")
        for member in members:
            name = Path(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise InputError(f"{path.name} has a file outside its folder ({member.filename}).")
        stat = path.stat()
        digest = _archive_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        target = Path(destination) / digest
        if not target.is_dir():
            Path(destination).mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=destination))
            try:
                for member in members:
                    archive.extract(member, staging)
                staging.replace(target)
            except OSError as error:
                shutil.rmtree(staging, ignore_errors=True)
                raise InputError(f"{path.name} could not be unpacked here: {error.strerror}.") from None
    root = target
    while True:  # a zip of the folder itself: step into its one top folder
        entries = [p for p in root.iterdir() if not _hidden(p.name)]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in ("train", "test", "val"):
            inner = [p for p in entries[0].iterdir() if not _hidden(p.name)]
            if inner and all(p.is_dir() for p in inner):
                root = entries[0]
                continue
        break
    try:
        layout = image_folder_layout(root)
    except ImageFolderError as error:
        raise InputError(f"{path.name}: {str(error)[:1].upper()}{str(error)[1:]}.") from None
    if len(layout.class_names) > ZIP_MAX_CLASSES:
        raise InputError(f"{path.name} has {len(layout.class_names)} classes; the limit here is {ZIP_MAX_CLASSES}.")
    return root


def _hidden(name: str) -> bool:
    """Files a zip tool adds beside the images: macOS resource forks, .DS_Store, Thumbs.db."""
    parts = Path(name).parts
    return any((p.startswith(".") and p != "..") or p == "__MACOSX" for p in parts) or Path(name).name == "Thumbs.db"
