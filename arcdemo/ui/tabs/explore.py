"""Explore: a trained model's test embeddings on the sphere, with its decision boundaries, margin bands, confusion
matrix, angle histogram and card."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from arcdemo import catalog
from arcdemo.inputs import InputError
from arcdemo.points import points_path
from arcdemo.ui.common import friendly
from arcdemo.ui.context import Context
from arcdemo.ui.plots import frame
from arcdemo.ui.store import SessionModels, TestSetMissing, shown_model

if TYPE_CHECKING:
    import plotly.graph_objects as go

TITLE, ID = "Explore", "explore"
EXPLORE_HEIGHT = 640  # px of the sphere figure
log = logging.getLogger("arcdemo.ui")
NO_MODEL = "No checkpoints yet: train one in the Train tab."
HELP = (
    "Dots: test images, coloured by their true class. Lines from the centre: the head's **class centres** (every "
    "sub-centre for sub-center ArcFace; for softmax the directions of W's rows). Everything else is the model's own "
    "prediction, computed from the head: the paint is the class it predicts, solid black curves are its **decision "
    "boundaries**, dashed curves the **margin bands** where the loss's ψ(θᵢ) = cos θⱼ (legend: the formula). With "
    "more than 3 dimensions the view is a projection and no boundary is drawn. Drag to rotate; click a class in the "
    "legend to hide it."
)
CSS = f"#explore-sphere {{ min-height: {EXPLORE_HEIGHT}px; }}\n"  # the poster's room before Plotly sizes it


# ------------------------------------------------------------------------------------------------------ service


@dataclass(frozen=True)
class ExploreView:
    sphere: go.Figure
    summary: str  # markdown
    confusion: go.Figure
    angles: go.Figure
    card: dict


def explore(
    key: str, paint_surface: bool = False, session: SessionModels | None = None, norm_factor: float = 1.0
) -> ExploreView:
    """A model's test embeddings on the sphere with boundaries and margin bands, plus its statistics.

    ``norm_factor`` scales the embedding norm softmax's regions are drawn at (1 = the test median): its logits
    W·x + b grow with ‖x‖, so its cells on the sphere change with it; every normalised head ignores it.
    """
    if not isinstance(norm_factor, (int, float)) or not 0.05 <= norm_factor <= 20:
        raise InputError("The embedding-norm factor must be a number between 0.05 and 20.")
    from arcdemo import viz

    try:
        shown = shown_model(key, session)
    except TestSetMissing as error:
        raise InputError(str(error)) from None
    points, names, metrics = shown.points, shown.class_names, shown.metrics
    title = f"{shown.key}: {len(points.labels):,} of {points.samples:,} test embeddings"
    if shown.embedding_dim > 3:
        title += f" ({shown.embedding_dim}-D)"
    sphere = viz.sphere_figure(
        points.embeddings, points.labels, points.decision_rule(float(norm_factor)), names, title=title,
        paint_surface=bool(paint_surface),
    )
    frame(sphere, EXPLORE_HEIGHT)
    confusion = viz.confusion_figure(np.asarray(metrics["confusion_matrix"]), names)
    confusion.update_layout(height=420)
    angles = viz.angle_histogram_figure(points.intra_deg, points.inter_deg)
    angles.update_layout(
        title="Angles: to its own centre vs to the nearest other centre", height=380,
        margin=dict(t=50, b=10), legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
    )
    summary = explore_summary(shown.key, shown.card, metrics)
    return ExploreView(sphere, summary, confusion, angles, _card_for_display(shown.card))


def _card_for_display(card: Mapping) -> dict:
    """The card without its bulky confusion matrix (shown as a figure already)."""
    shown = {k: v for k, v in card.items() if k != "metrics"}
    shown["metrics"] = {k: v for k, v in card.get("metrics", {}).items() if k != "confusion_matrix"}
    return json.loads(json.dumps(shown, default=float))


def _degrees(value: Any) -> str:
    return f"{value:.1f}°" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def explore_summary(key: str, card: Mapping, metrics: Mapping) -> str:
    """Accuracy, angle statistics and the loss in a few markdown lines, from a model's card and test metrics."""
    spec = card["model"]
    loss = catalog.LOSSES.get(spec["loss"])
    margin_text = ""
    if loss is not None and loss.margin_range != (0.0, 0.0):
        margin = float(spec["margin"])
        unit = f" rad = {math.degrees(margin):.1f}°" if loss.margin_unit == "rad" else ""
        margin_text = f" · margin m = {margin:.2f}{unit} ({loss.margin_meaning})"
    scale_text = f" · scale s = {float(spec['scale']):g}" if loss is None or loss.uses_scale else ""
    trained = ""
    if card.get("wall_time_s") is not None:
        hardware = card.get("hardware", {})
        where = hardware.get("gpu") or f"{hardware.get('cpu', 'CPU')} ×{hardware.get('cpu_count', '?')}"
        trained = (
            f"\n\nTrained {card.get('epochs', '?')} epoch(s), {card.get('steps', '?')} steps in "
            f"{card['wall_time_s']} s on {where}."
        )
    return (
        f"### {key}\n"
        f"**Test accuracy {100 * metrics['accuracy']:.2f}%** on {metrics.get('samples', 0):,} images"
        f" · macro F1 {metrics.get('f1', float('nan')):.3f}\n\n"
        f"{catalog.loss_title(spec['loss'])}{margin_text}{scale_text} · {spec['embedding_dim']}-D "
        "embedding\n\n"
        "| angle | degrees |\n|---|---:|\n"
        f"| mean angle to own class centre | {_degrees(metrics.get('mean_intra_angle_deg'))} |\n"
        f"| median / 90th / 99th percentile of it | {_degrees(metrics.get('intra_angle_p50_deg'))} / "
        f"{_degrees(metrics.get('intra_angle_p90_deg'))} / {_degrees(metrics.get('intra_angle_p99_deg'))} |\n"
        f"| mean angle to nearest other centre | {_degrees(metrics.get('mean_inter_angle_deg'))} |\n"
        f"| smallest angle between two centres | {_degrees(metrics.get('min_centre_angle_deg'))} |"
        f"{trained}"
    )


def explore_poster(figure: Any) -> str:
    """The first Explore sphere as a still picture (``viz.poster``): a style that paints it behind the plot, where
    it shows from the moment the page is laid out until the browser has built the WebGL scene; Plotly's white paper
    covers it even if the script that takes it away never runs. Empty for a missing or flat (2-D) figure, which
    Plotly draws quickly."""
    if figure is None or not any(trace.type == "scatter3d" for trace in figure.data):
        return ""
    from arcdemo.viz.poster import poster_data_uri

    return (f"<style>#explore-sphere:not(.arc-drawn) {{ background: white url({poster_data_uri(figure)}) no-repeat "
            f"left top / 720px auto; }}</style>")


# ------------------------------------------------------------------------------------------------------------ UI


@friendly
def show(key: str, paint_surface: bool, norm_factor: float, session: SessionModels) -> tuple:
    """/explore: the sphere, summary, confusion matrix, angle histogram and card of one model."""
    view = explore(key, paint_surface, session, norm_factor)
    return view.sphere, view.summary, view.confusion, view.angles, view.card


def first_view(key: str | None) -> tuple:
    """The first Explore outputs, drawn while the app is built (from shipped test points: no torch, no dataset),
    so the page arrives with its figure instead of asking for it once loaded; empty when that is not possible
    (no shipped points: then the load event asks, and an error reaches the visitor as a sentence)."""
    if key and points_path(catalog.checkpoints_dir() / key).is_file():
        try:
            return show(key, False, 1.0, {})
        except Exception:  # noqa: BLE001 - any failure here is shown by the load event's own call
            log.warning("the first Explore view of %s could not be drawn ahead", key, exc_info=True)
    return (None, "", None, None, None)


def build(ctx: Context) -> None:
    with ctx.tab(TITLE, ID):
        with gr.Row():
            model = ctx.model_picker(None, NO_MODEL, label="Model", scale=4, elem_id="explore-model")
            paint = gr.Checkbox(label="Paint the sphere by predicted class", value=False, scale=1,
                                elem_id="explore-paint")
            norm_factor = gr.Slider(
                0.25, 4.0, value=1.0, step=0.05, scale=2, label="Softmax: ‖x‖ as a multiple of the test median",
                info="softmax predicts argmax(W·x + b): its regions on the sphere move with the embedding's length; "
                "normalised heads ignore it",
            )
        start = first_view(model.value)
        with gr.Row():
            with gr.Column(scale=3):
                gr.HTML(explore_poster(start[0]), elem_id="explore-poster", js_on_load=None)
                sphere = gr.Plot(start[0], show_label=False, elem_id="explore-sphere")
                gr.Markdown(HELP)
            with gr.Column(scale=2):
                summary = gr.Markdown(start[1])
                confusion = gr.Plot(start[2], show_label=False, elem_id="explore-confusion")
                angles = gr.Plot(start[3], show_label=False, elem_id="explore-angles")
        with gr.Accordion("Checkpoint card", open=False):
            card = gr.JSON(start[4])

    io = dict(fn=show, inputs=[model, paint, norm_factor, ctx.session],
              outputs=[sphere, summary, confusion, angles, card])
    model.change(**io, api_name="explore", concurrency_limit=2)
    paint.change(**io, api_visibility="private", concurrency_id="explore_paint")
    norm_factor.release(**io, api_visibility="private", concurrency_id="explore_paint")
    if start[0] is None:
        ctx.later(lambda: ctx.loading.then(**io, api_visibility="private", concurrency_id="explore_load"))
