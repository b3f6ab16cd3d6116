"""Margin heads: one head owns the class centres W and turns embeddings into a loss.

Every classification loss of the family is the same pipeline with different parameters::

    normalise x and W -> cos θ -> ψ(θ) for the target class -> × s -> cross-entropy

with the combined margin ψ(θ) = cos(m1·θ + m2) − m3 (Deng et al., ArcFace §3.3). Margins are in **radians**
(pytorch-metric-learning's ArcFaceLoss takes degrees). Softmax is the un-normalised linear layer with bias, NormFace
is m = 0, SphereFace is m1, ArcFace is m2, CosFace is m3, sub-center ArcFace keeps k centres per class and
max-pools their cosines. Triplet and SupCon are feature losses on the normalised embedding; their head keeps
running class means as centres so prediction and plots work the same way.

Gradient choice: θ = arccos(cos θ) is computed with cos θ clamped to [−1+ε, 1−ε] (ε = 1e-7), so the gradient
flows through arccos and stays finite (|dθ/dcos| ≤ 1/√(2ε − ε²) ≈ 2.2e3) even when an embedding sits on a centre.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arcdemo.margins import LOSSES, DecisionRule, check_loss_arguments, psi

ACOS_EPS = 1e-7


def _exact_dtype(embeddings: torch.Tensor) -> torch.dtype:
    """Cosines are computed in float32 even under autocast; float64 inputs (exact checks) stay float64."""
    return torch.float64 if embeddings.dtype == torch.float64 else torch.float32


class MarginHead(nn.Module):
    """Classification head for softmax, NormFace, SphereFace, CosFace, ArcFace, combined and sub-center ArcFace.

    ``margin_fraction`` (0..1, set by the trainer) scales every margin linearly for the margin warm-up: low-D
    embeddings with the full margin from step 0 often stall with all classes collapsed on one side.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        *,
        normalise: bool = True,
        scale: float = 30.0,
        m1: float = 1.0,
        m2: float = 0.0,
        m3: float = 0.0,
        subcentres: int = 1,
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        if subcentres < 1:
            raise ValueError("subcentres must be ≥ 1")
        self.embedding_dim, self.num_classes = embedding_dim, num_classes
        self.normalise, self.scale = normalise, scale
        self.m1, self.m2, self.m3 = m1, m2, m3
        self.subcentres, self.easy_margin = subcentres, easy_margin
        self.margin_fraction = 1.0
        self.weight = nn.Parameter(torch.empty(num_classes * subcentres, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.bias = None if normalise else nn.Parameter(torch.zeros(num_classes))

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos θ between each embedding and each class (max over sub-centres), in float32 (float64 if given)."""
        with torch.autocast(embeddings.device.type, enabled=False):
            dtype = _exact_dtype(embeddings)
            x = F.normalize(embeddings.to(dtype), dim=1)
            w = F.normalize(self.weight.to(dtype), dim=1)
            cos = x @ w.t()
            if self.subcentres > 1:
                cos = cos.view(-1, self.num_classes, self.subcentres).amax(dim=2)
            return cos

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Margin-free logits for prediction (s·cos θ, or the linear layer for plain softmax)."""
        if not self.normalise:
            with torch.autocast(embeddings.device.type, enabled=False):
                dtype = _exact_dtype(embeddings)
                return F.linear(embeddings.to(dtype), self.weight.to(dtype), self.bias.to(dtype))
        return self.scale * self.cosines(embeddings)

    def centres(self) -> torch.Tensor:
        """Unit class centres (C, D); with sub-centres, the normalised mean of each class's sub-centres."""
        w = F.normalize(self.weight.detach().float(), dim=1)
        if self.subcentres > 1:
            w = F.normalize(w.view(self.num_classes, self.subcentres, -1).mean(dim=1), dim=1)
        return w

    def effective_margins(self) -> tuple[float, float, float]:
        """(m1, m2, m3) as trained right now: each margin scaled by the warm-up's ``margin_fraction``."""
        f = self.margin_fraction
        return 1.0 + f * (self.m1 - 1.0), f * self.m2, f * self.m3

    def decision_rule(self, norm: float | None = None) -> DecisionRule:
        """What this head predicts on the unit sphere (softmax: at embedding norm ``norm``, default 1)."""
        weight = self.weight.detach().double().cpu()
        classes = torch.arange(self.num_classes).repeat_interleave(self.subcentres).numpy()
        if not self.normalise:
            bias = self.bias.detach().double().cpu().numpy()
            rule = DecisionRule(weight.numpy(), bias, classes, self.num_classes, norm=1.0, kind="linear")
            return rule if norm is None else rule.at_norm(float(norm))
        margins = self.effective_margins()
        return DecisionRule(
            F.normalize(weight, dim=1).numpy(), np.zeros(len(classes)), classes, self.num_classes,
            margins=None if margins == (1.0, 0.0, 0.0) else margins, easy_margin=self.easy_margin,
            kind="sub-centre" if self.subcentres > 1 else "cosine",
        )

    def margin_logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits with the target class's cosine replaced by ψ(θ): what the loss is computed on."""
        if not self.normalise:
            return self.logits(embeddings)
        cos = self.cosines(embeddings)
        m1, m2, m3 = self.effective_margins()
        target_cos = cos.gather(1, labels.view(-1, 1))
        if m1 != 1.0 or m2 != 0.0 or m3 != 0.0:
            theta = torch.acos(target_cos.clamp(-1.0 + ACOS_EPS, 1.0 - ACOS_EPS))
            with_margin = psi(theta, m1, m2, m3, xp=torch)
            target = torch.where(target_cos > 0, with_margin, target_cos) if self.easy_margin else with_margin
            cos = cos.scatter(1, labels.view(-1, 1), target)
        return self.scale * cos

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.margin_logits(embeddings, labels), labels)


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) on unit embeddings with chord distance ‖a − b‖ ∈ [0, 2].

    For each anchor: hardest positive (farthest same-class) and hardest negative (closest other-class).
    Anchors without a positive or a negative in the batch are skipped.
    """
    x = F.normalize(embeddings.float(), dim=1)
    dist = (2.0 - 2.0 * (x @ x.t())).clamp_min(1e-12).sqrt()
    same = labels.view(-1, 1) == labels.view(1, -1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive_mask, negative_mask = same & ~eye, ~same
    hardest_positive = (dist * positive_mask).amax(dim=1)
    hardest_negative = dist.masked_fill(~negative_mask, float("inf")).amin(dim=1)
    valid = positive_mask.any(dim=1) & negative_mask.any(dim=1)
    if not valid.any():
        return embeddings.sum() * 0.0
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out) with one view per sample.

    Anchors with no other sample of their class in the batch are skipped.
    """
    x = F.normalize(embeddings.float(), dim=1)
    n = len(labels)
    eye = torch.eye(n, dtype=torch.bool, device=labels.device)
    logits = (x @ x.t() / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels.view(-1, 1) == labels.view(1, -1)) & ~eye
    count = positives.sum(dim=1)
    valid = count > 0
    if not valid.any():
        return embeddings.sum() * 0.0
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)[valid] / count[valid]
    return -mean_log_prob.mean()


class FeatureLossHead(nn.Module):
    """Triplet or SupCon on normalised embeddings, with running class means as centres.

    The loss never sees W; the class means (an exponential moving average of batch means, no gradient) let the
    same prediction, evaluation and plotting code treat these models like the margin heads.
    """

    def __init__(self, embedding_dim: int, num_classes: int, *, kind: str, margin: float, scale: float) -> None:
        super().__init__()
        if kind not in ("triplet", "supcon"):
            raise ValueError(f"unknown feature loss {kind!r}")
        self.embedding_dim, self.num_classes = embedding_dim, num_classes
        self.kind, self.margin, self.scale = kind, margin, scale
        self.momentum = 0.05
        self.margin_fraction = 1.0
        self.register_buffer("class_means", F.normalize(torch.randn(num_classes, embedding_dim), dim=1))

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        with torch.autocast(embeddings.device.type, enabled=False):
            dtype = _exact_dtype(embeddings)
            return F.normalize(embeddings.to(dtype), dim=1) @ self.class_means.to(dtype).t()

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosines(embeddings)

    def centres(self) -> torch.Tensor:
        return F.normalize(self.class_means.detach().float(), dim=1)

    def decision_rule(self, norm: float | None = None) -> DecisionRule:
        """Nearest class mean in angle; no margin band (the loss's margin is between samples, not to centres)."""
        means = self.class_means.detach().double().cpu().numpy()  # as ``cosines`` uses them (unit up to rounding)
        return DecisionRule(means, np.zeros(self.num_classes), np.arange(self.num_classes), self.num_classes)

    @torch.no_grad()
    def _update_means(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        x = F.normalize(embeddings.detach().float(), dim=1)
        sums = torch.zeros_like(self.class_means).index_add_(0, labels, x)
        present = torch.bincount(labels, minlength=self.num_classes) > 0
        batch_means = F.normalize(sums, dim=1)
        updated = F.normalize((1 - self.momentum) * self.class_means + self.momentum * batch_means, dim=1)
        self.class_means.copy_(torch.where(present.view(-1, 1), updated, self.class_means))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._update_means(embeddings, labels)
        with torch.autocast(embeddings.device.type, enabled=False):
            if self.kind == "triplet":
                return batch_hard_triplet_loss(embeddings, labels, self.margin * self.margin_fraction)
            return supcon_loss(embeddings, labels, 1.0 / self.scale)


Head = MarginHead | FeatureLossHead


def build_head(
    loss: str,
    embedding_dim: int,
    num_classes: int,
    *,
    margin: float | None = None,
    scale: float | None = None,
    m1: float | None = None,
    m3: float | None = None,
    subcentres: int = 3,
    easy_margin: bool = False,
) -> Head:
    """Build the head for a loss name; ``margin`` is the loss's own margin (see ``LOSSES[loss].margin_meaning``)."""
    spec = LOSSES.get(loss)
    if spec is None:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    margin = spec.margin if margin is None else margin
    scale = spec.scale if scale is None else scale
    check_loss_arguments(loss, margin, scale)
    if spec.head == "feature":
        return FeatureLossHead(embedding_dim, num_classes, kind=loss, margin=margin, scale=scale)
    if spec.head == "linear":
        return MarginHead(embedding_dim, num_classes, normalise=False, scale=1.0)
    given = {"m1": m1, "m3": m3}
    terms = {name: default if given.get(name) is None else given[name] for name, default in spec.psi_defaults.items()}
    if spec.psi is not None:
        terms[spec.psi] = margin
    if spec.subcentres:
        terms["subcentres"] = subcentres
    return MarginHead(embedding_dim, num_classes, scale=scale, easy_margin=easy_margin, **terms)
