"""The margin function ψ and a head's decision rule as plain numbers, shared by the heads and the sphere drawing.

``psi`` is written once for any array module with ``cos``/``floor``/``remainder``/``where`` (numpy and torch both
qualify), so the loss the heads train with and the margin bands drawn on the sphere are the same formula.
``DecisionRule`` is what a head predicts, in numpy: class = classes[argmax_k(generators_k · u + offsets_k)] for a
unit direction u. Every head fits that shape:

- cosine heads (NormFace, SphereFace, CosFace, ArcFace, combined; triplet/SupCon class means): unit generators, one
  per class, offsets 0, so the cells are the spherical Voronoi cells of the centres;
- sub-center ArcFace: every sub-centre is a generator of its class (prediction takes the max over sub-centres);
- softmax: argmax(W·x + b) at ‖x‖ = r is argmax(W·u + b/r), so generators W and offsets b/r: its cells move with
  the embedding norm, which is why the rule carries the norm it was drawn at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from arcdemo.catalog import LOSSES, LossInfo

__all__ = ["LOSSES", "LossInfo", "DecisionRule", "check_loss_arguments", "margin_formula", "psi"]


def psi(theta: Any, m1: float, m2: float, m3: float, xp: Any = np) -> Any:
    """Target logit ψ(θ) before scaling: cos(m1·θ + m2) − m3, kept monotonically decreasing on [0, π].

    Past m1·θ + m2 > π the cosine would turn back up and reward moving *away* from the centre. For ArcFace-like
    margins (m1 = 1) we use insightface's linear fallback cos θ − m2·sin m2; otherwise SphereFace's
    ψ(θ) = (−1)^k cos(m1·θ + m2) − 2k, k = ⌊(m1·θ + m2)/π⌋, which is continuous and decreasing for any m1 ≥ 1.
    ``xp`` is the array module of ``theta`` (numpy or torch).
    """
    angle = m1 * theta + m2
    inside = xp.cos(angle) - m3
    if m1 == 1.0:
        outside = xp.cos(theta) - m2 * math.sin(m2) - m3
    else:
        k = xp.floor(angle / math.pi)
        sign = 1.0 - 2.0 * xp.remainder(k, 2.0)
        outside = sign * xp.cos(angle) - 2.0 * k - m3
    return xp.where(angle <= math.pi, inside, outside)


def margin_formula(m1: float, m2: float, m3: float) -> str:
    """The band's equation in the loss's own terms, e.g. 'θᵢ + 0.50 = θⱼ' or 'cos θᵢ − 0.35 = cos θⱼ'."""
    angle = "θᵢ" if m1 == 1.0 else f"{m1:g}·θᵢ"
    if m2:
        angle = f"{angle} + {m2:.2f}"
    if m3 == 0.0 and m1 == 1.0:
        return f"{angle} = θⱼ ({math.degrees(m2):.1f}°)"
    left = f"cos({angle})" if angle != "θᵢ" else "cos θᵢ"
    if m3:
        left = f"{left} − {m3:.2f}"
    return f"{left} = cos θⱼ"


@dataclass(frozen=True)
class DecisionRule:
    """What a head predicts for a direction u on the unit sphere, and where its margin is used up."""

    generators: np.ndarray  # (K, D) float64
    offsets: np.ndarray  # (K,) float64
    classes: np.ndarray  # (K,) int: the class each generator votes for
    num_classes: int
    margins: tuple[float, float, float] | None = None  # (m1, m2, m3) of ψ, None: no margin band to draw
    easy_margin: bool = False  # ψ only where cos θ > 0 (insightface's easy_margin)
    norm: float | None = None  # the embedding norm the rule is drawn at (softmax only; the others ignore it)
    kind: str = "cosine"  # "cosine", "sub-centre" or "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "generators", np.asarray(self.generators, dtype=np.float64))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "classes", np.asarray(self.classes, dtype=np.int64).reshape(-1))
        if not len(self.generators) == len(self.offsets) == len(self.classes):
            raise ValueError("generators, offsets and classes must have one row per generator")

    @classmethod
    def from_centres(
        cls, centres: np.ndarray, margins: tuple[float, float, float] | None = None, easy_margin: bool = False
    ) -> DecisionRule:
        """A cosine head with one (normalised) centre per class; rows that are zero or not finite are dropped."""
        centres = np.asarray(centres, dtype=np.float64)
        lengths = np.linalg.norm(centres, axis=1)
        usable = np.isfinite(lengths) & (lengths > 1e-12)
        unit = centres[usable] / lengths[usable, None]
        return cls(unit, np.zeros(len(unit)), np.flatnonzero(usable), len(centres), margins, easy_margin)

    def without_copies(self) -> DecisionRule:
        """The same rule minus generators that repeat an earlier one: argmax takes the first of a tie, so a copy
        never wins anywhere (and a zero-length tie circle has nothing to draw)."""
        rows = np.column_stack([self.generators, self.offsets])
        gaps = np.linalg.norm(rows[:, None] - rows[None], axis=-1) if len(rows) else np.zeros((0, 0))
        first = np.argmax(gaps < 1e-9, axis=1) if len(rows) else np.zeros(0, dtype=int)
        keep = first == np.arange(len(rows))
        if keep.all():
            return self
        return replace(self, generators=self.generators[keep], offsets=self.offsets[keep], classes=self.classes[keep])

    def at_norm(self, norm: float) -> DecisionRule:
        """A linear rule redrawn at embedding norm ``norm`` (offsets are b / r); other rules ignore the norm."""
        if self.kind != "linear":
            return self
        return replace(self, offsets=self.offsets * (1.0 if self.norm is None else self.norm) / norm, norm=float(norm))

    @property
    def dims(self) -> int:
        return self.generators.shape[1]

    @property
    def has_band(self) -> bool:
        if self.margins is None or self.kind == "linear":
            return False
        m1, m2, m3 = self.margins
        return min(m1 - 1.0, m2, m3) >= 0 and max(m1 - 1.0, m2, m3) > 0  # a margin that asks for more, not less

    def scores(self, points: np.ndarray) -> np.ndarray:
        """(…, K) generator scores of unit directions (…, D); for cosine rules these are the cosines."""
        return points @ self.generators.T + self.offsets

    def predict(self, points: np.ndarray) -> np.ndarray:
        """The class predicted at each unit direction."""
        return self.classes[np.argmax(self.scores(points), axis=-1)]

    def class_cosines(self, points: np.ndarray) -> np.ndarray:
        """(…, C) best score of each class (a class without generators gets −inf)."""
        scores = self.scores(points)
        best = np.full(scores.shape[:-1] + (self.num_classes,), -np.inf)
        for k, label in enumerate(self.classes):
            best[..., label] = np.maximum(best[..., label], scores[..., k])
        return best

    def target(self, cosine: np.ndarray) -> np.ndarray:
        """ψ(θ) for cos θ (the target class's logit with the margin, in cosine units)."""
        m1, m2, m3 = self.margins or (1.0, 0.0, 0.0)
        cosine = np.clip(cosine, -1.0, 1.0)
        value = psi(np.arccos(cosine), m1, m2, m3)
        return np.where(cosine > 0, value, cosine) if self.easy_margin else value

    def margin_excess(self, points: np.ndarray) -> np.ndarray:
        """(…, C): ψ(θ_c) − max_{k≠c} cos θ_k; positive where a sample of class c already satisfies its margin."""
        best = self.class_cosines(points)
        excess = np.full_like(best, -np.inf)
        for c in range(self.num_classes):
            others = np.delete(best, c, axis=-1)
            rival = others.max(axis=-1) if others.shape[-1] else np.full(best.shape[:-1], -np.inf)
            with np.errstate(invalid="ignore"):
                excess[..., c] = np.where(np.isfinite(best[..., c]), self.target(best[..., c]) - rival, -np.inf)
        return excess

    def formula(self) -> str:
        return margin_formula(*self.margins) if self.margins else ""


def check_loss_arguments(loss: str, margin: float, scale: float) -> None:
    """Raise ValueError with the allowed range when a loss gets an unusable margin or scale."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    spec = LOSSES[loss]
    for what, value, (low, high) in (("margin", margin, spec.margin_range), ("scale", scale, spec.scale_range)):
        if not math.isfinite(value) or not low <= value <= high:
            allowed = f"{low:g}" if low == high else f"[{low:g}, {high:g}]"
            raise ValueError(f"{what} {value!r} is out of range for {loss}: allowed {allowed}")
