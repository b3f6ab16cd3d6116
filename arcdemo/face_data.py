"""Face data: FIW as an aligned training set with a held-out slice of families, aligned-image caches for the
evaluation sets (LFW, ORL), and batched per-sample face augmentation.

Every face goes through :func:`arcdemo.faces.align_face` -- FIW crops with ``assume_cropped=True`` (they are tight
112 px crops already), evaluation photos without it -- so training and testing share one geometry.  Aligning costs
~15 ms per image, so results are cached under :func:`arcdemo.data.cache_dir`, keyed by the data source *and* by a
digest of ``faces.py``: a change to the alignment code invalidates every aligned cache instead of silently mixing
two geometries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from arcdemo.data import (
    DatasetMissingError, Split, cache_dir, data_root, read_cached_split, stable_key, write_cached_split,
)

FIW_VAL_EVERY = 10  # every 10th family (sorted by id, starting with the first) is held out: ~10% of identities
FIW_IDENTITIES_ENV = "ARCDEMO_FIW_IDENTITIES"  # "N": only the first N identity folders (smoke runs, tests)
REFERENCE_DIM = 128  # dlib ResNet descriptor


def alignment_key() -> str:
    """Digest of the alignment code: caches built by another version of ``faces.py`` are never reused."""
    from arcdemo import faces

    return stable_key(Path(faces.__file__).read_text())


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="img", file=sys.stderr, mininterval=5.0, disable=total < 50)


# --- FIW -----------------------------------------------------------------------------------------------------------


def fiw_folder() -> Path:
    return data_root() / "faces" / "fiw"


def read_fiw(folder: Path, identities: int = 0) -> Split:
    """Every FIW face aligned to 112×112 (``assume_cropped=True``), labelled by identity folder (``F0002_MID1``).

    ``identities``: only the first N identity folders in sorted order (0 = all 2,316).
    """
    from arcdemo.faces import align_face

    if not folder.is_dir():
        raise DatasetMissingError(f"FIW not found at {folder.resolve()}; point ARCDEMO_DATA_ROOT at the data root")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.jpg")))
    names = names[:identities] if identities else names
    files = [(label, path) for label, name in enumerate(names) for path in sorted((folder / name).glob("*.jpg"))]
    if not files:
        raise DatasetMissingError(f"{folder} has no <identity>/*.jpg faces")
    images = torch.empty(len(files), 3, 112, 112, dtype=torch.uint8)
    with _progress(len(files), "aligning FIW") as bar:
        for i, (_, path) in enumerate(files):
            images[i] = torch.tensor(align_face(path, assume_cropped=True).crop).permute(2, 0, 1)
            bar.update()
    labels = torch.tensor([label for label, _ in files], dtype=torch.int64)
    return Split(images, labels, tuple(names))


def family(identity: str) -> str:
    """FIW identity ``F0002_MID1`` belongs to family ``F0002``."""
    return identity.split("_", 1)[0]


def split_fiw(full: Split, split: str) -> Split:
    """Cut ``full`` into "train" or "val" by family: every ``FIW_VAL_EVERY``-th family (sorted) is "val".

    Holding out whole families, not single identities, keeps a person's parents and siblings out of training
    too, so "val" measures what LFW measures: strangers.  Labels are re-indexed within each split.
    """
    families = sorted({family(name) for name in full.class_names})
    held_out = set(families[::FIW_VAL_EVERY])
    return full.classes([i for i, name in enumerate(full.class_names) if (family(name) in held_out) == (split == "val")])


def fiw_split(split: str) -> Split:
    """FIW "train" or "val" (see :func:`split_fiw`), aligning the whole set once and caching it.

    ``$ARCDEMO_FIW_IDENTITIES=N`` limits it to the first N identities (a subset for tests and smoke runs).
    """
    identities = int(os.environ.get(FIW_IDENTITIES_ENV, "0") or 0)
    folder = fiw_folder()
    key = stable_key(f"{folder.resolve()}|{identities}|{alignment_key()}")
    cache = cache_dir() / f"fiw-aligned-{identities or 'all'}-{key}.safetensors"
    full = read_cached_split(cache)
    if full is None:
        full = read_fiw(folder, identities)
        write_cached_split(cache, full)
    return split_fiw(full, split)


# --- aligned evaluation images (LFW, ORL, ...) ---------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedImages:
    """Aligned 112 px crops of a list of image files, in the order asked for.

    ``faces_found`` is 0 where no face was detected (the crop is then black and must not be scored);
    ``reference`` holds unit dlib descriptors (N, 128) when they were asked for.
    """

    paths: tuple[str, ...]
    crops: torch.Tensor  # (N, 3, 112, 112) uint8
    faces_found: torch.Tensor  # (N,) int64
    reference: torch.Tensor | None  # (N, 128) float32

    @property
    def found(self) -> np.ndarray:
        return self.faces_found.numpy() > 0


def _read_aligned_cache(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        return {}
    try:
        return load_file(path)
    except Exception:  # truncated or foreign: rebuilt, never trusted
        path.unlink(missing_ok=True)
        return {}


def align_images(paths: Sequence[Path], cache_name: str, reference: bool = False) -> AlignedImages:
    """Align every image once with ``align_face`` (no ``assume_cropped``: these are photos) and cache the crops.

    The cache ``aligned-<cache_name>-<alignment key>.safetensors`` grows with every call (a fold-0 run and a full
    run share it), keyed by absolute path.  With ``reference`` the dlib descriptor is computed from the same
    detection and landmarks as the crop, so both models are scored on exactly the same faces.
    """
    from arcdemo.faces import NoFaceError, ReferenceModel, align_face

    keys = [str(Path(p).resolve()) for p in paths]
    cache = cache_dir() / f"aligned-{cache_name}-{alignment_key()}.safetensors"
    stored = _read_aligned_cache(cache)
    names = stored["paths"].numpy().tobytes().decode().split("\n") if stored else []
    row = {name: i for i, name in enumerate(names)}
    crops = stored.get("crops", torch.empty(0, 3, 112, 112, dtype=torch.uint8))
    found = stored.get("faces_found", torch.empty(0, dtype=torch.int64))
    descriptors = stored.get("reference", torch.empty(0, REFERENCE_DIM))  # NaN row = not computed yet
    todo = [k for k in dict.fromkeys(keys)
            if k not in row or (reference and found[row[k]] > 0 and descriptors[row[k]].isnan().any())]
    if todo:
        model = ReferenceModel() if reference else None
        new = [k for k in todo if k not in row]
        crops = torch.cat([crops, torch.zeros(len(new), 3, 112, 112, dtype=torch.uint8)])
        found = torch.cat([found, torch.zeros(len(new), dtype=torch.int64)])
        descriptors = torch.cat([descriptors, torch.full((len(new), REFERENCE_DIM), float("nan"))])
        for k in new:
            row[k] = len(names)
            names.append(k)
        with _progress(len(todo), f"aligning {cache_name}") as bar:
            for k in todo:
                i = row[k]
                try:
                    face = align_face(k)
                except NoFaceError:
                    found[i], descriptors[i] = 0, 0.0
                else:
                    crops[i] = torch.tensor(face.crop).permute(2, 0, 1)
                    found[i] = face.faces_found
                    if model is not None:
                        descriptors[i] = torch.tensor(model.embed(face))
                bar.update()
        encoded = torch.frombuffer(bytearray("\n".join(names).encode()), dtype=torch.uint8)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache.with_suffix(f".tmp{os.getpid()}")
            save_file({"paths": encoded, "crops": crops, "faces_found": found, "reference": descriptors}, temporary)
            temporary.replace(cache)
        except OSError:
            pass  # an unwritable cache only costs alignment time next run
    index = torch.tensor([row[k] for k in keys], dtype=torch.int64)
    return AlignedImages(tuple(keys), crops[index], found[index], descriptors[index] if reference else None)


# --- augmentation --------------------------------------------------------------------------------------------------


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator, device=generator.device)).to(device)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, (N, 1, H, W), as torchvision's rgb_to_grayscale."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _affine_flip(
    x: torch.Tensor, generator: torch.Generator, p_affine: float, degrees: float, scale: float, shift: float
) -> torch.Tensor:
    """Per-sample mirror (p = 0.5) and, for a ``p_affine`` share, a small rotation/zoom/shift: one grid_sample.

    Samples drawn without the affine part keep their exact pixels (the identity grid, align_corners=False, samples
    pixel centres); the border that a rotation or shift exposes is black, as in the aligned crops.
    """
    n, device = x.shape[0], x.device
    mirror = torch.where(_uniform(n, 0, 1, generator, device) < 0.5, -1.0, 1.0)
    active = (_uniform(n, 0, 1, generator, device) < p_affine).float()
    angle = torch.deg2rad(_uniform(n, -degrees, degrees, generator, device)) * active
    zoom = 1 + (_uniform(n, 1 - scale, 1 + scale, generator, device) - 1) * active
    tx, ty = (_uniform(n, -shift, shift, generator, device) * 2 * active for _ in range(2))  # grid units: 2 = width
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * mirror, -sin, tx], 1), torch.stack([sin * mirror, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _colour(x: torch.Tensor, generator: torch.Generator, strength: float, p_grey: float) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors in [1 − strength, 1 + strength]; some turned grey."""
    n, device = x.shape[0], x.device
    shape = (n, 1, 1, 1)
    brightness, contrast, saturation = (
        _uniform(n, 1 - strength, 1 + strength, generator, device).view(shape) for _ in range(3)
    )
    saturation = torch.where(_uniform(n, 0, 1, generator, device).view(shape) < p_grey, 0.0, saturation)
    x = (x * brightness).clamp(0, 1)
    mean = _grey(x).mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    grey = _grey(x)
    return ((x - grey) * saturation + grey).clamp(0, 1)


def _blur(x: torch.Tensor, generator: torch.Generator, p: float, sigma: tuple[float, float]) -> torch.Tensor:
    """Gaussian blur of a ``p`` share of the batch, σ per sample, as one grouped separable convolution."""
    n, c, h, w = x.shape
    device = x.device
    chosen = torch.nonzero(_uniform(n, 0, 1, generator, device) < p).flatten()
    s = _uniform(n, sigma[0], sigma[1], generator, device)[chosen]
    k = len(chosen)
    if k == 0:
        return x
    radius = max(1, int(np.ceil(2.5 * sigma[1])))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps.view(1, -1) / s.view(-1, 1)) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # one kernel per channel of each sample
    y = F.pad(x[chosen].reshape(1, k * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel.view(k * c, 1, 1, -1), groups=k * c)
    y = F.conv2d(y, kernel.view(k * c, 1, -1, 1), groups=k * c)
    out = x.clone()
    out[chosen] = y.view(k, c, h, w)
    return out


def augment_faces(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 (N, 3, S, S) aligned faces → float [0, 1], every sample with its own random draw.

    Mirror (p = 0.5); for half the samples rotation ±8°, zoom ±8 % and shift ±4 % of the side (alignment jitter
    as the detector produces it, kept small because the crops are aligned); brightness/contrast/saturation
    ±30 % with 10 % turned grey (LFW holds grey and colour-cast news photos); Gaussian blur σ ∈ [0.4, 1.6] px
    at 112 px (scaled with S) for 20 % of them (soft, low-resolution photos).
    """
    x = images.float() / 255.0
    x = _affine_flip(x, generator, p_affine=0.5, degrees=8.0, scale=0.08, shift=0.04)
    x = _colour(x, generator, strength=0.3, p_grey=0.1)
    size = images.shape[-1] / 112.0
    return _blur(x, generator, p=0.2, sigma=(0.4 * size, 1.6 * size)).clamp(0, 1)
