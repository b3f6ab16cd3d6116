"""Batched per-sample augmentation and resizing on uint8 tensors, and input normalisation.

The training hot path never touches a Python image object: augmentation draws its randomness per sample on
tensors (torchvision's batch transforms would apply one crop/flip to the whole batch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from arcdemo import catalog


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
    mean, std = statistics or catalog.normalisation(dataset)
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


Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTERS: dict[str, Augmenter] = {}


def register_augmenter(name: str) -> Callable[[Augmenter], Augmenter]:
    """Decorator: a dataset's own batch augmentation (faces register theirs beside their reader)."""

    def register(augment: Augmenter) -> Augmenter:
        AUGMENTERS[name] = augment
        return augment

    return register


def augmenter(dataset: str) -> Augmenter:
    """The batch augmentation of ``dataset``: its registered one, else per-sample random crops, and flips where the
    catalog allows them (digits are not mirror-symmetric: 2 px shifts only)."""
    info = catalog.dataset(dataset)
    if dataset not in AUGMENTERS:
        importlib.import_module(info.reader)  # where a dataset defined outside data registers its own
    if dataset in AUGMENTERS:
        return AUGMENTERS[dataset]

    def crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        padding = max(2, images.shape[-1] // 8) if info.flip else 2  # 4 px at CIFAR-10's 32
        return random_crop_flip(images, generator, padding=padding, flip=info.flip)

    return crop_flip
