"""Plotly figures for the lab, built from plain numpy arrays and a head's decision rule.

Embeddings and class centres live on the unit sphere, so every view here keeps angles readable: the quantity a
margin loss acts on is the angle θ between a sample and a centre. What is painted, outlined and banded comes from
``arcdemo.viz.geometry`` applied to the head's own rule, so the picture is what the model predicts. Nothing here
imports torch or gradio, so every view is testable offline.

Figures that are replaced during live training set ``layout.uirevision`` to a constant, so the user's camera,
zoom and legend toggles survive each refresh.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from arcdemo.margins import DecisionRule
from arcdemo.viz.geometry import (
    boundary_arcs,
    circle_boundaries,
    circle_margin_zones,
    circle_regions,
    margin_bands,
    painted_mesh,
    projection_axes,
    unit_rows,
)

# D3 first (its 10 colours suit MNIST/CIFAR-10), then 48 more, so ORL's 40 people each get their own; Alphabet's
# two palest (near-invisible on white) left out; a class beyond the 58th shares a colour
CLASS_COLOURS: list[str] = qualitative.D3 + qualitative.Dark24 + [
    colour for colour in qualitative.Alphabet if colour not in ("#E2E2E2", "#F7E1A0")
]
BOUNDARY_COLOUR = "#222222"
MARGIN_COLOUR = "#555555"
SPHERE_UIREVISION = "sphere"
CIRCLE_UIREVISION = "circle"

_DECIMALS = 4  # 1e-4 on the unit sphere is far below a pixel; rounding keeps the JSON small
_AXIS_RANGE = [-1.1, 1.1]
_PAINT_LATITUDES = 36  # 5° faces: coarse, but a few thousand faces keep the JSON small
_PAINT_LONGITUDES = 72
_PAINT_RADIUS = 0.985  # just under the points and lines so they are never hidden by the paint
_HISTOGRAM_BIN_DEG = 2.0


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


def _check_inputs(points: np.ndarray, labels: np.ndarray, rule: DecisionRule, class_names: list[str]) -> None:
    """Fail with the shapes in the message rather than deep inside numpy or plotly."""
    if points.ndim != 2 or points.shape[1] != rule.dims or points.shape[1] < 2:
        raise ValueError(f"need (N, D) points for a D-dimensional rule with D >= 2, got {points.shape}, D={rule.dims}")
    if len(labels) != len(points) or len(class_names) != rule.num_classes:
        raise ValueError(
            f"{len(points)} points with {len(labels)} labels, {rule.num_classes} classes with {len(class_names)} names"
        )


def _boundary_legend(rule: DecisionRule) -> str:
    if rule.kind == "linear":
        return f"decision boundary at ‖x‖ = {rule.norm:.3g}"
    return "decision boundary"


def _band_legend(rule: DecisionRule) -> str:
    nearest = " (θ to the nearest sub-centre)" if rule.kind == "sub-centre" else ""
    return f"margin band: {rule.formula()}{nearest}"


def _notes(rule: DecisionRule, explained: np.ndarray | None) -> list[str]:
    """What the reader must know to read the picture right."""
    notes = []
    if explained is not None:
        notes.append(f"{rule.dims}-D seen through PCA ({100 * explained.sum():.0f}% variance): the classes' "
                     "boundaries live in all dimensions, so none are drawn")
    elif rule.kind == "linear":
        notes.append(f"softmax regions at ‖x‖ = {rule.norm:.3g}: argmax(W·x + b) is no cone, the cells move with ‖x‖")
    elif rule.kind == "sub-centre":
        notes.append("a class's region is the union of its sub-centres' cells")
    return notes


def _figure_title(title: str, notes: list[str]) -> str:
    if not notes:
        return title
    small = "<br>".join(f"<sup>{note}</sup>" for note in notes)
    return f"{title}<br>{small}" if title else small


def _centre_names(rule: DecisionRule, class_names: list[str]) -> list[str]:
    if rule.kind != "sub-centre":
        return [f"{class_names[c]} centre" for c in rule.classes]
    counts: dict[int, int] = {}
    names = []
    for c in rule.classes:
        counts[int(c)] = counts.get(int(c), 0) + 1
        names.append(f"{class_names[c]} sub-centre {counts[int(c)]}")
    return names


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


def _painted_sphere_trace(rule: DecisionRule) -> go.Mesh3d:
    """The sphere coloured by the class the rule predicts, cut exactly along the boundaries (``painted_mesh``)."""
    vertices, triangles, classes = painted_mesh(rule, _PAINT_LATITUDES, _PAINT_LONGITUDES)
    x, y, z = _rounded(vertices * _PAINT_RADIUS).T
    return go.Mesh3d(
        x=x, y=y, z=z, i=triangles[:, 0], j=triangles[:, 1], k=triangles[:, 2],
        facecolor=[_class_colour(int(label)) for label in classes], opacity=0.35, flatshading=True,
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


def _centre_traces_3d(directions3: np.ndarray, rule: DecisionRule, class_names: list[str]) -> list[go.Scatter3d]:
    """A line from the origin to each generator (class centre, sub-centre, or softmax's weight direction); their
    names are ``_centre_labels_3d``."""
    traces = []
    sub = rule.kind == "sub-centre"
    for centre, label, name in zip(_rounded(directions3), rule.classes, _centre_names(rule, class_names)):
        colour = _class_colour(int(label))
        traces.append(go.Scatter3d(
            x=[0.0, centre[0]], y=[0.0, centre[1]], z=[0.0, centre[2]], mode="lines+markers",
            line=dict(color=colour, width=3 if sub else 5),
            marker=dict(size=[0, 4 if sub else 6], color=colour, line=dict(color="black", width=1)),
            name=name, legendgroup=class_names[label], showlegend=False, hoverinfo="name",
        ))
    return traces


def _centre_labels_3d(directions3: np.ndarray, rule: DecisionRule, class_names: list[str]) -> list[dict]:
    """Each generator's class name at its tip, as scene annotations: the browser draws them as SVG text over the
    scene, where a WebGL text trace first turns every glyph into triangles (~0.3 s of the first figure here)."""
    size = 11 if rule.kind == "sub-centre" else 13
    return [
        dict(x=x, y=y, z=z, text=class_names[label], showarrow=False, yshift=size,
             font=dict(color=_class_colour(int(label)), size=size))
        for (x, y, z), label in zip(_rounded(directions3).tolist(), rule.classes)
    ]


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


def sphere_figure(
    points: np.ndarray,
    labels: np.ndarray,
    rule: DecisionRule,
    class_names: list[str],
    *,
    highlight: np.ndarray | None = None,
    highlight_label: str = "",
    title: str = "",
    max_points: int = 3000,
    paint_surface: bool = False,
    seed: int = 0,
    axes: np.ndarray | None = None,
) -> go.Figure:
    """The main view: embeddings, the head's generators, its decision boundaries and margin bands on the sphere.

    ``points`` (N, D) with ``labels`` in range(C); ``rule`` is the head's decision rule (``head.decision_rule``)
    in the same D >= 2. D == 2 draws the unit circle (``circle_figure``). D == 3 is exact: the painted class is
    the head's prediction, boundaries and bands come from the rule. D > 3 is drawn through an uncentred PCA
    (``axes`` (3, D), fitted here when not given) with points and centres only. ``highlight`` is one (D,)
    embedding to mark, e.g. the user's drawn digit.
    """
    points, labels = np.asarray(points, dtype=float), np.asarray(labels)
    _check_inputs(points, labels, rule, class_names)
    if points.shape[1] == 2:
        return circle_figure(
            points, labels, rule, class_names, highlight=highlight, highlight_label=highlight_label,
            title=title, max_points=max_points, paint_surface=paint_surface, seed=seed,
        )
    keep = _subsample(labels, max_points, seed)
    unit_points, directions = unit_rows(points[keep]), unit_rows(rule.generators)
    explained = None
    if points.shape[1] > 3:
        if axes is None:
            axes, explained = projection_axes(unit_points, directions)  # the drawn sample is representative
        else:
            samples = np.vstack([directions, unit_points])
            explained = ((samples @ axes.T) ** 2).sum(axis=0) / max(len(samples), 1)
    else:
        axes = np.eye(3)
    points3, directions3 = unit_rows(unit_points @ axes.T), unit_rows(directions @ axes.T)

    traces: list[go.BaseTraceType] = [_wireframe_trace()]
    exact = points.shape[1] == 3
    if paint_surface and exact:
        traces.append(_painted_sphere_trace(rule))
    traces += _class_point_traces_3d(points3, labels[keep], class_names)
    traces += _centre_traces_3d(directions3, rule, class_names)
    if exact:
        boundaries = boundary_arcs(rule)
        if boundaries:
            traces.append(_polyline_trace_3d(boundaries, _boundary_legend(rule), dict(color=BOUNDARY_COLOUR, width=4)))
        bands = margin_bands(rule)
        if bands:
            traces.append(
                _polyline_trace_3d(bands, _band_legend(rule), dict(color=MARGIN_COLOUR, width=3, dash="dash"))
            )
    if highlight is not None:
        traces.append(_highlight_trace_3d(unit_rows(unit_rows(highlight) @ axes.T), highlight_label))

    figure = go.Figure(traces)
    figure.update_layout(
        title=_figure_title(title, _notes(rule, explained)),
        scene=dict(_scene_settings(), annotations=_centre_labels_3d(directions3, rule, class_names)),
        uirevision=SPHERE_UIREVISION,
        margin=dict(l=0, r=0, t=60, b=0),
        legend=dict(itemsizing="constant"),
    )
    return figure


# ------------------------------------------------------------------------------------------------------ 2-D view


def _wedge(first: float, last: float) -> np.ndarray:
    sweep = np.linspace(first, last, max(2, int(np.ceil((last - first) / np.radians(2))) + 1))
    return np.vstack([[0.0, 0.0], np.stack([np.cos(sweep), np.sin(sweep)], axis=1), [0.0, 0.0]])


def _painted_ring_traces(rule: DecisionRule) -> list[go.Scatter]:
    """A thick translucent ring on the circle coloured by predicted class, changing colour at the exact boundary."""
    traces = []
    by_class: dict[int, list[np.ndarray]] = {}
    for label, first, last in circle_regions(rule):
        sweep = np.linspace(first, last, max(2, int(np.ceil((last - first) / np.radians(0.5))) + 1))
        by_class.setdefault(label, []).append(np.stack([np.cos(sweep), np.sin(sweep)], axis=1))
    for label, arcs in sorted(by_class.items()):
        x, y = _with_gaps(arcs)
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", line=dict(color=_class_colour(label), width=14), opacity=0.3,
            hoverinfo="skip", showlegend=False, name="predicted class",
        ))
    return traces


def circle_figure(
    points: np.ndarray,
    labels: np.ndarray,
    rule: DecisionRule,
    class_names: list[str],
    *,
    highlight: np.ndarray | None = None,
    highlight_label: str = "",
    title: str = "",
    max_points: int = 3000,
    paint_surface: bool = False,
    seed: int = 0,
) -> go.Figure:
    """The 2-D view: for a 2-D embedding the 'sphere' is the unit circle and everything is exact.

    Boundaries are the rays where the rule's prediction changes; a margin loss shades the wedges where no class's
    margin is satisfied (between ψ(θᵢ) = cos θⱼ on one side and ψ(θⱼ) = cos θᵢ on the other).
    """
    points, labels = np.asarray(points, dtype=float), np.asarray(labels)
    _check_inputs(points, labels, rule, class_names)
    if points.shape[1] != 2:
        raise ValueError(f"circle_figure needs 2-D embeddings, got D={points.shape[1]}")
    keep = _subsample(labels, max_points, seed)
    unit_points, kept_labels = unit_rows(points[keep]), labels[keep]

    around = np.linspace(0, 2 * np.pi, 181)
    traces: list[go.BaseTraceType] = [go.Scatter(
        x=_rounded(np.cos(around)), y=_rounded(np.sin(around)), mode="lines", hoverinfo="skip", showlegend=False,
        line=dict(color="rgba(120,120,120,0.5)", width=1), name="unit circle",
    )]
    if paint_surface:
        traces += _painted_ring_traces(rule)
    zones = circle_margin_zones(rule)
    if zones:
        x, y = _with_gaps([_wedge(first, last) for first, last in zones])
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", fill="toself", fillcolor="rgba(80,80,80,0.15)", name=_band_legend(rule),
            line=dict(color=MARGIN_COLOUR, width=1.5, dash="dash"), hoverinfo="name",
        ))
    boundaries = circle_boundaries(rule)
    if len(boundaries):
        rays = [np.array([[0.0, 0.0], [1.1 * np.cos(angle), 1.1 * np.sin(angle)]]) for angle in boundaries]
        x, y = _with_gaps(rays)
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", name=_boundary_legend(rule), line=dict(color=BOUNDARY_COLOUR, width=2),
            hoverinfo="name",
        ))
    for index, name in enumerate(class_names):
        x, y = _rounded(unit_points[kept_labels == index]).T
        traces.append(go.Scatter(
            x=x, y=y, mode="markers", name=name, legendgroup=name, hoverinfo="name",
            marker=dict(size=5, color=_class_colour(index), opacity=0.6),
        ))
    for centre, label, name in zip(
        _rounded(unit_rows(rule.generators)), rule.classes, _centre_names(rule, class_names)
    ):
        colour = _class_colour(int(label))
        traces.append(go.Scatter(
            x=[0.0, centre[0]], y=[0.0, centre[1]], mode="lines+markers+text", text=["", class_names[label]],
            textposition="top center", textfont=dict(color=colour, size=13), line=dict(color=colour, width=3),
            marker=dict(size=[0, 10], color=colour, line=dict(color="black", width=1)),
            name=name, legendgroup=class_names[label], showlegend=False, hoverinfo="name",
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
        title=_figure_title(title, _notes(rule, None)), uirevision=CIRCLE_UIREVISION, plot_bgcolor="white",
        margin=dict(l=0, r=0, t=60, b=0), xaxis=hidden_axis, yaxis=dict(hidden_axis, scaleanchor="x", scaleratio=1),
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
    often, so it may be shorter) and 'test_views' (how many test-time views each test point averaged: the epochs are
    scored on the image alone, the final model with its flip/shift views, so each protocol gets its own trace).
    Missing or empty series are skipped.
    """
    steps = history.get("step", [])
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    series = [
        (_curve_trace(steps, history.get("loss", []), "loss", "#D62728"), False),
        (_curve_trace(steps, history.get("train_accuracy", []), "train accuracy", "#1F77B4"), True),
    ]
    test_steps, test_accuracy = history.get("test_step", steps), history.get("test_accuracy", [])
    views = history.get("test_views", [])
    if len(views) != len(test_accuracy):
        series.append((_curve_trace(test_steps, test_accuracy, "test accuracy", "#2CA02C"), True))
    else:
        for count, colour in zip(sorted(set(views)), ("#2CA02C", "#9467BD", "#FF7F0E")):
            chosen = [i for i, v in enumerate(views) if v == count and i < len(test_steps)]
            name = f"test accuracy ({_views_label(int(count))})"
            series.append((_curve_trace([test_steps[i] for i in chosen], [test_accuracy[i] for i in chosen], name,
                                        colour), True))
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


def _views_label(count: int) -> str:
    """The test-time protocol of ``model.tta_views`` in words: 1 view, 2 (flip), 3 (shift) or 6 (flip + shift)."""
    kinds = {1: "image only", 2: "image + mirror", 3: "image + 1-px shifts", 6: "image, mirror + 1-px shifts"}
    return f"{count} view{'s' if count > 1 else ''}: {kinds.get(count, 'test-time augmentation')}"


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
    scenes = iter(("scene", "scene2"))  # make_subplots numbers the 3-D subplots in order
    for source, kind in zip((left, right), kinds):
        if kind == "scene":
            figure.layout[next(scenes)].annotations = source.layout.scene.annotations
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
