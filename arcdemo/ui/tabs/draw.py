"""Draw: a digit drawn on a canvas, prepared the way MNIST was made, classified as it is drawn, and shown on the
sphere among the test digits."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from arcdemo import catalog
from arcdemo.ui.common import friendly, guard_sketchpad, noted, panel_prediction, prediction_panel, quiet_note
from arcdemo.ui.context import Context
from arcdemo.ui.predict import draw_base
from arcdemo.ui.store import SessionModels, load_model

TITLE, ID = "Draw", "draw"
NO_MODEL = "No MNIST model yet: train one in the Train tab."
log = logging.getLogger("arcdemo.ui")


@friendly
def predict_digit(sketch: Any, key: str, session: SessionModels) -> tuple:
    """/predict_digit: a Sketchpad value (or an image) through an MNIST model."""
    return panel_prediction(sketch, key, session,
                            "No MNIST model is available yet: train one in the Train tab (dataset MNIST).")


def predict_digit_live(sketch: Any, key: str, session: SessionModels) -> tuple:
    """On every stroke: predict, and keep the drawing (per session) for Predict and model changes.

    The Sketchpad uploads the drawing with its change events only; a click on Predict that sent the Sketchpad again
    would read an empty canvas, so Predict re-uses the drawing kept here. An empty canvas or a missing model is a
    quiet note, not an error toast.
    """
    drawing = sketch if sketch is not None and (sketch.get("composite") is not None or sketch.get("layers")) else None
    return (*predict_digit_again(drawing, key, session), drawing)


def predict_digit_again(drawing: Any, key: str, session: SessionModels) -> tuple:
    """Predict the kept drawing (Predict button, another model chosen); quiet notes instead of errors."""
    if drawing is None:
        return quiet_note("Pick the brush and draw a digit: the prediction follows every stroke.")
    return noted(predict_digit, drawing, key, session)


def warm_up(draw_key: str | None) -> None:
    """When the Draw tab opens: import torch and build its base figure, so the first drawing is instant. (Not on
    page load: on a small CPU the import would compete with the browser drawing the first Explore figure.)"""
    if not draw_key:
        return
    try:
        load_model(draw_key).draw_base(draw_base)
    except Exception:  # noqa: BLE001 - warming up is best effort; the real call reports errors
        log.warning("warm-up of %s failed", draw_key, exc_info=True)


def build(ctx: Context) -> None:
    with ctx.tab(TITLE, ID) as tab, gr.Row():
        with gr.Column(scale=2, min_width=320):
            model = ctx.model_picker(catalog.listed_in(ID), NO_MODEL, label="MNIST model")
            sketch = guard_sketchpad(gr.Sketchpad(
                label="Draw a digit (pick the brush first)", canvas_size=(336, 336), fixed_canvas=True,
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=14),
                layers=False, type="numpy", height=420, elem_id="digit-pad",
            ))
            button = gr.Button("Predict", variant="primary", elem_id="predict-button")
            drawing = gr.State(None)  # the last drawing, for Predict and model changes
            api_button = gr.Button(visible=False)  # /predict_digit: the Sketchpad value from the API
            gr.Markdown(
                "The drawing is prepared the way MNIST was made: cropped to the ink, scaled to fit 20×20 keeping its "
                "shape, and centred by centre of mass in 28×28."
            )
        with gr.Column(scale=3):
            outputs = prediction_panel("digit")

    api_button.click(predict_digit, [sketch, model, ctx.session], outputs, api_name="predict_digit",
                     concurrency_limit=4)
    sketch.change(
        predict_digit_live, [sketch, model, ctx.session], [*outputs, drawing], api_visibility="private",
        show_progress="hidden", trigger_mode="always_last", concurrency_limit=4,
    )
    for trigger in (button.click, model.change):
        trigger(predict_digit_again, [drawing, model, ctx.session], outputs, api_visibility="private",
                concurrency_limit=4)
    ctx.later(lambda: tab.select(warm_up, model, None, api_visibility="private", show_progress="hidden"))
