"""``build_demo()``: the page, one tab per module of ``arcdemo.ui.tabs``, and ``launch_options()``.

Only gradio is imported at module level: torch, plotly and the models load inside callbacks, on first use, so
``python app.py`` serves its first page without importing torch.

API names (gradio_client), kept stable: ``/explore``, ``/train`` (a generator), ``/stop_training``,
``/compare_losses`` (a generator), ``/predict_digit``, ``/classify_image``, ``/verify_faces``, ``/enrol_face``,
``/identify_face``.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # an offline lab: no phoning home

import gradio as gr  # noqa: E402

from arcdemo.ui import tweaks  # noqa: E402
from arcdemo.ui.context import Context  # noqa: E402
from arcdemo.ui.desk import TrainingDesk  # noqa: E402
from arcdemo.ui.store import SESSION_TTL_S, forget_session  # noqa: E402
from arcdemo.ui.tabs import classify, draw, explore, faces, train  # noqa: E402

TABS = (explore, train, draw, classify, faces)  # each: build(ctx) adds its tab and wires it
DESK = TrainingDesk()  # one training at a time on this server, whichever page started it

# Public-server limits from the environment (README, "The app"): the largest upload Gradio accepts and how many
# calls may wait in the queue before a visitor is told it is full.
MAX_UPLOAD_MB = int(os.environ.get("ARCDEMO_MAX_UPLOAD_MB", "100"))
MAX_QUEUE = int(os.environ.get("ARCDEMO_MAX_QUEUE", "64"))

CSS = """
.arc-progress { display: flex; flex-direction: column; gap: 6px; font-size: 0.92em; }
.arc-bar { height: 10px; border-radius: 5px; background: var(--neutral-200); overflow: hidden; }
.arc-bar > div { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.arc-done .arc-bar > div { background: #2ca02c; }
.arc-compare { margin-top: 6px; border-collapse: collapse; }
.arc-compare td, .arc-compare th { padding: 2px 10px; border-bottom: 1px solid var(--neutral-200); text-align: right; }
.arc-compare td:first-child, .arc-compare th:first-child { text-align: left; }
#arc-preview img { image-rendering: pixelated; }
footer { display: none !important; }
""" + explore.CSS

INTRO = """\
# arcdemo — margins on the sphere
Margin losses (ArcFace and its family) put each class's embeddings on the unit sphere around a learned **class
centre**, and ask every sample to be closer in *angle* to its own centre than to any other — by a **margin m**.
**Explore** a trained model, **Train** your own and watch the classes settle, **Draw** a digit or **Classify** an
image and see where it lands, or ask whether two **Faces** are the same person.
"""


def build_demo() -> gr.Blocks:
    """The whole app. Launch with ``demo.launch(**launch_options())``."""
    with gr.Blocks(title="arcdemo — margins on the sphere") as demo:
        session = gr.State({}, time_to_live=SESSION_TTL_S, delete_callback=forget_session)
        ctx = Context(demo, session, DESK)
        gr.Markdown(INTRO)
        with gr.Tabs():
            for tab in TABS:
                tab.build(ctx)
        ctx.finish()
    demo.queue(max_size=MAX_QUEUE)
    tweaks.poll_less_when_idle(demo)
    return demo


def launch_options(**overrides: Any) -> dict[str, Any]:
    """``demo.launch`` keywords: theme/css (Gradio 6 takes them at launch), host/port from the environment."""
    options: dict[str, Any] = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        theme=gr.themes.Soft(primary_hue="indigo", secondary_hue="amber"),
        css=CSS,
        head=tweaks.plotly_preload() + tweaks.POSTER_SWAP,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        show_error=False,
    )
    options.update(overrides)
    return options


__all__ = ["build_demo", "launch_options"]
