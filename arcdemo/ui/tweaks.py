"""Everything here leans on Gradio's internals or its page, not its public API: each piece is checked against the
installed Gradio in tests/test_ui_tweaks.py, and each falls back to doing nothing where that Gradio differs.

- ``poll_less_when_idle``: the queue's polling intervals while it has nothing to do;
- ``plotly_preload``: a modulepreload link to Gradio's Plotly bundle, by its file name in Gradio's assets;
- ``plot_value``: a pre-serialised Plotly figure handed to ``gr.Plot`` as its ``PlotData`` (no second encoding);
- ``wait_for_drawing``: a Sketchpad event waits for its drawing's blobs (``component.blob_storage``);
- ``RESIZE_JS`` and ``POSTER_SWAP``: scripts on the page (a resize when a tab shows; the Explore picture swap).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from arcdemo.ui.plots import FigureJSON

# Plotly sizes a figure drawn in a hidden tab wrongly; a resize event when the tab shows fixes it
RESIZE_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 60); }"
BLOB_WAIT_S = 2.0


def poll_less_when_idle(demo: gr.Blocks) -> None:
    """Gradio's queue looks for new events every 1 ms while it has none, and for progress every 10 ms, which costs
    an idle server a noticeable share of a small CPU; every 10 ms and 50 ms instead add at most that to the start
    of a call."""
    queue = getattr(demo, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):  # another Gradio's internals: leave them be
        return
    queue.sleep_when_free = max(queue.sleep_when_free, 0.01)
    queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, 0.05)


def plotly_preload() -> str:
    """A ``<link rel=modulepreload>`` for Gradio's Plotly bundle, so the browser fetches and compiles it while the
    page boots, not after the first figure arrives; empty if this Gradio lays its assets out otherwise."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    bundle = next(iter(sorted(assets.glob("PlotlyPlot-*.js"))), None) if assets.is_dir() else None
    return f'<link rel="modulepreload" href="assets/{bundle.name}">' if bundle else ""


def plot_value(figure: Any) -> Any:
    """gr.Plot takes Plotly figures; pre-serialised ones go in as PlotData (no second encoding)."""
    if isinstance(figure, FigureJSON):
        return PlotData(type="plotly", plot=figure.json)
    return figure


def wait_for_drawing(component: gr.Sketchpad, payload: Any) -> None:
    """The browser sends a Sketchpad event and, separately, the drawing's pieces as blobs under the event's id; the
    event can reach ``preprocess`` before its composite has and would read an empty canvas, so wait up to
    BLOB_WAIT_S for it."""
    blob_id = getattr(payload, "id", None)
    if blob_id is None:
        return
    deadline = time.monotonic() + BLOB_WAIT_S
    while time.monotonic() < deadline:
        blobs = component.blob_storage.get(blob_id)
        if blobs is not None and blobs.composite is not None:
            return
        time.sleep(0.02)


# Takes the still picture away once the interactive sphere is drawn (its WebGL canvas exists and two frames have
# passed), or after 20 s whatever happened (a browser without WebGL then shows Plotly's own message). Notes on the
# page's clock when the picture is first painted and when the interactive sphere replaced it (benchmarks read them:
# a busy main thread leaves a test's polling no earlier moment to look).
POSTER_SWAP = """<script>
(() => {
  const sphereDrawn = () => document.querySelector("#explore-sphere .gl-container canvas");
  const removePoster = () => {
    const sphere = document.getElementById("explore-sphere");
    if (sphere && !sphere.classList.contains("arc-drawn")) {
      sphere.classList.add("arc-drawn");
      window.arcSphereDrawn = performance.now();
    }
    observer.disconnect();
  };
  const afterTwoFrames = () => requestAnimationFrame(() => requestAnimationFrame(removePoster));
  const observer = new MutationObserver(() => { if (sphereDrawn()) afterTwoFrames(); });
  observer.observe(document.documentElement, {childList: true, subtree: true});
  setTimeout(removePoster, 20000);
  const firstFrameWithPoster = () => {  // a frame about to be painted with the picture in it
    const sphere = document.getElementById("explore-sphere");
    if (sphere && getComputedStyle(sphere).backgroundImage.startsWith("url(")) {
      window.arcPosterShown = performance.now();
    } else if (!window.arcSphereDrawn) {
      requestAnimationFrame(firstFrameWithPoster);
    }
  };
  requestAnimationFrame(firstFrameWithPoster);
})();
</script>"""
