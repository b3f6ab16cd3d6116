"""Backbones: image → embedding, nothing else (the head owns the classes).

Every backbone ends in a linear layer + BatchNorm1d to the embedding (insightface's "features" layer), so the
embedding dimension is free (any D ≥ 2) and a 3-D embedding can be drawn on the sphere as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from arcdemo.catalog import FACE_NECK

BACKBONES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        BACKBONES[name] = factory
        return factory

    return add


def build_backbone(name: str, embedding_dim: int, in_channels: int, **options: object) -> nn.Module:
    """Build a registered backbone; ``options`` are the backbone's own knobs (e.g. ``width``)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if embedding_dim < 2:
        raise ValueError(f"embedding dim must be ≥ 2, got {embedding_dim}")
    return BACKBONES[name](embedding_dim=embedding_dim, in_channels=in_channels, **options)


def conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: str | None = "relu"
) -> nn.Sequential:
    """Conv (no bias, BN follows) → BN → activation ("relu", "prelu" or None for a linear projection)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "prelu":
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


def embedding_layer(features: int, embedding_dim: int) -> nn.Sequential:
    """Linear → BN to the embedding: BN keeps low-D embeddings centred so no class starts stuck at a pole."""
    return nn.Sequential(nn.Linear(features, embedding_dim, bias=False), nn.BatchNorm1d(embedding_dim))


class ThreeByThreeAvgPool(nn.Module):
    """``AdaptiveAvgPool2d(3)``, computed for a 7×7 map (28-px digits) as ``avg_pool2d(3, stride=2)``.

    Same windows (rows/columns 0–2, 2–4, 4–6), same numbers, with a cheaper backward on CPU than the adaptive pool's
    (``benchmarks/core_speed.py`` races one epoch).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (7, 7):
            return nn.functional.avg_pool2d(x, 3, stride=2)
        return nn.functional.adaptive_avg_pool2d(x, 3)


@register("mnist_cnn")
class MnistCNN(nn.Module):
    """Small conv-BN-ReLU stack for 28×28 digits: a stride-2 conv (28² → 14²), two convs at 14², one at 7².

    Nothing runs at 28²: the strided stem keeps a training step cheap at the accuracy of a full-resolution conv and
    max-pool (``benchmarks/core_speed.py`` times it).
    """

    def __init__(self, embedding_dim: int, in_channels: int = 1, width: int = 16, hidden: int = 128) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn(in_channels, w, stride=2),  # 14×14
            conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # 7×7
            conv_bn(2 * w, 4 * w), ThreeByThreeAvgPool(), nn.Flatten(),
        )
        self.embed = nn.Sequential(
            nn.Linear(4 * w * 9, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            embedding_layer(hidden, embedding_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.features(x))


class ConvGroup(nn.Module):
    """airbench's block: conv → pool → BN → GELU → conv → BN → GELU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("cifar_net")
class CifarNet(nn.Module):
    """airbench94's network for 32×32 images (Jordan 2024), widths scaled by ``width``.

    A 2×2 conv stem with 24 channels (airbench's whitening layer has 2 × 3·2·2 = 24 filters; here it is learned),
    then three conv groups of widths (w, 4w, 4w): width=64 is airbench94's 64/256/256. Chosen over a narrow ResNet
    because it reaches the same accuracy in fewer FLOPs: no residuals, all but two convs at ≤ 15×15.
    """

    def __init__(self, embedding_dim: int, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        w, stem = width, 24
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, stem, 2, padding=0, bias=False), nn.BatchNorm2d(stem), nn.GELU(),  # 31×31
            ConvGroup(stem, w), ConvGroup(w, 4 * w), ConvGroup(4 * w, 4 * w),  # 15², 7², 3²
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.embed = embedding_layer(4 * w, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.features(x))


class DepthwiseBottleneck(nn.Module):
    """MobileNetV2 inverted residual as used by MobileFaceNet (1×1 expand → 3×3 depthwise → 1×1 project)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            conv_bn(cin, hidden, 1, act="prelu"),
            conv_bn(hidden, hidden, 3, stride, groups=hidden, act="prelu"),
            conv_bn(hidden, cout, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


@register("mobilefacenet")
class MobileFaceNet(nn.Module):
    """MobileFaceNet (Chen et al. 2018) for 112×112 faces, ~1M parameters at width 64.

    Ends in a global depthwise conv (GDC) instead of average pooling, so the face's spatial layout is kept.
    ``dropout`` drops GDC features while training, before the embedding layer (ArcFace's BN-Dropout-FC-BN
    output); it changes no weight, so a checkpoint trained with it loads into a model without it.
    """

    # (expansion, out channels as multiples of width, repeats, first stride)
    STAGES = ((2, 1, 5, 2), (4, 2, 1, 2), (2, 2, 6, 1), (4, 2, 1, 2), (2, 2, 2, 1))

    def __init__(
        self, embedding_dim: int, in_channels: int = 3, width: int = 64, input_size: int = 112, dropout: float = 0.0
    ) -> None:
        super().__init__()
        w = width
        self.dropout = dropout
        layers: list[nn.Module] = [
            conv_bn(in_channels, w, 3, 2, act="prelu"), conv_bn(w, w, 3, 1, groups=w, act="prelu")
        ]
        cin = w
        for expansion, mult, repeats, stride in self.STAGES:
            for i in range(repeats):
                layers.append(DepthwiseBottleneck(cin, mult * w, stride if i == 0 else 1, expansion))
                cin = mult * w
        side = input_size // 16
        layers += [
            conv_bn(cin, 8 * w, 1, act="prelu"),
            nn.Conv2d(8 * w, 8 * w, side, groups=8 * w, bias=False), nn.BatchNorm2d(8 * w), nn.Flatten(),
        ]
        self.features = nn.Sequential(*layers)
        self.embed = embedding_layer(8 * w, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(F.dropout(self.features(x), self.dropout, self.training))


@register(FACE_NECK)
class FaceNeck(nn.Module):
    """A frozen face network with a small trainable neck: the face embedding at unit length → Linear(128, hidden) →
    ReLU → Linear + BN to the embedding.

    Puts a small set of people on a low-D sphere without retraining the face network, which a few hundred photos
    could not do: on ORL's 40 people a linear 128→3 map holds 73% of the held-out photos, this neck 97%
    (benchmarks/orl_sphere_head.py). Its inputs are aligned 112 px faces, as the face network's were. The face
    network's weights come from a face checkpoint (``init_from``) and never change; it stays in eval mode, so its
    BatchNorm statistics are the face set's, not the small set's.
    """

    def __init__(self, embedding_dim: int, in_channels: int = 3, width: int = 32, input_size: int = 112,
                 face_dim: int = 128, hidden: int = 64) -> None:
        super().__init__()
        self.face = MobileFaceNet(face_dim, in_channels, width, input_size)
        self.face.requires_grad_(False)
        self.face.eval()  # from the start: the trainer embeds its training views before the first step
        self.neck = nn.Sequential(nn.Linear(face_dim, hidden), nn.ReLU(inplace=True), *embedding_layer(hidden,
                                                                                                        embedding_dim))

    def train(self, mode: bool = True) -> FaceNeck:
        super().train(mode)
        self.face.eval()
        return self

    @torch.no_grad()
    def face_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """Unit embeddings (N, face_dim) of prepared images by the frozen face network: what the neck takes."""
        return F.normalize(self.face(x).float(), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared images (N, C, H, W), or their ``face_embeddings`` (N, face_dim) computed before: the face network
        never changes, so the trainer runs it once per image view instead of on every batch."""
        return self.neck(x if x.dim() == 2 else self.face_embeddings(x))
