"""A still picture of a 3-D Plotly figure, drawn on the server: what the page shows while the browser's WebGL
scene is still being built (on a CPU-only browser that takes seconds after the page loads).

It is drawn from the figure itself (its traces, scene annotations, camera, title and legend), so it shows exactly
the points, centres, boundaries and bands the interactive view will show; only lighting and fonts differ.
Pillow and numpy only: no browser, no kaleido.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Iterator

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageColor, ImageDraw, ImageFont

_SUPERSAMPLE = 2  # drawn at twice the size, then downsampled: smooth edges without an anti-aliasing rasteriser
_FIELD_OF_VIEW = np.radians(45.0)  # Plotly's 3-D camera: perspective, 45° vertical field of view
_BOX_HALF = 0.5  # the scene box spans ±0.5 in camera units for aspectmode "cube"
_MARKER_PX = 1.6  # a scatter3d marker of size s is about this many × s pixels across (as Plotly draws it)
_LINE_PX = 0.5  # a scatter3d line of width w is about this many × w pixels wide
_DASH_PX = (14.0, 8.0)  # a dashed line's on and off lengths
_LEGEND_WIDTH = 220  # Plotly's vertical legend beside the scene, for legend names of this length


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where the system has it (it has θ, ψ and ‖ for the legend's formulas), else Pillow's own."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _rgba(colour: str | None, opacity: float = 1.0) -> tuple[int, int, int, int]:
    """Any CSS colour Plotly accepts here (``#rrggbb``, ``rgb()``, ``rgba()``, names) as an RGBA tuple."""
    colour = colour or "#444444"
    match = re.fullmatch(r"rgba?\(([^)]*)\)", colour.replace(" ", ""))
    if match:
        parts = [float(v) for v in match.group(1).split(",")]
        alpha = parts[3] if len(parts) == 4 else 1.0
        return int(parts[0]), int(parts[1]), int(parts[2]), int(round(255 * alpha * opacity))
    r, g, b = ImageColor.getrgb(colour)[:3]
    return r, g, b, int(round(255 * opacity))


class _Camera:
    """Plotly's scene camera (eye and up; looking at the box's centre) with the axis ranges scaled into its ±0.5 box."""

    def __init__(self, scene: go.layout.Scene, width: int, height: int) -> None:
        eye = scene.camera.eye
        up = scene.camera.up
        self.eye = np.array([eye.x, eye.y, eye.z]) if eye and eye.x is not None else np.array([1.25, 1.25, 1.25])
        up_vector = np.array([up.x, up.y, up.z]) if up and up.x is not None else np.array([0.0, 0.0, 1.0])
        ranges = [axis.range for axis in (scene.xaxis, scene.yaxis, scene.zaxis)]
        self.low = np.array([r[0] if r else -1.0 for r in ranges], dtype=float)
        self.high = np.array([r[1] if r else 1.0 for r in ranges], dtype=float)
        forward = -self.eye / np.linalg.norm(self.eye)
        right = np.cross(forward, up_vector)
        right /= np.linalg.norm(right)
        self.rows = np.stack([right, np.cross(right, forward), forward])
        self.width, self.height = width, height
        self.focal = 0.5 * height / np.tan(_FIELD_OF_VIEW / 2)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) data → (N, 2) pixel positions and (N,) depths (larger = farther)."""
        box = ((points - self.low) / (self.high - self.low) - 0.5) * 2 * _BOX_HALF
        view = (box - self.eye) @ self.rows.T
        depth = view[:, 2]
        pixels = np.stack([self.width / 2 + self.focal * view[:, 0] / depth,
                           self.height / 2 - self.focal * view[:, 1] / depth], axis=1)
        return pixels, depth


def _columns(trace: go.Scatter3d) -> np.ndarray:
    """The trace's x, y, z as an (N, 3) float array, None (a gap between polylines) as NaN."""
    return np.array([[np.nan if v is None else v for v in column] for column in (trace.x, trace.y, trace.z)],
                    dtype=float).T


def _per_point(value: object, count: int) -> list:
    return list(value) if isinstance(value, list | tuple | np.ndarray) else [value] * count


def _shapes(figure: go.Figure, camera: _Camera, scale: float) -> Iterator[tuple[float, str, tuple, dict]]:
    """(depth, kind, geometry, style) for every visible segment, triangle and marker of the figure."""
    for trace in figure.data:
        if trace.visible in (False, "legendonly"):
            continue
        if trace.type == "mesh3d":
            vertices = np.stack([np.asarray(trace.x, float), np.asarray(trace.y, float), np.asarray(trace.z, float)], 1)
            pixels, depth = camera.project(vertices)
            colours = _per_point(trace.facecolor, len(trace.i))
            for a, b, c, colour in zip(trace.i, trace.j, trace.k, colours):
                corners = (a, b, c)
                yield (float(depth[list(corners)].mean()), "polygon", tuple(map(tuple, pixels[list(corners)])),
                       dict(fill=_rgba(colour, trace.opacity if trace.opacity is not None else 1.0)))
            continue
        if trace.type != "scatter3d" or trace.x is None:
            continue
        points = _columns(trace)
        pixels, depth = camera.project(np.nan_to_num(points))
        mode = trace.mode or "markers"
        opacity = trace.opacity if trace.opacity is not None else 1.0
        if "lines" in mode and len(points) > 1:
            colour = _rgba(trace.line.color, opacity)
            width = max(1, int(round((trace.line.width or 2) * _LINE_PX * scale)))
            dashed = bool(trace.line.dash) and trace.line.dash != "solid"
            steps = np.nan_to_num(np.linalg.norm(np.diff(pixels, axis=0), axis=1))
            travelled = np.concatenate([[0.0], np.cumsum(steps)])
            period = sum(_DASH_PX) * scale
            for index in range(len(points) - 1):
                if np.isnan(points[index]).any() or np.isnan(points[index + 1]).any():
                    continue
                if dashed and travelled[index] % period > _DASH_PX[0] * scale:
                    continue
                yield (float(depth[index:index + 2].mean()), "line", (tuple(pixels[index]), tuple(pixels[index + 1])),
                       dict(fill=colour, width=width))
        if "markers" in mode:
            marker = trace.marker
            sizes = _per_point(marker.size if marker.size is not None else 6, len(points))
            colours = _per_point(marker.color, len(points))
            alpha = opacity * (marker.opacity if marker.opacity is not None else 1.0)
            outline = marker.line.color if marker.line and marker.line.width else None
            for index in np.flatnonzero(~np.isnan(points).any(axis=1)):
                radius = float(sizes[index]) * _MARKER_PX * scale / 2
                if radius <= 0:
                    continue
                x, y = pixels[index]
                yield (float(depth[index]), "ellipse", ((x - radius, y - radius), (x + radius, y + radius)),
                       dict(fill=_rgba(colours[index], alpha), outline=_rgba(outline) if outline else None))


def _plain(text: str) -> list[str]:
    """A Plotly title's lines without their HTML tags."""
    return [re.sub(r"<[^>]+>", "", line).strip() for line in re.split(r"<br\s*/?>", text or "") if line.strip()]


def _legend(figure: go.Figure) -> list[tuple[str, str, str]]:
    """(name, colour, "marker" or "line") for each trace Plotly lists in the legend, in its order."""
    entries = []
    for trace in figure.data:
        if trace.showlegend is False or not trace.name or trace.type != "scatter3d":
            continue
        mode = trace.mode or "markers"
        colour = trace.marker.color if "markers" in mode and isinstance(trace.marker.color, str) else trace.line.color
        entries.append((trace.name, colour, "marker" if "markers" in mode else "line"))
    return entries


def render_poster(figure: go.Figure, width: int = 720) -> Image.Image:
    """The figure's 3-D scene as an RGB image ``width`` px wide and as tall as the figure: title, the scene below
    its top margin, the legend on the right, laid out as Plotly lays them out."""
    scale = _SUPERSAMPLE
    height = figure.layout.height or 450
    top = (figure.layout.margin.t or 0) * scale
    legend = _legend(figure)
    scene_width = (width - (_LEGEND_WIDTH if legend else 0)) * scale
    scene = Image.new("RGBA", (scene_width, height * scale - top), "white")
    draw = ImageDraw.Draw(scene, "RGBA")
    camera = _Camera(figure.layout.scene, *scene.size)
    for _, kind, geometry, style in sorted(_shapes(figure, camera, scale), key=lambda shape: -shape[0]):
        if kind == "line":
            draw.line(geometry, **style)
        elif kind == "polygon":
            draw.polygon(geometry, **style)
        else:
            draw.ellipse(geometry, **style)
    for note in figure.layout.scene.annotations or ():
        pixels, _ = camera.project(np.array([[note.x, note.y, note.z]], dtype=float))
        x, y = pixels[0]
        font = _font((note.font.size or 12) * scale)
        draw.text((x, y - (note.yshift or 0) * scale), note.text, fill=_rgba(note.font.color), font=font, anchor="mm")
    canvas = Image.new("RGB", (width * scale, height * scale), "white")
    canvas.paste(scene, (0, top), scene)
    text = ImageDraw.Draw(canvas, "RGBA")
    for row, line in enumerate(_plain(figure.layout.title.text or "")[:3]):
        size = (17 if row == 0 else 12) * scale
        text.text((36 * scale, (14 + 22 * row) * scale), line, fill=(42, 63, 95), font=_font(size))
    font = _font(12 * scale)
    for row, (name, colour, kind) in enumerate(legend):
        x, y = scene_width + 14 * scale, top + (14 + 29 * row) * scale
        if kind == "marker":
            text.ellipse((x + 2 * scale, y - 5 * scale, x + 12 * scale, y + 5 * scale), fill=_rgba(colour, 0.8))
        else:
            text.line((x - 6 * scale, y, x + 20 * scale, y), fill=_rgba(colour), width=3 * scale)
        text.text((x + 34 * scale, y), name, fill=(42, 63, 95), font=font, anchor="lm")
    return canvas.resize((width, height), Image.LANCZOS)


def poster_data_uri(figure: go.Figure, width: int = 720) -> str:
    """``render_poster`` as a WebP data URI, for a page to show before any script runs (lossy at quality 90:
    ~47 kB and 15 ms for the Explore sphere, where a PNG was 160 kB and 110 ms)."""
    buffer = io.BytesIO()
    render_poster(figure, width).save(buffer, format="WEBP", quality=90, method=2)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
