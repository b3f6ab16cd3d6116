"""Each piece of ui.tweaks leans on Gradio's internals: these check them against the installed Gradio, so an upgrade
that moves them fails here instead of silently doing nothing."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from arcdemo.ui import tweaks
from arcdemo.ui.plots import FigureJSON


def test_the_installed_gradio_is_the_one_these_tweaks_were_written_for() -> None:
    major, minor = (int(part) for part in gr.__version__.split(".")[:2])
    assert (major, minor) >= (6, 31), gr.__version__


def test_the_queue_polls_less_when_idle() -> None:
    with gr.Blocks() as demo:
        gr.Button().click(lambda: None)
    demo.queue()
    queue = demo._queue
    assert hasattr(queue, "sleep_when_free") and hasattr(queue, "progress_update_sleep_when_free")
    tweaks.poll_less_when_idle(demo)
    assert queue.sleep_when_free >= 0.01 and queue.progress_update_sleep_when_free >= 0.05


def test_plotly_is_preloaded_from_gradios_assets() -> None:
    link = tweaks.plotly_preload()
    assert link.startswith('<link rel="modulepreload" href="assets/PlotlyPlot-'), link
    name = link.split("assets/")[1].split('"')[0]
    assert (Path(gr.__file__).parent / "templates" / "frontend" / "assets" / name).is_file()


def test_a_serialised_figure_goes_in_as_plot_data() -> None:
    value = tweaks.plot_value(FigureJSON('{"data": [], "layout": {}}'))
    assert value.type == "plotly" and value.plot == '{"data": [], "layout": {}}'
    assert tweaks.plot_value(None) is None


def test_a_sketchpad_keeps_its_drawings_blobs_where_the_guard_waits_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    pad = gr.Sketchpad()
    assert hasattr(pad, "blob_storage") and hasattr(pad.blob_storage, "get")

    class Payload:
        id = "event-1"

    monkeypatch.setattr(tweaks, "BLOB_WAIT_S", 0.05)
    tweaks.wait_for_drawing(pad, Payload())  # no blobs arrive: it gives up after BLOB_WAIT_S
    tweaks.wait_for_drawing(pad, None)  # an API call has no event id: nothing to wait for


def test_the_page_scripts_target_the_explore_sphere() -> None:
    assert "#explore-sphere" in tweaks.POSTER_SWAP and "arcSphereDrawn" in tweaks.POSTER_SWAP
    assert "resize" in tweaks.RESIZE_JS
