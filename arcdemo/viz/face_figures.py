"""Face verdicts drawn on the sphere: the pair (``pair_sphere_figure``) and the gallery (``gallery_sphere_figure``).

Both draw a view of ``arcdemo.faces.sphere`` and nothing else: the points, caps and rings are its angles, so the
picture says what the verdict says (b inside the cap ⇔ "same person"; the probe inside a person's cap, deepest ⇔
the gallery names them). Aligned crops go beside the sphere as images, since a 3-D point cannot carry one.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go

from arcdemo.faces.sphere import GalleryView, PairView
from arcdemo.viz.figures import CLASS_COLOURS, _figure_title, _rounded, _scene_settings, _wireframe_trace
from arcdemo.viz.geometry import _orthonormal_pair, great_circle_arc

FACE_UIREVISION = "face-sphere"
SAME_COLOUR = "#2CA02C"
RING_COLOUR = "#FF9F1C"
PROBE_COLOUR = "gold"
_FILL_RADIUS = 0.99  # caps and rings just under the points and lines drawn on the sphere
_AROUND = 96  # points of each drawn circle
_FILL_AROUND = 48  # azimuth steps of filled caps and rings (their edges are drawn finer, as lines)
_FILL_STEP = np.radians(6.0)  # polar resolution of filled caps and rings
_CROP_SIZE = 0.16  # of the figure's height


def _rotation(centre: np.ndarray) -> np.ndarray:
    """(3, 3) columns u, v, centre: the pole frame turned so its pole is ``centre``."""
    centre = np.asarray(centre, dtype=float) / np.linalg.norm(centre)
    u, v = _orthonormal_pair(centre)
    return np.stack([u, v, centre], axis=1)


def small_circle(centre: np.ndarray, radius: float) -> np.ndarray:
    """(_AROUND + 1, 3) closed polyline of the points at angle ``radius`` (radians) from the unit ``centre``."""
    around = np.linspace(0.0, 2 * np.pi, _AROUND + 1)
    pole = np.stack([np.sin(radius) * np.cos(around), np.sin(radius) * np.sin(around),
                     np.full_like(around, np.cos(radius))], axis=1)
    return pole @ _rotation(centre).T


def _band_mesh(centre: np.ndarray, inner: float, outer: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of the directions between angles ``inner`` and ``outer`` from ``centre`` (a cap
    for inner = 0), drawn at ``_FILL_RADIUS``."""
    polar = np.linspace(inner, outer, max(2, int(np.ceil((outer - inner) / _FILL_STEP)) + 1))
    around = np.linspace(0.0, 2 * np.pi, _FILL_AROUND + 1)
    p, a = np.meshgrid(polar, around, indexing="ij")
    pole = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], axis=-1).reshape(-1, 3)
    row = len(around)
    corner = (np.arange(len(polar) - 1)[:, None] * row + np.arange(row - 1)[None]).ravel()
    triangles = np.concatenate([np.stack([corner, corner + 1, corner + row + 1], axis=1),
                                np.stack([corner, corner + row + 1, corner + row], axis=1)])
    vertices = pole @ _rotation(centre).T
    corners = vertices[triangles]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return vertices * _FILL_RADIUS, triangles[area > 1e-12]


def _fill_trace(centre: np.ndarray, inner_deg: float, outer_deg: float, colour: str, name: str, group: str,
                opacity: float) -> go.Mesh3d:
    vertices, triangles = _band_mesh(centre, np.radians(inner_deg), np.radians(outer_deg))
    x, y, z = _rounded(vertices).T
    return go.Mesh3d(x=x, y=y, z=z, i=triangles[:, 0], j=triangles[:, 1], k=triangles[:, 2], color=colour,
                     opacity=opacity, flatshading=True, lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0),
                     hoverinfo="name", name=name, legendgroup=group, showlegend=False, meta=f"fill: {name}")


def _circle_trace(centre: np.ndarray, radius_deg: float, name: str, line: dict, group: str,
                  legend: bool = True) -> go.Scatter3d:
    x, y, z = _rounded(small_circle(centre, np.radians(radius_deg))).T
    return go.Scatter3d(x=x, y=y, z=z, mode="lines", name=name, legendgroup=group, hoverinfo="name", line=line,
                        meta=name, showlegend=legend)


def _point_trace(point: np.ndarray, name: str, colour: str, hover: str, symbol: str = "circle",
                 size: int = 7) -> go.Scatter3d:
    x, y, z = _rounded(np.stack([np.zeros(3), point])).T
    return go.Scatter3d(x=x, y=y, z=z, mode="lines+markers", name=name, legendgroup=name, hovertext=["", hover],
                        hoverinfo="text", line=dict(color=colour, width=4), meta=name,
                        marker=dict(size=[0, size], color=colour, symbol=symbol, line=dict(color="black", width=1)))


def _arc_trace(start: np.ndarray, end: np.ndarray, name: str, colour: str) -> go.Scatter3d:
    x, y, z = _rounded(great_circle_arc(start, end, 48)).T
    return go.Scatter3d(x=x, y=y, z=z, mode="lines", name=name, hoverinfo="name", showlegend=False,
                        line=dict(color=colour, width=5), meta=name)


def _label(point: np.ndarray, text: str, colour: str, size: int = 14) -> dict:
    x, y, z = _rounded(point).tolist()
    return dict(x=x, y=y, z=z, text=text, showarrow=False, yshift=14, font=dict(color=colour, size=size))


def _arc_label(start: np.ndarray, end: np.ndarray, text: str) -> dict:
    middle = great_circle_arc(start, end, 3)[1] * 1.04
    return dict(_label(middle, text, "black", 13), yshift=0)


def _data_uri(crop: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(crop, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _crop_images(crops: list[tuple[np.ndarray | None, str, str]]) -> tuple[list[dict], list[dict]]:
    """Crops in a column at the figure's left, below the title, each captioned in its point's colour."""
    images, labels = [], []
    for row, (crop, text, colour) in enumerate(crops):
        if crop is None:
            continue
        top = 0.88 - row * (_CROP_SIZE + 0.07)
        images.append(dict(source=_data_uri(crop), xref="paper", yref="paper", x=0.0, y=top, sizex=_CROP_SIZE,
                           sizey=_CROP_SIZE, xanchor="left", yanchor="top", layer="above"))
        labels.append(dict(x=0.0, y=top - _CROP_SIZE, xref="paper", yref="paper", text=f"<b>{text}</b>",
                           showarrow=False, xanchor="left", yanchor="top", font=dict(color=colour, size=13)))
    return images, labels


def _headed(title: str, heading: str) -> str:
    return f"{title}<br>{heading}" if title else heading


def _layout(figure: go.Figure, title: str, notes: list[str], scene_labels: list[dict], crops: list) -> go.Figure:
    images, crop_labels = _crop_images(crops)
    figure.update_layout(
        title=_figure_title(title, notes), scene=dict(_scene_settings(), annotations=scene_labels),
        images=images, annotations=crop_labels, uirevision=FACE_UIREVISION, margin=dict(l=0, r=0, t=70, b=0),
        legend=dict(itemsizing="constant", x=1.0, xanchor="right", y=0.0, yanchor="bottom"),  # clear of the notes
    )
    return figure


# ---------------------------------------------------------------------------------------------------- the pair


_VERDICT_WORDS = {"same": "same person", "different": "different people", "uncertain": "uncertain"}


def pair_sphere_figure(
    view: PairView,
    *,
    crops: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    labels: tuple[str, str] = ("A", "B"),
    title: str = "",
) -> go.Figure:
    """Two faces on the sphere with the verdict around the first: B inside the green cap (θ < the threshold
    angle) is "same person", on the amber ring "uncertain". Exact: the view's three directions span it.

    ``view`` from ``Verifier.pair_view`` (or ``faces.sphere.pair_view`` on plain arrays); ``crops`` the two aligned
    faces shown beside it; ``title`` (e.g. the model) goes above the verdict.
    """
    a, b, c = view.points
    inner, outer = view.band_deg
    traces: list[go.BaseTraceType] = [_wireframe_trace()]
    cap_name = f"same person: θ < {view.threshold_angle_deg:.1f}° from {labels[0]}"
    ring_name = f"uncertain: {inner:.1f}° < θ < {outer:.1f}°"
    if view.threshold_angle_deg > 0:
        traces.append(_fill_trace(a, 0.0, view.threshold_angle_deg, SAME_COLOUR, cap_name, "cap", 0.25))
    if outer > inner:
        traces.append(_fill_trace(a, inner, outer, RING_COLOUR, ring_name, "ring", 0.35))
    if 0 < view.threshold_angle_deg < 180:
        traces.append(_circle_trace(a, view.threshold_angle_deg, cap_name, dict(color=SAME_COLOUR, width=5), "cap"))
    edges = [edge for edge in (inner, outer) if 0 < edge < 180] if outer > inner else []
    for first, edge in zip((True, False), edges):
        traces.append(_circle_trace(a, edge, ring_name, dict(color=RING_COLOUR, width=3, dash="dash"), "ring", first))
    traces.append(_point_trace(c, "C: cohort mean" if view.third.startswith("C:") else "third axis",
                               "#888888", view.third, "diamond", 4))
    traces.append(_arc_trace(a, b, f"θ = {view.angle_deg:.1f}°", "black"))
    traces.append(_point_trace(a, labels[0], "#1F77B4", f"{labels[0]} (the cap's centre)"))
    traces.append(_point_trace(b, labels[1], "#D62728", f"{labels[1]}: θ = {view.angle_deg:.1f}° from {labels[0]}"))
    scene_labels = [_label(a, labels[0], "#1F77B4"), _label(b, labels[1], "#D62728"),
                    _arc_label(a, b, f"θ = {view.angle_deg:.1f}°")]
    if view.third.startswith("C:"):
        scene_labels.append(_label(c, "C", "#888888", 12))
    heading = f"{_VERDICT_WORDS[view.decision].capitalize()}: θ = {view.angle_deg:.1f}° between them"
    notes = [f"within {view.threshold_angle_deg:.1f}° of {labels[0]} is the same person",
             "exact: every angle among the drawn directions is the embeddings' own", view.third, *view.notes]
    crop_list = [(crops[0], labels[0], "#1F77B4"), (crops[1], labels[1], "#D62728")]
    return _layout(go.Figure(traces), _headed(title, heading), notes, scene_labels, crop_list)


# ------------------------------------------------------------------------------------------------- the gallery


def gallery_sphere_figure(
    view: GalleryView,
    names: list[str],
    *,
    probe_crop: np.ndarray | None = None,
    crops: list[np.ndarray | None] | None = None,
    title: str = "",
) -> go.Figure:
    """A probe at the pole among the enrolled people, each with the cap of the gallery rule's threshold: the
    probe inside a cap (deepest, if several) is who the gallery names; outside every cap, "unknown".

    ``view`` from ``Verifier.gallery_view``; ``names`` and ``crops`` per enrolled face, in the gallery's order.
    The probe and its two best faces are exact; the rest keep their angle to the probe, their bearing projected.
    """
    probe = np.array([0.0, 0.0, 1.0])
    named = view.named
    traces: list[go.BaseTraceType] = [_wireframe_trace()]
    scene_labels = [_label(probe, "probe", "black")]
    for rank, person in enumerate(view.order):
        colour = CLASS_COLOURS[int(person) % len(CLASS_COLOURS)]
        name = names[person]
        centre, cap = view.points[person], float(view.cap_deg[person])
        where = "" if view.exact[person] else " (bearing projected)"
        cap_name = f"{name}: cap {cap:.1f}°"
        if 0 < cap:
            traces.append(_fill_trace(centre, 0.0, cap, colour, cap_name, name,
                                      0.35 if person == named else 0.12))
        if 0 < cap < 180:
            traces.append(_circle_trace(centre, cap, cap_name, dict(color=colour, width=5 if person == named else 2),
                                        name, legend=False))
        traces.append(_point_trace(centre, name, colour, f"{name}: θ = {view.angles_deg[person]:.1f}° from the "
                                   f"probe, cap {cap:.1f}°{where}", "circle" if view.exact[person] else "circle-open"))
        scene_labels.append(_label(centre, name, colour, 13 if rank < 2 else 11))
        if rank < 2:
            traces.append(_arc_trace(probe, centre, f"θ = {view.angles_deg[person]:.1f}°", "#555555"))
            scene_labels.append(_arc_label(probe, centre, f"{view.angles_deg[person]:.1f}°"))
    traces.append(_point_trace(probe, "probe", PROBE_COLOUR, "the probe", "diamond", 9))
    if named is None:
        heading = "Unknown: the probe is outside every cap"
    else:
        heading = (f"{names[named]}: the probe is {view.angles_deg[named]:.1f}° away, inside the "
                   f"{view.cap_deg[named]:.1f}° cap")
    people = "1 person" if len(names) == 1 else f"{len(names)} people"
    notes = [f"caps at the threshold for {people} enrolled; the probe and its two best faces are exact", *view.notes]
    best = [(crops[i] if crops else None, names[i], CLASS_COLOURS[int(i) % len(CLASS_COLOURS)]) for i in view.order[:2]]
    return _layout(go.Figure(traces), _headed(title, heading), notes, scene_labels,
                   [(probe_crop, "probe", "black"), *best])
