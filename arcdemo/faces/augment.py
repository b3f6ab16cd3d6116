"""Batched per-sample face augmentation: every sample of a batch gets its own draw, in a few tensor ops."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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
