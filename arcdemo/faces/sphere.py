"""Face verdicts as angles on the unit sphere, exact, in numpy only (the verdict and its figures share it).

A pair score ``cos θ − offset(a) − offset(b)`` clears a threshold T exactly when θ < arccos(T + offset(a) +
offset(b)): the verdict is a cap around a, the uncertain band a ring. Three unit vectors span a 3-D subspace, so a
pair with one more direction (the cohort the score is normalised against), or a probe with its two best enrolled
faces, can be drawn on S² with every angle among them kept. Drawn coordinates put the first vector (a, or the
probe) at the north pole (0, 0, 1), so a cap is a polar cap and a ring two parallels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_INDEPENDENT = 1e-9  # a vector with less than this left after Gram-Schmidt adds no direction to the frame


def _unit(vector: np.ndarray) -> np.ndarray:
    """Unit float64 copy, padded with zeros to at least 3 dimensions (a 2-D embedding is a circle on S²)."""
    vector = np.asarray(vector, dtype=float)
    vector = np.pad(vector, [(0, 0)] * (vector.ndim - 1) + [(0, max(0, 3 - vector.shape[-1]))])
    return vector / np.maximum(np.linalg.norm(vector, axis=-1, keepdims=True), 1e-300)


def _angle(cosine: float) -> float:
    return float(np.arccos(np.clip(cosine, -1.0, 1.0)))


def orthonormal_frame(vectors: list[np.ndarray], dims: int) -> np.ndarray:
    """(3, D) orthonormal rows: Gram-Schmidt of ``vectors`` in order, skipping any that adds no new direction
    (b == a, a cohort direction in the plane of a and b), completed with the standard basis."""
    rows: list[np.ndarray] = []
    for vector in [*vectors, *np.eye(dims)]:
        rest = np.asarray(vector, dtype=float)
        for _ in range(2):  # twice: orthogonal to float precision even for nearly parallel inputs
            rest = rest - sum((rest @ row) * row for row in rows)
        if np.linalg.norm(rest) > _INDEPENDENT:
            rows.append(_unit(rest))
        if len(rows) == 3:
            return np.array(rows)
    raise ValueError(f"a sphere needs at least 3 dimensions, got {dims}")


def to_pole_frame(vectors: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Coordinates (N, 3) in ``frame`` with its first row drawn as the north pole: (·e2, ·e3, ·e1)."""
    return np.atleast_2d(vectors) @ frame[[1, 2, 0]].T


def inside(angle: float, cosine_threshold: float) -> bool:
    """cos θ > t in angles: θ < arccos(t); no θ clears t ≥ 1 and every θ clears t < −1."""
    if cosine_threshold >= 1.0:
        return False
    if cosine_threshold < -1.0:
        return True
    return angle < np.arccos(cosine_threshold)


def beyond(angle: float, cosine_threshold: float) -> bool:
    """cos θ < t in angles: θ > arccos(t); every θ for t > 1, none for t ≤ −1."""
    if cosine_threshold > 1.0:
        return True
    if cosine_threshold <= -1.0:
        return False
    return angle > np.arccos(cosine_threshold)


def clamp_note(cosine_threshold: float, what: str) -> str:
    """A sentence when a cosine threshold lies outside [-1, 1], where no angle reaches it; else ''."""
    if cosine_threshold >= 1.0:
        return f"{what}: cosine {cosine_threshold:.3f} ≥ 1, so no angle is small enough (an empty cap)"
    if cosine_threshold < -1.0:
        return f"{what}: cosine {cosine_threshold:.3f} < −1, so every angle clears it (the whole sphere)"
    return ""


def cohort_direction(vectors: np.ndarray, cohort: np.ndarray, size: int) -> np.ndarray:
    """The unit mean of each vector's ``size`` most similar cohort rows, all together: the identities the cohort
    score measures these faces against (each face's offset is half its cosine with its own nearest rows' mean)."""
    similarities = np.atleast_2d(vectors) @ cohort.T
    nearest = np.argpartition(similarities, -size, axis=1)[:, -size:]
    return _unit(cohort[nearest.ravel()].astype(float).mean(axis=0))


# ---------------------------------------------------------------------------------------------------- the pair


@dataclass(frozen=True)
class PairView:
    """Two faces a, b and a third direction on S², with the verdict's cap and ring around a.

    ``points`` (3, 3): a, b and the third direction, drawn with a at the pole; their angles are the embeddings'.
    Angles in degrees; the ring holds the angles strictly between ``band_deg``. ``cosine_threshold`` and
    ``cosine_band`` are the threshold and band moved onto this pair's cosine (plus both faces' offsets).
    """

    points: np.ndarray
    angle_deg: float
    threshold_angle_deg: float
    band_deg: tuple[float, float]
    cosine: float
    cosine_threshold: float
    cosine_band: tuple[float, float]
    third: str  # what the third direction is
    notes: tuple[str, ...]  # thresholds outside [-1, 1]

    @property
    def same_person(self) -> bool:
        """b inside the cap."""
        return inside(np.radians(self.angle_deg), self.cosine_threshold)

    @property
    def decision(self) -> str:
        """``uncertain`` on the ring, else ``same`` inside the cap, ``different`` outside it."""
        angle = np.radians(self.angle_deg)
        low, high = self.cosine_band
        if beyond(angle, high) and inside(angle, low):
            return "uncertain"
        return "same" if self.same_person else "different"

    def fields(self) -> dict:
        """The verdict's angles, for its JSON."""
        return {"angle_deg": self.angle_deg, "threshold_angle_deg": self.threshold_angle_deg,
                "uncertain_band_deg": list(self.band_deg), "cosine_threshold": self.cosine_threshold,
                "sphere_notes": list(self.notes)}


def pair_view(
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    band: tuple[float, float] | None = None,
    offsets: tuple[float, float] = (0.0, 0.0),
    third: np.ndarray | None = None,
    third_name: str = "",
) -> PairView:
    """The verdict on unit embeddings a, b (score ``cos − offsets[0] − offsets[1]`` against ``threshold``, uncertain
    strictly inside ``band``) as angles; ``third`` a direction to span the view with (None: any direction
    perpendicular to a and b, since the verdict depends on their angle alone)."""
    a, b = _unit(a), _unit(b)
    shift = float(offsets[0]) + float(offsets[1])
    low, high = band if band is not None else (threshold, threshold)
    cosine_threshold, cosine_band = float(threshold) + shift, (float(low) + shift, float(high) + shift)
    frame = orthonormal_frame([a, b] + ([_unit(third)] if third is not None else []), len(a))
    cosine = float(a @ b)
    points = to_pole_frame(np.stack([a, b, _unit(third) if third is not None else frame[2]]), frame)
    notes = [clamp_note(cosine_threshold, "the threshold on this pair's cosine"),
             clamp_note(cosine_band[1], "the uncertain band's inner edge"),
             clamp_note(cosine_band[0], "the uncertain band's outer edge")]
    return PairView(
        points=points,
        angle_deg=float(np.degrees(_angle(cosine))),
        threshold_angle_deg=float(np.degrees(_angle(cosine_threshold))),
        band_deg=(float(np.degrees(_angle(cosine_band[1]))), float(np.degrees(_angle(cosine_band[0])))),
        cosine=cosine,
        cosine_threshold=cosine_threshold,
        cosine_band=cosine_band,
        third=third_name if third is not None else "third axis: any direction perpendicular to both faces "
        "(the score is their cosine alone)",
        notes=tuple(note for note in notes if note),
    )


# ------------------------------------------------------------------------------------------------- the gallery


@dataclass(frozen=True)
class GalleryView:
    """A probe among enrolled people on S²: the probe at the pole, each person's centre with the cap of the
    gallery rule's threshold around it (``cap_deg``: this probe inside ⇔ its score against that person clears it).

    ``angles_deg`` are the exact probe-to-person angles and every drawn centre keeps its own; ``exact`` marks the
    centres whose whole place is exact (the two best, which with the probe span the view); the others' bearing
    around the probe is their direction projected into that view.
    """

    points: np.ndarray  # (N, 3) drawn centres
    angles_deg: np.ndarray  # (N,)
    cap_deg: np.ndarray  # (N,)
    cosine_thresholds: np.ndarray  # (N,): the threshold moved onto each person's cosine with this probe
    scores: np.ndarray  # (N,) pair scores, as the gallery rule ranks them
    order: np.ndarray  # (N,) best score first
    exact: np.ndarray  # (N,) bool
    threshold: float
    notes: tuple[str, ...]

    @property
    def holding(self) -> np.ndarray:
        """Which caps the probe is inside."""
        return np.array([inside(np.radians(angle), t) for angle, t in zip(self.angles_deg, self.cosine_thresholds)])

    @property
    def named(self) -> int | None:
        """The person whose cap holds the probe deepest (cos θ − the cap's cosine, i.e. score − threshold); None
        outside every cap."""
        holding = self.holding
        if not holding.any():
            return None
        depth = np.cos(np.radians(self.angles_deg)) - self.cosine_thresholds
        return int(np.argmax(np.where(holding, depth, -np.inf)))


def gallery_view(
    probe: np.ndarray,
    people: np.ndarray,
    threshold: float,
    offsets: np.ndarray | None = None,
    probe_offset: float = 0.0,
    third: np.ndarray | None = None,
    names: list[str] | None = None,
) -> GalleryView:
    """The gallery rule (pair scores ``cos − offsets[i] − probe_offset``, the best named above ``threshold``) as
    caps; ``third`` spans the view when fewer than two people are enrolled (None: any perpendicular direction);
    ``names`` word the notes."""
    probe = _unit(probe)
    people = _unit(np.atleast_2d(people))
    offsets = np.zeros(len(people)) if offsets is None else np.asarray(offsets, dtype=float)
    cosines = people @ probe
    scores = cosines - offsets - probe_offset
    order = np.argsort(-scores, kind="stable")
    best = [people[i] for i in order[:2]]
    frame = orthonormal_frame([probe, *best, *([_unit(third)] if third is not None else [])], len(probe))
    angles = np.arccos(np.clip(cosines, -1.0, 1.0))
    across = (people - cosines[:, None] * probe) @ frame[1:].T  # each centre's way off the probe, in the view
    bearing = np.arctan2(across[:, 1], across[:, 0])
    points = np.stack([np.sin(angles) * np.cos(bearing), np.sin(angles) * np.sin(bearing), np.cos(angles)], axis=1)
    exact = np.zeros(len(people), dtype=bool)
    exact[order[:2]] = True
    points[exact] = to_pole_frame(people[exact], frame)
    cosine_thresholds = float(threshold) + offsets + probe_offset
    names = names or [f"person {i}" for i in range(len(people))]
    notes = [f"{len(people) - 2} more: angle to the probe exact, bearing around it projected"] * (len(people) > 2)
    notes += [note for i in order if (note := clamp_note(cosine_thresholds[i], f"{names[i]}'s cap"))]
    return GalleryView(points, np.degrees(angles), np.degrees(np.arccos(np.clip(cosine_thresholds, -1.0, 1.0))),
                       cosine_thresholds, scores, order, exact, float(threshold), tuple(notes))
