"""The still picture of the first Explore sphere: drawn from the Plotly figure itself, where the figure puts things."""

import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from arcdemo import viz
from arcdemo.margins import DecisionRule
from arcdemo.viz.poster import _LEGEND_WIDTH, _Camera, poster_data_uri, render_poster

NAMES = [f"class {index}" for index in range(6)]


def _sphere() -> go.Figure:
    centres = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 40)
    points = centres[labels] + 0.15 * rng.normal(size=(len(labels), 3))
    figure = viz.sphere_figure(points, labels, DecisionRule.from_centres(centres, margins=(1.0, 0.3, 0.0)), NAMES,
                               title="six classes")
    figure.update_layout(height=640)
    return figure


def _pixel_of(figure: go.Figure, point: np.ndarray, width: int = 720) -> tuple[int, int]:
    """Where the poster puts a 3-D point: the scene lies below the top margin, left of the legend."""
    height = figure.layout.height
    top = figure.layout.margin.t
    camera = _Camera(figure.layout.scene, width - _LEGEND_WIDTH, height - top)
    pixels, _ = camera.project(point[None])
    x, y = pixels[0]
    return int(round(x)), int(round(y + top))


def test_the_poster_is_the_figure_laid_out_as_plotly_lays_it_out() -> None:
    figure = _sphere()
    picture = render_poster(figure)
    assert picture.size == (720, 640)
    pixels = np.asarray(picture).astype(int)
    # each class's colour is where its centre's tip (a marker) is drawn
    for trace in figure.data:
        if trace.name.endswith("centre"):
            x, y = _pixel_of(figure, np.array([trace.x[1], trace.y[1], trace.z[1]]))
            colour = np.array(Image.new("RGB", (1, 1), trace.line.color).getpixel((0, 0)))
            patch = pixels[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
            assert np.abs(patch - colour).sum(axis=1).min() < 60, trace.name
    # the legend lists the classes and the lines at the right, the scene never reaches there
    legend = pixels[:, 720 - _LEGEND_WIDTH + 10:]
    assert (legend < 200).any() and (pixels[:60, :] < 200).any()  # legend and title are drawn


def test_a_hidden_trace_is_not_drawn() -> None:
    figure = _sphere()
    shown = np.asarray(render_poster(figure)).astype(int)
    for trace in figure.data:
        if trace.name in NAMES:
            trace.visible = "legendonly"
    hidden = np.asarray(render_poster(figure)).astype(int)
    assert np.abs(shown - hidden).sum() > 0
    ink = lambda image: (image.sum(axis=2) < 600).sum()  # noqa: E731
    assert ink(hidden) < ink(shown)


def test_the_poster_travels_as_a_small_webp_data_uri() -> None:
    uri = poster_data_uri(_sphere())
    assert uri.startswith("data:image/webp;base64,")
    import base64

    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert picture.format == "WEBP" and picture.size == (720, 640)
    assert len(uri) < 150_000  # it rides in the page's config
