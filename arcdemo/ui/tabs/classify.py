"""Classify: any image through a CIFAR-10 model, a face photo through the ORL people model (aligned first), or
either through a model of your images, with its angles to every class centre and its point on the sphere."""

from __future__ import annotations

from typing import Any

import gradio as gr

from arcdemo import catalog
from arcdemo.ui.common import friendly, guard_image, noted, panel_prediction, prediction_panel, quiet_note
from arcdemo.ui.context import Context
from arcdemo.ui.store import SessionModels

TITLE, ID = "Classify", "classify"
NO_MODEL = ("No CIFAR-10 model yet: train one in the Train tab (dataset CIFAR-10); it appears here for this browser "
            "session.")
EXAMPLES_DIR = catalog.REPO / "docs" / "examples"


@friendly
def classify_image(image: Any, key: str, session: SessionModels) -> tuple:
    """/classify_image: an image file through a model of photos."""
    return panel_prediction(image, key, session, "No CIFAR-10 model is available yet: train one in the Train tab "
                            "(dataset CIFAR-10).")


def classify_image_live(image: Any, key: str, session: SessionModels) -> tuple:
    """On upload: classify; a problem shows as a warning and a quiet note, not an error."""
    if image is None:
        return quiet_note("Upload an image, or pick one of the examples below.")
    return noted(classify_image, image, key, session, warn=True)


def examples() -> list[str]:
    return [str(path) for path in sorted(EXAMPLES_DIR.glob("*")) if path.suffix.lower() in (".png", ".webp", ".jpg")]


def build(ctx: Context) -> None:
    with ctx.tab(TITLE, ID), gr.Row():
        with gr.Column(scale=2, min_width=320):
            model = ctx.model_picker(catalog.listed_in(ID), NO_MODEL, label="Model")
            upload = guard_image(gr.Image(  # image_mode=None: the file as uploaded, read by inputs
                label="Any image (any size or mode)", type="filepath", image_mode=None,
                sources=["upload", "clipboard"], height=300,
            ))
            button = gr.Button("Classify", variant="primary")
            if examples():
                gr.Examples(examples(), inputs=[upload], label="CIFAR-10 test images", cache_examples=False)
            gr.Markdown(
                f"CIFAR-10 classes: {', '.join(catalog.CIFAR10_CLASSES)}. Anything else still lands somewhere on the "
                "sphere: its angles to the centres tell how sure the model can be. A model of faces (ORL's 40 people, "
                "or your photos aligned as faces) finds the face and aligns it first: upload a face photo to see "
                "which person's region it falls in."
            )
        with gr.Column(scale=3):
            outputs = prediction_panel("image")

    inputs = [upload, model, ctx.session]
    button.click(classify_image, inputs, outputs, api_name="classify_image", concurrency_limit=4)
    upload.change(classify_image_live, inputs, outputs, api_visibility="private", concurrency_limit=4)
