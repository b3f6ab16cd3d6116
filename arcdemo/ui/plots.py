"""Figures the UI sends, and the fast path for "this new point on the sphere".

A drawn digit must come back with its figure in a few milliseconds, but building a sphere with 2,000 test points,
boundaries and margin bands takes ~100+ ms. So the base figure is built once per model with
``arcdemo.viz.sphere_figure`` and kept as JSON text split before the end of its ``data`` list; each new point is
one small trace spliced in as text (no Plotly validation, no re-serialising the test points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from arcdemo.margins import DecisionRule

HIGHLIGHT_COLOUR = "gold"


class FigureJSON:
    """A Plotly figure already serialised to JSON (the UI layer hands it to ``gr.Plot`` without re-encoding)."""

    __slots__ = ("json",)

    def __init__(self, text: str) -> None:
        self.json = text

    def to_json(self) -> str:
        return self.json

    def to_dict(self) -> dict:
        return json.loads(self.json)

    def __len__(self) -> int:
        return len(self.json)


CAMERA_EYE = dict(x=1.05, y=1.05, z=0.66)  # closer than viz's default: the sphere fills more of the panel


def frame(figure: go.Figure, height: int) -> go.Figure:
    """Size a figure for its panel and bring the 3-D camera(s) closer; the figure is changed and returned."""
    figure.update_layout(height=height)
    figure.update_scenes(camera=dict(eye=CAMERA_EYE))
    return figure


@dataclass(frozen=True)
class SphereBase:
    """A sphere/circle figure as JSON text with room for one more trace, plus the projection new points need."""

    prefix: str  # '{"data":[trace, …' without the closing ']'
    layout: str  # the layout object as JSON
    axes: np.ndarray | None  # (3, D) projection when D > 3, else None
    dims: int  # 2 (circle) or 3 (sphere)

    def view(self, embedding: np.ndarray) -> np.ndarray:
        """A (D,) embedding as the unit 2-D/3-D point drawn in this figure."""
        from arcdemo import viz  # already imported: it built this figure

        point = viz.unit_rows(np.asarray(embedding, dtype=np.float64).reshape(-1))
        return viz.unit_rows(self.axes @ point) if self.axes is not None else point

    def with_point(self, embedding: np.ndarray, label: str) -> FigureJSON:
        """The base figure plus ``embedding`` as a gold marker on a ray from the origin, tagged ``label``."""
        point = np.round(self.view(embedding), 4).tolist()
        trace = {
            "type": "scatter3d" if self.dims == 3 else "scatter",
            "x": [0.0, point[0]],
            "y": [0.0, point[1]],
            "mode": "lines+markers+text",
            "text": ["", label],
            "textposition": "bottom center",
            "textfont": {"size": 15, "color": "black"},
            "name": label or "your input",
            "hoverinfo": "name",
            "line": {"color": HIGHLIGHT_COLOUR, "width": 6 if self.dims == 3 else 3},
            "marker": {
                "size": [0, 11 if self.dims == 3 else 18],
                "symbol": "diamond" if self.dims == 3 else "star",
                "color": HIGHLIGHT_COLOUR,
                "line": {"color": "black", "width": 2},
            },
        }
        if self.dims == 3:
            trace["z"] = [0.0, point[2]]
        return FigureJSON(f'{self.prefix},{json.dumps(trace)}],"layout":{self.layout}}}')


def sphere_base(
    embeddings: np.ndarray, labels: np.ndarray, rule: DecisionRule, class_names: list[str], *, title: str,
    max_points: int = 2000, height: int = 520,
) -> SphereBase:
    """Build the base figure once (viz.sphere_figure); D > 3 gets its projection fixed here so new points share it."""
    from arcdemo import viz

    dims = rule.dims
    axes = None
    if dims > 3:
        axes, _ = viz.projection_axes(viz.unit_rows(embeddings), viz.unit_rows(rule.generators))
    figure = frame(viz.sphere_figure(embeddings, labels, rule, class_names, title=title, max_points=max_points,
                                     axes=axes), height)
    text = figure.to_json()
    parsed = json.loads(text)
    data = json.dumps(parsed["data"], separators=(",", ":"))
    return SphereBase('{"data":' + data[:-1], json.dumps(parsed["layout"], separators=(",", ":")), axes, min(dims, 3))
