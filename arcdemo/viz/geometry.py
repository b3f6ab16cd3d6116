"""Sphere geometry of a head's decision rule, in numpy only: regions, boundaries, margin bands, projections.

Everything drawn comes from the head itself (``arcdemo.margins.DecisionRule``): the class painted at a direction
is the class the rule predicts there, a boundary is where the two best generators of different classes tie, and a
margin band is where ψ(θ_own) = max over rivals of cos θ_rival (for ArcFace θᵢ + m = θⱼ, for CosFace
cos θᵢ − m = cos θⱼ, for SphereFace cos(m·θᵢ) = cos θⱼ, for the combined margin all of m1, m2, m3; with sub-centres
θ is the angle to the nearest sub-centre). One method serves every rule: each pair's tie set is a circle (a great
circle for cosine heads, a small circle for softmax's offsets), scanned and cut exactly where a third generator
takes over. Exact only for D ≤ 3; a D > 3 model seen through a projection has no boundary to draw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from arcdemo.margins import DecisionRule

_SCAN = 360  # 1° scan of each tie circle to find where it is a boundary
_BAND_SCAN = 180  # 2° scan of each foot circle for margin bands
_REFINE_STEPS = 36  # bisections of one scan step: curve ends to ~1e-12 rad
_WALK_SAMPLES = 16  # coarse steps of the walk from a foot to the pole, to bracket the first root
_ROOT_STEPS = 48  # bisections of the bracket: float64 resolution
_ARC_STEP = np.radians(3.0)  # polyline resolution of drawn curves
_BAND_POINTS = 48  # samples per band stretch
_CIRCLE_SCAN = 1440  # 0.25° scan of the unit circle (2-D embeddings)
_TIE_TOLERANCE = 1e-9
_POINT_CONTACT = 1e-6  # rad: shorter stretches are touching points, not curves


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit rows; zero rows stay zero instead of becoming NaN (float64, for the geometry drawn here)."""
    vectors = np.asarray(vectors, dtype=float)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _orthonormal_pair(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane orthogonal to the unit ``normal``."""
    helper = np.eye(3)[np.argmin(np.abs(normal))]
    first = unit_rows(helper - (helper @ normal) * normal)
    return first, np.cross(normal, first)


def great_circle_arc(a: np.ndarray, b: np.ndarray, n: int = 32) -> np.ndarray:
    """``n`` points of the shorter great-circle arc from ``a`` to ``b`` (slerp); inputs need not be unit vectors."""
    start, end = unit_rows(np.stack([a, b]))
    direction = end - (start @ end) * start
    if np.linalg.norm(direction) < 1e-12:  # antipodes: every great circle through them works
        direction = _orthonormal_pair(start)[0]
    angles = np.linspace(0.0, np.arccos(np.clip(start @ end, -1, 1)), n)
    return np.cos(angles)[:, None] * start + np.sin(angles)[:, None] * unit_rows(direction)


def projection_axes(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-3 principal axes (3, D) of the unit centres and points, with the share of the total each explains.

    The PCA is uncentred: on a sphere what matters is the direction from the origin, not from the data mean, so
    the projection of a direction is again a direction. Axis signs are fixed (largest component positive) so
    repeated calls during training do not mirror the view.
    """
    samples = np.vstack([centres, points])
    second_moment = samples.T @ samples
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    top = np.argsort(eigenvalues)[::-1][:3]
    axes = eigenvectors[:, top].T
    axes *= np.where(axes[np.arange(3), np.argmax(np.abs(axes), axis=1)] < 0, -1.0, 1.0)[:, None]
    explained = np.clip(eigenvalues[top], 0.0, None) / max(float(np.trace(second_moment)), 1e-12)
    if points.shape[1] == 3:  # already on S²: keep the user's coordinates, only report the shares
        axes = np.eye(3)
    return axes, explained


def project_to_3d(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map D>=3 embeddings and centres onto S² so they can be drawn; angles are kept as far as 3 axes allow.

    Uncentred PCA fitted on the normalised centres and points, then each projection re-normalised onto the sphere.
    Returns (points3, centres3, explained_variance_ratio of the 3 axes). D == 3 passes through normalised.
    """
    points, centres = unit_rows(points), unit_rows(centres)
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1] or points.shape[1] < 3:
        raise ValueError(f"need (N, D) points and (C, D) centres with D >= 3, got {points.shape}, {centres.shape}")
    axes, explained = projection_axes(points, centres)
    return unit_rows(points @ axes.T), unit_rows(centres @ axes.T), explained


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges [a, b) where ``mask`` holds."""
    steps = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(steps == 1).tolist(), np.flatnonzero(steps == -1).tolist()))


Validity = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows (R,), angles (R, T)) -> (R, T) bool


def _stretches(valid: Validity, count: int, scan: int) -> list[tuple[int, float, float]]:
    """(row, first, last angle) of every stretch of t where ``valid`` holds on each of ``count`` circles.

    Found on a scan of ``scan`` samples of [0, 2π), then both ends bisected between their last valid and first
    invalid sample, so curves of neighbouring pairs meet exactly. A row valid all round gives (row, 0, 2π);
    stretches shorter than ``_POINT_CONTACT`` are dropped.
    """
    step = 2 * np.pi / scan
    mask = valid(np.arange(count), np.broadcast_to(np.arange(scan) * step, (count, scan)))
    stretches: list[list[float]] = []
    ends: list[tuple[int, int, float, float]] = []  # stretch, column (1 first, 2 last), inside, outside
    for row in np.flatnonzero(mask.any(axis=1)):
        row_mask = mask[row]
        if row_mask.all():
            stretches.append([row, 0.0, 2 * np.pi])
            continue
        shift = int(np.argmin(row_mask))  # scan from an invalid sample so no stretch wraps around 2π
        for a, b in true_runs(np.roll(row_mask, -shift)):
            first, last = (a + shift) * step, (b - 1 + shift) * step
            stretches.append([row, first, last])
            ends += [(len(stretches) - 1, 1, first, first - step), (len(stretches) - 1, 2, last, last + step)]
    if ends:
        which, column = (np.array([end[i] for end in ends], dtype=int) for i in (0, 1))
        inside, outside = (np.array([end[i] for end in ends]) for i in (2, 3))
        rows = np.array([stretches[i][0] for i in which], dtype=int)
        for _ in range(_REFINE_STEPS):
            middle = (inside + outside) / 2
            holds = valid(rows, middle[:, None])[:, 0]
            inside, outside = np.where(holds, middle, inside), np.where(holds, outside, middle)
        for i, col, angle in zip(which, column, inside):
            stretches[i][col] = float(angle)
    # a tie that holds at one point only (diagonal centres of a cocircular four) is no boundary
    return [(int(row), first, last) for row, first, last in stretches if last - first > _POINT_CONTACT]


def _sampled(first: float, last: float, count: int | None = None) -> np.ndarray:
    count = count or max(2, int(np.ceil((last - first) / _ARC_STEP)) + 1)
    return np.linspace(first, last, count)


# ------------------------------------------------------------------------------------------------- boundaries


class _TieCircles:
    """For each pair (a, b) of generators, the circle on S² where their scores tie:
    u(t) = d·n + ρ(cos t·e1 + sin t·e2)."""

    def __init__(self, rule: DecisionRule, pairs: np.ndarray) -> None:
        generators, offsets = rule.generators, rule.offsets
        difference = generators[pairs[:, 0]] - generators[pairs[:, 1]]
        length = np.linalg.norm(difference, axis=1)
        distance = (offsets[pairs[:, 1]] - offsets[pairs[:, 0]]) / np.maximum(length, 1e-300)
        keep = (length > 1e-12) & (np.abs(distance) < 1 - 1e-12)
        self.rule, self.pairs = rule, pairs[keep]
        self.normal, self.distance = difference[keep] / length[keep, None], distance[keep]
        self.radius = np.sqrt(1 - self.distance**2)
        frames = [_orthonormal_pair(normal) for normal in self.normal]
        self.first = np.array([f for f, _ in frames]).reshape(-1, 3)
        self.second = np.array([s for _, s in frames]).reshape(-1, 3)

    def points(self, rows: np.ndarray, angles: np.ndarray) -> np.ndarray:
        circle = (np.cos(angles)[..., None] * self.first[rows][:, None]
                  + np.sin(angles)[..., None] * self.second[rows][:, None])
        return (self.distance[rows, None, None] * self.normal[rows][:, None]) + self.radius[rows, None, None] * circle

    def valid(self, rows: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Where the pair's tie is the top score: no third generator beats it (a boundary between their cells)."""
        scores = self.rule.scores(self.points(rows, angles))
        a, b = self.pairs[rows, 0], self.pairs[rows, 1]
        tie = np.take_along_axis(scores, a[:, None, None], axis=-1)[..., 0]
        others = scores.copy()
        np.put_along_axis(others, a[:, None, None], -np.inf, axis=-1)
        np.put_along_axis(others, b[:, None, None], -np.inf, axis=-1)
        rival = others.max(axis=-1) if others.shape[-1] else np.full(tie.shape, -np.inf)
        return rival <= tie + _TIE_TOLERANCE * (1 + np.abs(tie))


def _pairs(rule: DecisionRule, different_classes: bool) -> np.ndarray:
    first, second = np.triu_indices(len(rule.generators), k=1)
    if different_classes:
        keep = rule.classes[first] != rule.classes[second]
        first, second = first[keep], second[keep]
    return np.stack([first, second], axis=1).reshape(-1, 2)


def _on_sphere(rule: DecisionRule) -> DecisionRule:
    if rule.dims != 3:
        raise ValueError(f"sphere geometry needs a 3-D rule, got D={rule.dims}")
    return rule.without_copies()


def _classes_present(rule: DecisionRule) -> int:
    return len(np.unique(rule.classes))


def boundary_arcs(rule: DecisionRule) -> list[np.ndarray]:
    """Where the predicted class flips, as (k, 3) polylines on S², ends cut exactly where a third generator wins.

    For cosine heads these are great-circle arcs (the spherical Voronoi edges of the centres; between two
    sub-centres of different classes for sub-center heads); for softmax, arcs of small circles.
    """
    rule = _on_sphere(rule)
    if _classes_present(rule) < 2:
        return []
    circles = _TieCircles(rule, _pairs(rule, different_classes=True))
    return [circles.points(np.array([row]), _sampled(first, last)[None])[0]
            for row, first, last in _stretches(circles.valid, len(circles.pairs), _SCAN)]


def neighbour_pairs(rule: DecisionRule) -> np.ndarray:
    """(P, 2) generator pairs whose cells touch (any classes): the pairs a margin band can run between."""
    rule = _on_sphere(rule)
    circles = _TieCircles(rule, _pairs(rule, different_classes=False))
    rows = sorted({row for row, _, _ in _stretches(circles.valid, len(circles.pairs), _SCAN)})
    return circles.pairs[rows].reshape(-1, 2)


# ------------------------------------------------------------------------------------------------ margin bands


class _BandSides:
    """Ordered pairs (own a, rival b) of unit generators; each band point sits on the geodesic leaving the pair's
    bisector at right angles from a foot f(t) = cos t·e1 + sin t·e2 towards the bisector's pole on a's side, at
    the first root of ψ(θ_a) − cos θ_b (every point of a's side lies on one such geodesic)."""

    def __init__(self, rule: DecisionRule, sides: np.ndarray) -> None:
        generators = rule.generators
        difference = generators[sides[:, 0]] - generators[sides[:, 1]]
        length = np.linalg.norm(difference, axis=1)
        self.rule, self.sides = rule, sides[length > 1e-12]
        self.normal = difference[length > 1e-12] / length[length > 1e-12, None]
        frames = [_orthonormal_pair(normal) for normal in self.normal]
        self.first = np.array([f for f, _ in frames]).reshape(-1, 3)
        self.second = np.array([s for _, s in frames]).reshape(-1, 3)
        own_class = rule.classes[self.sides[:, 0]]
        self.same_class = rule.classes[None, :] == own_class[:, None]  # (S, K)

    def points(self, rows: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(band points (R, T, 3), whether the walk has a root there)."""
        rule = self.rule
        own, rival = rule.generators[self.sides[rows, 0]][:, None], rule.generators[self.sides[rows, 1]][:, None]
        feet = (np.cos(angles)[..., None] * self.first[rows][:, None]
                + np.sin(angles)[..., None] * self.second[rows][:, None])
        towards = self.normal[rows][:, None]

        def walk(s: np.ndarray) -> np.ndarray:
            return np.cos(s)[..., None] * feet + np.sin(s)[..., None] * towards

        def excess(s: np.ndarray) -> np.ndarray:
            x = walk(s)
            return rule.target(np.sum(x * own, axis=-1)) - np.sum(x * rival, axis=-1)

        # the first sign change on a coarse walk from the bisector (s = 0, excess < 0) to its pole (s = π/2)
        steps = np.linspace(0.0, np.pi / 2, _WALK_SAMPLES + 1)
        coarse = np.stack([excess(np.full(angles.shape, step)) for step in steps], axis=-1)
        positive = coarse > _TIE_TOLERANCE  # a margin that exactly fills the gap only touches: no band
        rooted = positive.any(axis=-1)
        first = np.maximum(np.argmax(positive, axis=-1), 1)
        low, high = steps[first - 1], steps[first]
        for _ in range(_ROOT_STEPS):
            middle = (low + high) / 2
            above = excess(middle) > 0
            low, high = np.where(above, low, middle), np.where(above, middle, high)
        return walk((low + high) / 2), rooted

    def valid(self, rows: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Root found, own is the nearest generator of its class, rival the best of every other class."""
        points, rooted = self.points(rows, angles)
        scores = self.rule.scores(points)
        own = np.take_along_axis(scores, self.sides[rows, 0][:, None, None], axis=-1)[..., 0]
        rival = np.take_along_axis(scores, self.sides[rows, 1][:, None, None], axis=-1)[..., 0]
        same = self.same_class[rows][:, None]
        best_own = np.where(same, scores, -np.inf).max(axis=-1)
        best_rival = np.where(same, -np.inf, scores).max(axis=-1)
        return rooted & (own >= best_own - _TIE_TOLERANCE) & (rival >= best_rival - _TIE_TOLERANCE)


def _rival_pairs(rule: DecisionRule) -> np.ndarray:
    """(P, 2) generator pairs of different classes that can be (own, best rival) somewhere in own's cell.

    Within a cell the runner-up is a Voronoi neighbour; with sub-centres the best *rival* may sit one same-class
    sub-centre further, so neighbours of own's same-class neighbours count too.
    """
    touching = neighbour_pairs(rule)
    neighbours: dict[int, set[int]] = {}
    for a, b in touching:
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    pairs = set()
    for own, near in neighbours.items():
        reach = set(near)
        for other in near:
            if rule.classes[other] == rule.classes[own]:
                reach |= neighbours.get(other, set())
        pairs |= {(min(own, rival), max(own, rival)) for rival in reach if rule.classes[rival] != rule.classes[own]}
    return np.array(sorted(pairs), dtype=int).reshape(-1, 2)


def margin_bands(rule: DecisionRule) -> list[np.ndarray]:
    """Where each class's margin is exactly used up, ψ(θ_own) = max_rival cos θ_rival, as (k, 3) polylines.

    Inside the curves a sample of that class already beats every rival by its margin; the band between a curve and
    the boundary is what the loss still pushes on. Empty for rules without a margin and for softmax.
    """
    rule = _on_sphere(rule)
    if not rule.has_band or _classes_present(rule) < 2:
        return []
    pairs = _rival_pairs(rule)
    sides = _BandSides(rule, np.concatenate([pairs, pairs[:, ::-1]]).reshape(-1, 2))
    curves = []
    for row, first, last in _stretches(sides.valid, len(sides.sides), _BAND_SCAN):
        points, _ = sides.points(np.array([row]), _sampled(first, last, _BAND_POINTS)[None])
        curves.append(points[0])
    return curves


# ---------------------------------------------------------------------------------------------------- painting


def _lat_lon_mesh(latitudes: int, longitudes: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vertices and the triangles of a latitude/longitude grid (no zero-area triangles at the poles)."""
    lat, lon = np.meshgrid(np.linspace(-np.pi / 2, np.pi / 2, latitudes + 1), np.linspace(0, 2 * np.pi, longitudes + 1),
                           indexing="ij")
    vertices = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1).reshape(-1, 3)
    row = longitudes + 1
    corner = (np.arange(latitudes)[:, None] * row + np.arange(longitudes)[None]).ravel()
    triangles = np.concatenate([
        np.stack([corner, corner + 1, corner + row + 1], axis=1),
        np.stack([corner, corner + row + 1, corner + row], axis=1),
    ])
    corners = vertices[triangles]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return vertices, triangles[area > 1e-12]


def _clip(polygon: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """The part of a flat polygon where normal·p + offset·‖p‖ ≥ 0 (the score difference of two generators at the
    direction of p, times ‖p‖; exact for cosine heads, whose offsets are 0)."""
    values = polygon @ normal + offset * np.linalg.norm(polygon, axis=1)
    kept = []
    for i in range(len(polygon)):
        j = (i + 1) % len(polygon)
        if values[i] >= 0:
            kept.append(polygon[i])
        if (values[i] >= 0) != (values[j] >= 0):
            kept.append(polygon[i] + (polygon[j] - polygon[i]) * values[i] / (values[i] - values[j]))
    return np.array(kept).reshape(-1, 3)


def painted_mesh(
    rule: DecisionRule, latitudes: int = 36, longitudes: int = 72
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (V, 3), triangles (F, 3), class of each triangle): the sphere coloured by the predicted class.

    A grid triangle whose corners, edge midpoints and centre all get one class is painted whole; one that
    straddles a boundary is cut along the boundary planes of the generators found in it, so the paint changes
    colour exactly where the prediction does (not at the grid's 5° steps). Vertices are on or inside the unit
    sphere (flat triangles); seen from the centre each piece covers exactly its class's directions.
    """
    rule = _on_sphere(rule)
    vertices, triangles = _lat_lon_mesh(latitudes, longitudes)
    corners = vertices[triangles]
    probes = np.concatenate([corners, (corners + np.roll(corners, -1, axis=1)) / 2, corners.mean(1, keepdims=True)], 1)
    winners = np.argmax(rule.scores(unit_rows(probes)), axis=-1)  # (F, 7) best generator at each probe
    whole = (rule.classes[winners] == rule.classes[winners[:, :1]]).all(axis=1)
    faces, classes = [triangles[whole]], [rule.classes[winners[whole, 0]]]
    extra: list[np.ndarray] = []
    next_vertex = len(vertices)
    for face in np.flatnonzero(~whole):
        candidates = np.unique(winners[face])
        for own in candidates:
            piece = corners[face]
            for other in candidates[candidates != own]:
                piece = _clip(
                    piece, rule.generators[own] - rule.generators[other], rule.offsets[own] - rule.offsets[other]
                )
                if len(piece) < 3:
                    break
            if len(piece) < 3:
                continue
            extra.append(piece)
            fan = np.array([[0, k, k + 1] for k in range(1, len(piece) - 1)]) + next_vertex
            faces.append(fan)
            classes.append(np.full(len(fan), rule.classes[own]))
            next_vertex += len(piece)
    return np.vstack([vertices] + extra), np.vstack(faces).astype(np.int64), np.concatenate(classes).astype(np.int64)


# ------------------------------------------------------------------------------------------------- the circle


def _ring(angles: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def circle_regions(rule: DecisionRule) -> list[tuple[int, float, float]]:
    """(class, first angle, last angle) of each arc of the unit circle a 2-D rule predicts as that class."""
    if rule.dims != 2:
        raise ValueError(f"circle geometry needs a 2-D rule, got D={rule.dims}")
    return _stretches(lambda rows, angles: rule.predict(_ring(angles)) == rows[:, None], rule.num_classes, _CIRCLE_SCAN)


def circle_boundaries(rule: DecisionRule) -> np.ndarray:
    """Angles where a 2-D rule's predicted class changes (each region's first angle)."""
    return np.array(sorted({round(first % (2 * np.pi), 12) for _, first, last in circle_regions(rule)
                            if last - first < 2 * np.pi}))


def circle_margin_zones(rule: DecisionRule) -> list[tuple[float, float]]:
    """(first, last angle) of the arcs where no class's margin is satisfied: the wedges around each boundary."""
    if rule.dims != 2:
        raise ValueError(f"circle geometry needs a 2-D rule, got D={rule.dims}")
    if not rule.has_band:
        return []

    def unsatisfied(rows: np.ndarray, angles: np.ndarray) -> np.ndarray:
        return rule.margin_excess(_ring(angles)).max(axis=-1) < 0

    return [(first, last) for _, first, last in _stretches(unsatisfied, 1, _CIRCLE_SCAN)]
