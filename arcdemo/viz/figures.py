"""Plotly figures for the lab, built from plain numpy arrays.

Embeddings and class centres live on the unit sphere, so every view here keeps angles readable: the quantity a
margin loss acts on is the angle θ between a sample and a centre. Decision boundaries are where two centres are
equally far in angle (the edges of the spherical Voronoi diagram of the centres); a margin m (radians) asks each
sample to be closer to its own centre by m, which pushes the usable region of class i back to the curve
θ_i + m = θ_j on each side of a boundary. Nothing here imports torch or gradio, so every view is testable offline.

Figures that are replaced during live training set ``layout.uirevision`` to a constant, so the user's camera,
zoom and legend toggles survive each refresh.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy.spatial import QhullError, SphericalVoronoi

CLASS_COLOURS: list[str] = qualitative.D3 + qualitative.Dark24  # D3 first: its 10 colours suit MNIST/CIFAR-10
BOUNDARY_COLOUR = "#222222"
MARGIN_COLOUR = "#555555"
SPHERE_UIREVISION = "sphere"
CIRCLE_UIREVISION = "circle"

_DECIMALS = 4  # 1e-4 on the unit sphere is far below a pixel; rounding keeps the JSON small
_AXIS_RANGE = [-1.1, 1.1]
_DUPLICATE_TOLERANCE = 1e-6  # centres closer than this are one centre (Voronoi needs distinct generators)
_COPLANAR_TOLERANCE = 1e-7  # relative smallest spread below which centres count as lying on one circle
_VERTEX_MERGE_TOLERANCE = 1e-8  # Voronoi vertices of 4+ cocircular centres come out as near-copies
_ARC_STEP = np.radians(3.0)  # polyline resolution of boundary arcs
_JUNCTION_STEPS = 30  # bisections of a foot-angle step: places curve ends to ~1e-10 rad
_COARSE_FEET = 180  # 2° scan of a bisector circle to find where a margin curve is valid
_PAINT_LATITUDES = 36  # 5° faces: coarse, but a few thousand faces keep the JSON small
_PAINT_LONGITUDES = 72
_PAINT_RADIUS = 0.985  # just under the points and lines so they are never hidden by the paint
_HISTOGRAM_BIN_DEG = 2.0


class _Edge(NamedTuple):
    """A decision-boundary arc between two centres: from ``start`` along the unit ``tangent`` for ``length`` rad."""

    first: int
    second: int
    start: np.ndarray
    tangent: np.ndarray
    length: float


# ----------------------------------------------------------------------------------------------------- geometry


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit rows; zero rows stay zero instead of becoming NaN (float64, for the geometry drawn here)."""
    vectors = np.asarray(vectors, dtype=float)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _arc(start: np.ndarray, tangent: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Move ``start`` by each angle along the great circle heading ``tangent`` (unit, orthogonal to ``start``).

    ``start`` is one point or one per angle (then each row moves by its own angle along the shared tangent).
    """
    return np.cos(angles)[:, None] * start + np.sin(angles)[:, None] * tangent


def _tangent_towards(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unit tangent at ``a`` pointing to ``b``; any tangent when ``b`` is ±``a`` (then every great circle works)."""
    direction = b - (a @ b) * a
    if np.linalg.norm(direction) < 1e-12:
        direction = np.cross(a, np.eye(3)[np.argmin(np.abs(a))])
    return direction / np.linalg.norm(direction)


def great_circle_arc(a: np.ndarray, b: np.ndarray, n: int = 32) -> np.ndarray:
    """``n`` points of the shorter great-circle arc from ``a`` to ``b`` (slerp); inputs need not be unit vectors."""
    start, end = unit_rows(np.stack([a, b]))
    return _arc(start, _tangent_towards(start, end), np.linspace(0.0, np.arccos(np.clip(start @ end, -1, 1)), n))


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


def _distinct_centres(centres: np.ndarray) -> np.ndarray:
    """Unit centres with duplicates, zeros and non-finite rows dropped: the generators a Voronoi diagram accepts."""
    unit = unit_rows(centres)
    unit = unit[np.all(np.isfinite(unit), axis=1) & (np.linalg.norm(unit, axis=1) > 0.5)]
    if len(unit) < 2:
        return unit
    gaps = np.linalg.norm(unit[:, None] - unit[None], axis=-1)
    first_copy = np.argmax(gaps < _DUPLICATE_TOLERANCE, axis=1)
    return unit[first_copy == np.arange(len(unit))]


def _cocircular_edges(unit: np.ndarray) -> list[_Edge]:
    """Boundaries of centres lying on one circle (always true for 2 or 3): half great circles pole to pole.

    Every centre has the same height above the circle's plane, so the nearest centre is the azimuthally nearest
    one and each cell is a lune between the plane's two poles, split at the azimuth halfway between neighbours.
    """
    _, _, frame = np.linalg.svd(unit - unit.mean(axis=0))
    in_plane_a, in_plane_b, pole = frame
    azimuths = np.arctan2(unit @ in_plane_b, unit @ in_plane_a)
    order = np.argsort(azimuths)
    edges = []
    for first, second in zip(order, np.roll(order, -1)):
        middle = azimuths[first] + ((azimuths[second] - azimuths[first]) % (2 * np.pi)) / 2
        direction = np.cos(middle) * in_plane_a + np.sin(middle) * in_plane_b
        edges.append(_Edge(int(first), int(second), pole, direction, float(np.pi)))
    return edges


def _ownership(unit: np.ndarray, edge: _Edge) -> float:
    """How much closer the edge's midpoint is to its own two centres than to any other (negative: wrong arc)."""
    midpoint = _arc(edge.start, edge.tangent, np.array([edge.length / 2]))[0]
    cosines = unit @ midpoint
    others = np.delete(cosines, [edge.first, edge.second])
    return float(cosines[edge.first] - others.max()) if len(others) else np.inf


def _edge_between(unit: np.ndarray, first: int, second: int, a: np.ndarray, b: np.ndarray) -> _Edge:
    """The arc from vertex ``a`` to ``b`` on the bisector of two centres, taking whichever way round is the real edge.

    Two vertices split their great circle into two arcs; usually the shorter one is the edge, but near-degenerate
    layouts produce edges longer than π (or antipodal vertices), so the arc whose midpoint the two centres own wins.
    """
    forward = unit_rows(np.cross(unit[first] - unit[second], a))
    length = float(np.arctan2(b @ forward, b @ a) % (2 * np.pi))
    candidates = (_Edge(first, second, a, forward, length), _Edge(first, second, a, -forward, 2 * np.pi - length))
    return max(candidates, key=lambda edge: _ownership(unit, edge))


def _voronoi_edges(unit: np.ndarray) -> list[_Edge]:
    """Edges of the spherical Voronoi diagram of 4+ non-coplanar distinct centres."""
    diagram = SphericalVoronoi(unit)
    diagram.sort_vertices_of_regions()
    vertices = diagram.vertices
    gaps = np.linalg.norm(vertices[:, None] - vertices[None], axis=-1)
    canonical = np.argmax(gaps < _VERTEX_MERGE_TOLERANCE, axis=1)
    owners: dict[tuple[int, int], set[int]] = {}
    for centre, region in enumerate(diagram.regions):
        corners = [int(vertex) for vertex in canonical[region]]
        for a, b in zip(corners, corners[1:] + corners[:1]):
            if a != b:
                owners.setdefault((min(a, b), max(a, b)), set()).add(centre)
    return [
        _edge_between(unit, *sorted(pair), vertices[a], vertices[b])
        for (a, b), pair in owners.items()
        if len(pair) == 2
    ]


def _boundary_edges(centres: np.ndarray) -> tuple[np.ndarray, list[_Edge]]:
    """Distinct unit centres and the boundary arcs between them; degenerate layouts never raise."""
    centres = np.asarray(centres, dtype=float)
    if centres.ndim != 2 or centres.shape[1] != 3:
        raise ValueError(f"centres must be (C, 3), got {centres.shape}")
    unit = _distinct_centres(centres)
    if len(unit) < 2:
        return unit, []
    spread = np.linalg.svd(unit - unit.mean(axis=0), compute_uv=False)
    if len(unit) < 4 or spread[2] < _COPLANAR_TOLERANCE * spread[0]:
        return unit, _cocircular_edges(unit)
    try:
        return unit, _voronoi_edges(unit)
    except (QhullError, ValueError):
        return unit, []


def _edge_points(edge: _Edge) -> np.ndarray:
    """Polyline of an edge, about one point per 3°."""
    count = max(2, int(np.ceil(edge.length / _ARC_STEP)) + 1)
    return _arc(edge.start, edge.tangent, np.linspace(0.0, edge.length, count))


def decision_boundary_arcs(centres: np.ndarray) -> list[np.ndarray]:
    """Where the predicted class flips (equal angle to two neighbouring centres), as (k, 3) polylines on S².

    The edges of the spherical Voronoi diagram of the centres. Duplicate centres are merged; 2 or 3 centres, or
    centres on one circle, get the exact lune boundaries (half great circles); a single centre has none.
    """
    _, edges = _boundary_edges(centres)
    return [_edge_points(edge) for edge in edges]


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges [a, b) where ``mask`` holds."""
    steps = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(steps == 1).tolist(), np.flatnonzero(steps == -1).tolist()))


class _MarginSides(NamedTuple):
    """Both sides (near, far) of every neighbouring pair whose centres are more than the margin apart.

    Each side's bisector great circle gets a frame: the foot angle t names the point cos t·start + sin t·heading.
    Every point of a margin curve lies on the geodesic leaving the bisector at right angles from one such foot.
    """

    unit: np.ndarray  # (C, 3) distinct unit centres
    near: np.ndarray  # (S,) index of the centre whose side the curve is on
    far: np.ndarray  # (S,) index of the other centre
    start: np.ndarray  # (S, 3)
    heading: np.ndarray  # (S, 3)
    margin: float

    def band(self, rows: np.ndarray, foot_angles: np.ndarray) -> np.ndarray:
        """(R, T, 3): for each foot, the point on its perpendicular geodesic where θ_near + margin = θ_far.

        Walking x = cos s·b + sin s·u from foot b (u ⟂ bisector, towards near) gives cos θ_near, cos θ_far =
        β cos s ± sin(ω/2) sin s with β = b·c_near, ω the centre separation; θ_far − θ_near = m then solves to
        cos² s = cos²(m/2)(1 − k) / (cos²(m/2) − kβ²), k = sin²(m/2)/sin²(ω/2), defined whenever m < ω.
        """
        near, far = self.unit[self.near[rows]][:, None], self.unit[self.far[rows]][:, None]
        feet = (
            np.cos(foot_angles)[..., None] * self.start[rows][:, None]
            + np.sin(foot_angles)[..., None] * self.heading[rows][:, None]
        )
        k = np.sin(self.margin / 2) ** 2 / ((1 - np.sum(near * far, axis=-1)) / 2)
        beta = np.sum(feet * near, axis=-1)
        half_margin_cos_sq = np.cos(self.margin / 2) ** 2
        cos_step = np.minimum(1.0, np.sqrt(half_margin_cos_sq * (1 - k) / (half_margin_cos_sq - k * beta**2)))
        return cos_step[..., None] * feet + np.sqrt(1 - cos_step**2)[..., None] * unit_rows(near - far)

    def valid(self, rows: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(R, T): whether far is still the runner-up; where a third centre is closer, that pair's curve limits."""
        cosines = points @ self.unit.T
        far_cosine = np.take_along_axis(cosines, self.far[rows][:, None, None], axis=-1)[..., 0]
        others = np.ones((len(rows), len(self.unit)), dtype=bool)
        others[np.arange(len(rows)), self.near[rows]] = False
        others[np.arange(len(rows)), self.far[rows]] = False
        return np.where(others[:, None], cosines, -np.inf).max(axis=-1, initial=-np.inf) <= far_cosine + 1e-9


def _margin_sides(unit: np.ndarray, edges: list[_Edge], margin: float) -> _MarginSides:
    """Sides of the pairs the boundary edges separate (two edges may share a pair, e.g. for two centres)."""
    pairs = sorted({(min(edge.first, edge.second), max(edge.first, edge.second)) for edge in edges})
    sides = np.array([side for first, second in pairs for side in ((first, second), (second, first))], dtype=int)
    sides = sides.reshape(-1, 2)
    separation = np.arccos(np.clip(np.sum(unit[sides[:, 0]] * unit[sides[:, 1]], axis=1), -1.0, 1.0))
    near, far = sides[margin < separation].T
    normals = unit_rows(unit[near] - unit[far])
    start = np.array([_tangent_towards(normal, unit[a] + unit[b]) for normal, a, b in zip(normals, near, far)])
    start = start.reshape(-1, 3)  # keeps the shape when no side has room for the margin
    return _MarginSides(unit, near, far, start, np.cross(normals, start), margin)


def _valid_foot_ranges(sides: _MarginSides) -> list[tuple[int, float, float]]:
    """(side, first, last foot angle) of each stretch where a side's curve is valid, from a coarse scan of the whole
    bisector circle and widened by one step each way (near Voronoi vertices, and for margins close to the
    separation, feet lie far beyond the Voronoi edge itself). A curve valid all round gets [0, 2π] and closes."""
    step = 2 * np.pi / _COARSE_FEET
    rows = np.arange(len(sides.near))
    coarse = np.broadcast_to(np.arange(_COARSE_FEET) * step, (len(rows), _COARSE_FEET))
    ranges = []
    for row, row_valid in enumerate(sides.valid(rows, sides.band(rows, coarse))):
        if row_valid.all():
            ranges.append((row, 0.0, 2 * np.pi))
            continue
        first_invalid = int(np.argmin(row_valid))  # scan from there so no stretch wraps around 2π
        positions = (np.arange(_COARSE_FEET) + first_invalid) * step
        valid_runs = _true_runs(np.roll(row_valid, -first_invalid))
        ranges += [(row, positions[a] - step, positions[b - 1] + step) for a, b in valid_runs]
    return ranges


def margin_band_curves(centres: np.ndarray, margin: float, n: int = 48) -> list[np.ndarray]:
    """Where an additive angular margin (radians) is exactly used up, on both sides of every decision boundary.

    For each pair of neighbouring centres (i, j): the curve θ_i + m = θ_j on i's side and θ_j + m = θ_i on j's
    side, as (k, 3) unit-norm polylines (``n`` samples per stretch). Only the parts where i and j are the two
    nearest centres are kept, ending exactly where a third centre takes over, so together the curves outline each
    class's margin-satisfied region. A pair less than m apart has no such curve. Empty for margin <= 0.
    """
    if margin <= 0:
        return []
    unit, edges = _boundary_edges(centres)
    sides = _margin_sides(unit, edges, margin)
    ranges = _valid_foot_ranges(sides)
    if not ranges:
        return []
    rows = np.array([row for row, _, _ in ranges])
    first, last = np.array([[a, b] for _, a, b in ranges]).T
    angles = first[:, None] + (last - first)[:, None] * np.linspace(0.0, 1.0, n)
    points = sides.band(rows, angles)
    runs = [(stretch, a, b) for stretch, valid in enumerate(sides.valid(rows, points)) for a, b in _true_runs(valid)]

    # a run that stops inside its stretch ends at a junction: bisect the foot angle between its last valid sample
    # and the invalid neighbour, so curves of neighbouring pairs meet instead of stopping a sample short
    ends = [(stretch, a, a - 1) for stretch, a, _ in runs if a > 0]
    ends += [(stretch, b - 1, b) for stretch, _, b in runs if b < n]
    end_stretch, inside_index, outside_index = np.array(ends, dtype=int).reshape(-1, 3).T
    end_rows = rows[end_stretch]
    inside, outside = angles[end_stretch, inside_index], angles[end_stretch, outside_index]
    for _ in range(_JUNCTION_STEPS):
        middle = (inside + outside) / 2
        still_valid = sides.valid(end_rows, sides.band(end_rows, middle[:, None]))[:, 0]
        inside, outside = np.where(still_valid, middle, inside), np.where(still_valid, outside, middle)
    junctions = dict(zip(ends, sides.band(end_rows, inside[:, None])[:, 0]))

    curves = []
    for stretch, a, b in runs:
        before = [junctions[(stretch, a, a - 1)]] if a > 0 else []
        after = [junctions[(stretch, b - 1, b)]] if b < n else []
        curve = np.vstack(before + [points[stretch, a:b]] + after)
        if len(curve) >= 2:
            curves.append(curve)
    return curves


# ------------------------------------------------------------------------------------------------ figure helpers


def _class_colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def _rounded(values: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float), _DECIMALS)


def _with_gaps(polylines: list[np.ndarray]) -> list[list[float | None]]:
    """Columns of several polylines joined into one trace, separated by None (one trace is far smaller JSON)."""
    dims = polylines[0].shape[1] if polylines else 3
    columns: list[list[float | None]] = [[] for _ in range(dims)]
    for polyline in polylines:
        for column, values in zip(columns, _rounded(polyline).T):
            column.extend(values.tolist() + [None])
    return columns


def _subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` (+1 per rare class), stratified so every class stays visible.

    Deterministic for a given seed, so live refreshes show the same samples moving rather than flicker.
    """
    if len(labels) <= max_points:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.minimum(counts, np.maximum(1, counts * max_points // len(labels)))
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=quota, replace=False) for label, quota in zip(classes, quotas)
    ]
    return np.sort(np.concatenate(chosen))


def _check_inputs(points: np.ndarray, labels: np.ndarray, centres: np.ndarray, class_names: list[str]) -> None:
    """Fail with the shapes in the message rather than deep inside numpy or plotly."""
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1] or points.shape[1] < 2:
        raise ValueError(f"need (N, D) points and (C, D) centres with D >= 2, got {points.shape}, {centres.shape}")
    if len(labels) != len(points) or len(class_names) != len(centres):
        raise ValueError(
            f"{len(points)} points with {len(labels)} labels, {len(centres)} centres with {len(class_names)} names"
        )


def _margin_legend(margin: float) -> str:
    return f"margin band (m = {margin:.2f} rad = {np.degrees(margin):.1f}°)"


# ------------------------------------------------------------------------------------------------------ 3-D view


def _scene_settings() -> dict:
    """Fixed cube and ranges: the camera does not jump when points move during training."""
    hidden_axis = dict(range=_AXIS_RANGE, visible=False, showspikes=False)
    return dict(
        aspectmode="cube",
        xaxis=hidden_axis,
        yaxis=hidden_axis,
        zaxis=hidden_axis,
        camera=dict(eye=dict(x=1.35, y=1.35, z=0.85)),
    )


def _wireframe_trace() -> go.Scatter3d:
    """Faint meridians and parallels: enough to read the sphere's shape without hiding points behind a surface."""
    around = np.linspace(0, 2 * np.pi, 73)
    meridians = [
        np.stack([np.cos(longitude) * np.sin(around), np.sin(longitude) * np.sin(around), np.cos(around)], axis=1)
        for longitude in np.radians(np.arange(0, 180, 30))
    ]
    parallels = [
        np.stack([np.cos(lat) * np.cos(around), np.cos(lat) * np.sin(around), np.full_like(around, np.sin(lat))], 1)
        for lat in np.radians(np.arange(-60, 61, 30))
    ]
    x, y, z = _with_gaps(meridians + parallels)
    return go.Scatter3d(
        x=x, y=y, z=z, mode="lines", line=dict(color="rgba(120,120,120,0.25)", width=1),
        hoverinfo="skip", showlegend=False, name="unit sphere",
    )


def _painted_sphere_trace(centres3: np.ndarray) -> go.Mesh3d:
    """The sphere coloured by predicted class (argmax cosine to the centres), one colour per mesh face."""
    latitudes = np.linspace(-np.pi / 2, np.pi / 2, _PAINT_LATITUDES + 1)
    longitudes = np.linspace(0, 2 * np.pi, _PAINT_LONGITUDES + 1)
    lat, lon = np.meshgrid(latitudes, longitudes, indexing="ij")
    vertices = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1).reshape(-1, 3)
    row = _PAINT_LONGITUDES + 1
    corner = (np.arange(_PAINT_LATITUDES)[:, None] * row + np.arange(_PAINT_LONGITUDES)[None]).ravel()
    triangles = np.concatenate([
        np.stack([corner, corner + 1, corner + row + 1], axis=1),
        np.stack([corner, corner + row + 1, corner + row], axis=1),
    ])
    face_centres = unit_rows(vertices[triangles].mean(axis=1))
    predicted = np.argmax(face_centres @ unit_rows(centres3).T, axis=1)
    x, y, z = _rounded(vertices * _PAINT_RADIUS).T
    return go.Mesh3d(
        x=x, y=y, z=z, i=triangles[:, 0], j=triangles[:, 1], k=triangles[:, 2],
        facecolor=[_class_colour(int(label)) for label in predicted], opacity=0.35, flatshading=True,
        lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0), hoverinfo="skip", showlegend=False,
        name="predicted class",
    )


def _class_point_traces_3d(points3: np.ndarray, labels: np.ndarray, class_names: list[str]) -> list[go.Scatter3d]:
    traces = []
    for index, name in enumerate(class_names):
        x, y, z = _rounded(points3[labels == index]).T
        traces.append(go.Scatter3d(
            x=x, y=y, z=z, mode="markers", name=name, legendgroup=name, hoverinfo="name",
            marker=dict(size=2.5, color=_class_colour(index), opacity=0.75),
        ))
    return traces


def _centre_traces_3d(centres3: np.ndarray, class_names: list[str]) -> list[go.Scatter3d]:
    """A line from the origin to each centre, tipped with a marker and the class name (grouped with the class)."""
    traces = []
    for index, (centre, name) in enumerate(zip(_rounded(centres3), class_names)):
        colour = _class_colour(index)
        traces.append(go.Scatter3d(
            x=[0.0, centre[0]], y=[0.0, centre[1]], z=[0.0, centre[2]], mode="lines+markers+text",
            text=["", name], textposition="top center", textfont=dict(color=colour, size=13),
            line=dict(color=colour, width=5), marker=dict(size=[0, 6], color=colour, line=dict(color="black", width=1)),
            name=f"{name} centre", legendgroup=name, showlegend=False, hoverinfo="name",
        ))
    return traces


def _polyline_trace_3d(polylines: list[np.ndarray], name: str, line: dict) -> go.Scatter3d:
    x, y, z = _with_gaps(polylines)
    return go.Scatter3d(x=x, y=y, z=z, mode="lines", name=name, legendgroup=name, hoverinfo="name", line=line)


def _highlight_trace_3d(point3: np.ndarray, label: str) -> go.Scatter3d:
    x, y, z = _rounded(point3[None]).T
    return go.Scatter3d(
        x=x, y=y, z=z, mode="markers+text", text=[label], textposition="bottom center", name=label or "highlight",
        marker=dict(size=10, symbol="diamond", color="gold", line=dict(color="black", width=2)),
        textfont=dict(size=14, color="black"), hoverinfo="name",
    )


def _figure_title(title: str, explained: np.ndarray | None) -> str:
    """The caller's title, plus how much the PCA view keeps when the embedding has more than 3 dimensions."""
    if explained is None:
        return title
    note = f"PCA projection, {100 * explained.sum():.0f}% variance"
    return f"{title} — {note}" if title else note


def sphere_figure(
    points: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    class_names: list[str],
    *,
    margin: float = 0.0,
    highlight: np.ndarray | None = None,
    highlight_label: str = "",
    title: str = "",
    max_points: int = 3000,
    paint_surface: bool = False,
    seed: int = 0,
) -> go.Figure:
    """The main view: embeddings, class centres, decision boundaries and margin bands on the unit sphere.

    ``points`` (N, D) with ``labels`` in range(C), ``centres`` (C, D), any D >= 2 (rows are normalised here).
    D == 2 draws the unit circle (``circle_figure``); D > 3 is drawn through ``project_to_3d`` and the title says
    how much variance the view keeps; its boundaries are those of the projected centres, an approximation.
    ``margin`` is in radians; ``highlight`` is one (D,) embedding to mark, e.g. the user's drawn digit.
    """
    points, labels, centres = np.asarray(points, dtype=float), np.asarray(labels), np.asarray(centres, dtype=float)
    _check_inputs(points, labels, centres, class_names)
    if points.shape[1] == 2:
        return circle_figure(
            points, labels, centres, class_names, margin=margin, highlight=highlight, highlight_label=highlight_label,
            title=title, max_points=max_points, paint_surface=paint_surface, seed=seed,
        )
    keep = _subsample(labels, max_points, seed)
    unit_points, unit_centres = unit_rows(points[keep]), unit_rows(centres)
    axes, explained = projection_axes(unit_points, unit_centres)  # the drawn sample is representative and cheaper
    points3 = unit_rows(unit_points @ axes.T)
    centres3 = unit_rows(unit_centres @ axes.T)

    traces: list[go.BaseTraceType] = [_wireframe_trace()]
    if paint_surface:
        traces.append(_painted_sphere_trace(centres3))
    traces += _class_point_traces_3d(points3, labels[keep], class_names)
    traces += _centre_traces_3d(centres3, class_names)
    boundaries = decision_boundary_arcs(centres3)
    if boundaries:
        traces.append(_polyline_trace_3d(boundaries, "decision boundary", dict(color=BOUNDARY_COLOUR, width=4)))
    bands = margin_band_curves(centres3, margin)
    if bands:
        band_line = dict(color=MARGIN_COLOUR, width=3, dash="dash")
        traces.append(_polyline_trace_3d(bands, _margin_legend(margin), band_line))
    if highlight is not None:
        traces.append(_highlight_trace_3d(unit_rows(unit_rows(highlight) @ axes.T), highlight_label))

    figure = go.Figure(traces)
    figure.update_layout(
        title=_figure_title(title, explained if points.shape[1] > 3 else None),
        scene=_scene_settings(),
        uirevision=SPHERE_UIREVISION,
        margin=dict(l=0, r=0, t=40, b=0),
        legend=dict(itemsizing="constant"),
    )
    return figure


# ------------------------------------------------------------------------------------------------------ 2-D view


def _circle_boundaries(centre_angles: np.ndarray) -> list[tuple[float, float]]:
    """(boundary angle, gap) between angularly adjacent distinct centres: the bisector of each neighbouring pair."""
    distinct = np.unique(np.round(np.mod(centre_angles, 2 * np.pi), 9))
    if len(distinct) < 2:
        return []
    gaps = np.mod(np.roll(distinct, -1) - distinct, 2 * np.pi)
    return [(float(angle + gap / 2), float(gap)) for angle, gap in zip(distinct, gaps)]


def _margin_wedges(boundaries: list[tuple[float, float]], margin: float) -> list[np.ndarray]:
    """Closed wedges between θ_i + m = θ_j and θ_j + m = θ_i, i.e. boundary ± m/2 (only where m < the gap)."""
    wedges = []
    for angle, gap in boundaries:
        if 0 < margin < gap:
            sweep = np.linspace(angle - margin / 2, angle + margin / 2, 12)
            rim = np.stack([np.cos(sweep), np.sin(sweep)], axis=1)
            wedges.append(np.vstack([[0.0, 0.0], rim, [0.0, 0.0]]))
    return wedges


def _painted_ring_traces(unit_centres: np.ndarray) -> list[go.Scatter]:
    """A thick translucent ring on the circle coloured by predicted class (argmax cosine)."""
    around = np.linspace(0, 2 * np.pi, 721)
    ring = np.stack([np.cos(around), np.sin(around)], axis=1)
    predicted = np.argmax(ring @ unit_centres.T, axis=1)
    traces = []
    for index in np.unique(predicted):
        x, y = _with_gaps([ring[a:b] for a, b in _true_runs(predicted == index)])
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", line=dict(color=_class_colour(int(index)), width=14), opacity=0.3,
            hoverinfo="skip", showlegend=False, name="predicted class",
        ))
    return traces


def circle_figure(
    points: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    class_names: list[str],
    *,
    margin: float = 0.0,
    highlight: np.ndarray | None = None,
    highlight_label: str = "",
    title: str = "",
    max_points: int = 3000,
    paint_surface: bool = False,
    seed: int = 0,
) -> go.Figure:
    """The 2-D view: for a 2-D embedding the 'sphere' is the unit circle and everything is exact.

    Boundaries are the angle bisectors between angularly adjacent centres; a margin m (radians) shades the wedge
    boundary ± m/2 where neither neighbour's margin is satisfied.
    """
    points, labels, centres = np.asarray(points, dtype=float), np.asarray(labels), np.asarray(centres, dtype=float)
    _check_inputs(points, labels, centres, class_names)
    if points.shape[1] != 2:
        raise ValueError(f"circle_figure needs 2-D embeddings, got D={points.shape[1]}")
    unit_centres = unit_rows(centres)
    keep = _subsample(labels, max_points, seed)
    unit_points, kept_labels = unit_rows(points[keep]), labels[keep]

    around = np.linspace(0, 2 * np.pi, 181)
    traces: list[go.BaseTraceType] = [go.Scatter(
        x=_rounded(np.cos(around)), y=_rounded(np.sin(around)), mode="lines", hoverinfo="skip", showlegend=False,
        line=dict(color="rgba(120,120,120,0.5)", width=1), name="unit circle",
    )]
    if paint_surface:
        traces += _painted_ring_traces(unit_centres)
    boundaries = _circle_boundaries(np.arctan2(unit_centres[:, 1], unit_centres[:, 0]))
    wedges = _margin_wedges(boundaries, margin)
    if wedges:
        x, y = _with_gaps(wedges)
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", fill="toself", fillcolor="rgba(80,80,80,0.15)", name=_margin_legend(margin),
            line=dict(color=MARGIN_COLOUR, width=1.5, dash="dash"), hoverinfo="name",
        ))
    if boundaries:
        rays = [np.array([[0.0, 0.0], [1.1 * np.cos(angle), 1.1 * np.sin(angle)]]) for angle, _ in boundaries]
        x, y = _with_gaps(rays)
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", name="decision boundary", line=dict(color=BOUNDARY_COLOUR, width=2),
            hoverinfo="name",
        ))
    for index, name in enumerate(class_names):
        x, y = _rounded(unit_points[kept_labels == index]).T
        traces.append(go.Scatter(
            x=x, y=y, mode="markers", name=name, legendgroup=name, hoverinfo="name",
            marker=dict(size=5, color=_class_colour(index), opacity=0.6),
        ))
    for index, (centre, name) in enumerate(zip(_rounded(unit_centres), class_names)):
        colour = _class_colour(index)
        traces.append(go.Scatter(
            x=[0.0, centre[0]], y=[0.0, centre[1]], mode="lines+markers+text", text=["", name],
            textposition="top center", textfont=dict(color=colour, size=13), line=dict(color=colour, width=3),
            marker=dict(size=[0, 10], color=colour, line=dict(color="black", width=1)),
            name=f"{name} centre", legendgroup=name, showlegend=False, hoverinfo="name",
        ))
    if highlight is not None:
        x, y = _rounded(unit_rows(highlight)[None]).T
        traces.append(go.Scatter(
            x=x, y=y, mode="markers+text", text=[highlight_label], textposition="bottom center",
            name=highlight_label or "highlight", hoverinfo="name",
            marker=dict(size=20, symbol="star", color="gold", line=dict(color="black", width=1.5)),
        ))

    figure = go.Figure(traces)
    hidden_axis = dict(range=[-1.25, 1.25], visible=False)
    figure.update_layout(
        title=title, uirevision=CIRCLE_UIREVISION, plot_bgcolor="white", margin=dict(l=0, r=0, t=40, b=0),
        xaxis=hidden_axis, yaxis=dict(hidden_axis, scaleanchor="x", scaleratio=1),
    )
    return figure


# -------------------------------------------------------------------------------------------- training panels


def _curve_trace(x: list[float], y: list[float], name: str, colour: str) -> go.Scatter | None:
    """A curve over the common length of x and y (live histories can be one entry apart); None when empty."""
    length = min(len(x), len(y))
    if length == 0:
        return None
    return go.Scatter(
        x=list(x[:length]), y=list(y[:length]), name=name, line=dict(color=colour, width=2),
        mode="lines" if length > 1 else "lines+markers",  # a lone point has no line to show
    )


def curves_figure(history: dict[str, list[float]]) -> go.Figure:
    """Live training curves: loss on the left axis, train/test accuracy (shown as %) on the right.

    history: 'step', 'loss', 'train_accuracy', optionally 'test_accuracy' paired with 'test_step' (evaluated less
    often, so it may be shorter). Missing or empty series are skipped.
    """
    steps = history.get("step", [])
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    series = [
        (_curve_trace(steps, history.get("loss", []), "loss", "#D62728"), False),
        (_curve_trace(steps, history.get("train_accuracy", []), "train accuracy", "#1F77B4"), True),
        (_curve_trace(history.get("test_step", steps), history.get("test_accuracy", []), "test accuracy", "#2CA02C"),
         True),
    ]
    for trace, on_accuracy_axis in series:
        if trace is not None:
            figure.add_trace(trace, secondary_y=on_accuracy_axis)
    if not figure.data:
        figure.add_annotation(text="no training steps yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(
        uirevision="curves", hovermode="x unified", margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.1),
    )
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text="loss", secondary_y=False)
    figure.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.02], secondary_y=True)
    return figure


def confusion_figure(matrix: np.ndarray, class_names: list[str]) -> go.Figure:
    """Counts of (true, predicted) pairs with each count written in its cell; accuracy (the diagonal) in the title."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(f"matrix {matrix.shape} does not match {len(class_names)} class names")
    total = matrix.sum()
    figure = go.Figure(go.Heatmap(
        z=matrix, x=class_names, y=class_names, colorscale="Blues", texttemplate="%{z}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z} samples<extra></extra>",
    ))
    figure.update_layout(
        title=f"accuracy {100 * np.trace(matrix) / total:.1f}% of {total} samples" if total else "no samples",
        xaxis=dict(title="predicted", type="category"),
        yaxis=dict(title="true", type="category", autorange="reversed"),
        uirevision="confusion", margin=dict(l=10, r=10, t=40, b=10),
    )
    return figure


def _angle_bars(degrees: np.ndarray, name: str, colour: str) -> go.Bar:
    """Histogram of angles, binned here so the JSON size does not grow with the number of samples."""
    degrees = np.asarray(degrees, dtype=float)
    degrees = degrees[np.isfinite(degrees)]
    edges = np.arange(0.0, 180.0 + _HISTOGRAM_BIN_DEG, _HISTOGRAM_BIN_DEG)
    counts, _ = np.histogram(np.clip(degrees, 0.0, 180.0), bins=edges)
    label = f"{name} (mean {degrees.mean():.1f}°)" if len(degrees) else name
    return go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=counts, width=_HISTOGRAM_BIN_DEG, name=label, opacity=0.6,
        marker=dict(color=colour, line=dict(width=0)),
    )


def angle_histogram_figure(intra_deg: np.ndarray, inter_deg: np.ndarray) -> go.Figure:
    """How well classes separate in angle: sample→own centre (intra) vs sample→nearest other centre (inter).

    A margin loss should push the two humps apart; their overlap is where classification is ambiguous.
    """
    figure = go.Figure([
        _angle_bars(intra_deg, "intra-class: to own centre", "#1F77B4"),
        _angle_bars(inter_deg, "inter-class: to nearest other centre", "#FF7F0E"),
    ])
    figure.update_layout(
        barmode="overlay", bargap=0, uirevision="angles", margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title="angle (degrees)", range=[0, 180], dtick=30), yaxis=dict(title="samples"),
        legend=dict(orientation="h", y=1.1),
    )
    return figure


def _subplot_type(figure: go.Figure) -> str:
    return "scene" if any(trace.type in ("scatter3d", "mesh3d") for trace in figure.data) else "xy"


def comparison_figure(left: go.Figure, right: go.Figure, left_title: str, right_title: str) -> go.Figure:
    """Two sphere (or circle) views side by side, e.g. softmax vs ArcFace on the same data.

    The right view's legend entries are hidden where the left already has them; since traces keep their legend
    groups, clicking a class in the legend toggles it in both views. Each subplot title gets the source figure's
    own title (e.g. the PCA note) underneath.
    """
    kinds = [_subplot_type(left), _subplot_type(right)]
    titles = [
        f"{title}<br><sup>{source.layout.title.text}</sup>" if source.layout.title.text else title
        for title, source in ((left_title, left), (right_title, right))
    ]
    figure = make_subplots(
        rows=1, cols=2, specs=[[{"type": kind} for kind in kinds]], subplot_titles=titles, horizontal_spacing=0.02,
    )
    left_legend = {trace.name for trace in left.data if trace.showlegend is not False}
    for column, source in ((1, left), (2, right)):
        for trace in source.data:
            figure.add_trace(trace, row=1, col=column)
            if column == 2 and trace.name in left_legend:
                figure.data[-1].showlegend = False
    figure.update_scenes(**_scene_settings())
    hidden_axis = dict(range=[-1.25, 1.25], visible=False)
    for column, kind in enumerate(kinds, start=1):
        if kind == "xy":
            figure.update_xaxes(hidden_axis, row=1, col=column)
            own_x = figure.get_subplot(1, column).xaxis.plotly_name.replace("axis", "")
            figure.update_yaxes(hidden_axis, scaleanchor=own_x, scaleratio=1, row=1, col=column)
    figure.update_layout(
        uirevision="comparison", plot_bgcolor="white", margin=dict(l=0, r=0, t=60, b=0),
        legend=dict(itemsizing="constant"),
    )
    return figure
