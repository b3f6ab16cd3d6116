"""A trained model = backbone + head + the spec that rebuilds both (what a checkpoint card stores)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from arcdemo.backbones import build_backbone
from arcdemo.catalog import FACE_NECK, normalisation
from arcdemo.data import normalise
from arcdemo.heads import Head, build_head


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the modules; saved in the checkpoint card (nanoGPT's ``model_args``)."""

    dataset: str  # name of the normalisation constants ("mnist", "cifar10", "faces") or "imagefolder"
    backbone: str
    width: int
    embedding_dim: int
    in_channels: int
    image_size: int  # square input side in px
    class_names: tuple[str, ...]
    loss: str
    margin: float
    scale: float
    m1: float | None = None
    m3: float | None = None
    subcentres: int = 3
    easy_margin: bool = False
    extra: dict = field(default_factory=dict)  # backbone options beyond width (e.g. input_size)
    normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (mean, std) measured on a user's folder

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The per-channel mean and std inputs are normalised with."""
        return self.normalisation or normalisation(self.dataset)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> dict:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_json(cls, data: dict) -> ModelSpec:
        statistics = data.get("normalisation")
        if statistics is not None:
            statistics = (tuple(statistics[0]), tuple(statistics[1]))
        return cls(**{**data, "class_names": tuple(data["class_names"]), "normalisation": statistics})


class EmbeddingModel(nn.Module):
    """Backbone and head together; ``forward`` returns (loss, embeddings) so DDP sees one module.

    Weights and prepared inputs are channels-last (NHWC), which CPU convolutions run faster
    (``benchmarks/throughput.py`` measures it). Checkpoints are written in the standard layout either way
    (``save_checkpoint`` makes tensors contiguous).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = build_backbone(
            spec.backbone, spec.embedding_dim, spec.in_channels, width=spec.width, **spec.extra
        )
        self.head: Head = build_head(
            spec.loss, spec.embedding_dim, spec.num_classes, margin=spec.margin, scale=spec.scale, m1=spec.m1,
            m3=spec.m3, subcentres=spec.subcentres, easy_margin=spec.easy_margin,
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.backbone(images)
        return self.head(embeddings, labels), embeddings

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) → normalised channels-last float input on the model's device. (N, D) float input is a
        frozen face network's embeddings (``FaceNeck.face_embeddings``), already what the backbone takes."""
        device = next(self.parameters()).device
        if images.dim() == 2:
            return images.to(device)
        x = normalise(images.to(device), self.spec.dataset, self.spec.mean_std)
        return x.contiguous(memory_format=torch.channels_last)

    @property
    def inference_batch(self) -> int:
        """Images per forward pass when embedding: MobileFaceNet on a CPU runs 2.4× faster per image at 16 than
        at 256 (benchmarks/embed_batch.py: 252 against 107 images/s with flip-TTA on 2 cores); the other networks
        measured flat, and a GPU wants large batches."""
        face = self.spec.backbone in ("mobilefacenet", FACE_NECK)
        return 16 if face and next(self.parameters()).device.type == "cpu" else 256

    @torch.no_grad()
    def embed(
        self, images: torch.Tensor, batch_size: int | None = None, flip_tta: bool = False, shift_tta: bool = False
    ) -> torch.Tensor:
        """Raw embeddings (N, D) of uint8 images in eval mode (``batch_size`` images a pass; default
        ``inference_batch``); with test-time augmentation (``tta_views``) the sum of the views' unit embeddings."""
        batch_size = batch_size or self.inference_batch
        outputs = [_combined(views) for views in self._views(images, batch_size, flip_tta, shift_tta)]
        return torch.cat(outputs) if outputs else torch.empty(0, self.spec.embedding_dim)

    @torch.no_grad()
    def predict(
        self, images: torch.Tensor, flip_tta: bool = False, shift_tta: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities (N, C), unit embeddings (N, D)) for uint8 images.

        With test-time augmentation a cosine head scores the mean direction of the views, while the plain linear
        head (softmax) averages the views' logits: its logits grow with the embedding's length, which a sum of
        unit vectors does not keep (scoring that sum cost a softmax CIFAR-10 model 3 pp).
        """
        linear_head = not getattr(self.head, "normalise", True)
        embeddings, logits = [], []
        for views in self._views(images, self.inference_batch, flip_tta, shift_tta):
            embeddings.append(_combined(views))
            if len(views) > 1 and linear_head:
                logits.append(torch.stack([self.head.logits(view) for view in views]).mean(0))
            else:
                logits.append(self.head.logits(embeddings[-1]))
        if not embeddings:
            return torch.empty(0, self.spec.num_classes), torch.empty(0, self.spec.embedding_dim)
        return torch.softmax(torch.cat(logits), dim=1), nn.functional.normalize(torch.cat(embeddings), dim=1)

    def _views(
        self, images: torch.Tensor, batch_size: int, flip_tta: bool, shift_tta: bool
    ) -> Iterator[list[torch.Tensor]]:
        """Per batch, in eval mode: the embeddings of each test-time view of the images (``tta_views``)."""
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(images), batch_size):
                x = self.prepare(images[start : start + batch_size])
                yield [self.backbone(view).float() for view in tta_views(x, flip_tta, shift_tta)]
        finally:
            self.train(was_training)


def tta_view_count(flip: bool, shift: bool) -> int:
    """How many views ``tta_views`` makes, so a reported accuracy can say which protocol it used."""
    return (2 if flip else 1) * (3 if shift else 1)


def tta_views(x: torch.Tensor, flip: bool, shift: bool) -> list[torch.Tensor]:
    """The image, its mirror image (``flip``), and each of those moved 1 px up-left and 1 px down-right with the
    border reflected (``shift``; airbench's TTA level 2 views, here all weighed the same): 1, 2, 3 or 6 views."""
    views = [x, x.flip(3)] if flip else [x]
    if shift:
        padded = [nn.functional.pad(view, (1, 1, 1, 1), mode="reflect") for view in views]
        views += [p[..., :-2, :-2].contiguous(memory_format=torch.channels_last) for p in padded]
        views += [p[..., 2:, 2:].contiguous(memory_format=torch.channels_last) for p in padded]
    return views


def _combined(views: list[torch.Tensor]) -> torch.Tensor:
    """Test-time augmentation for directions: the sum of the views' unit embeddings (one view: its raw embedding)."""
    if len(views) == 1:
        return views[0]
    return torch.stack([nn.functional.normalize(view, dim=1) for view in views]).sum(0)
