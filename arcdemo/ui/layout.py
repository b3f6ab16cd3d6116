"""``build_demo()``: the Gradio Blocks, wiring the callbacks of ``arcdemo.ui.callbacks`` to components.

Only gradio is imported at module level: torch, plotly and the models load inside callbacks, on first use, so
``python app.py`` serves its first page within a few seconds of gradio's own import.

API names (gradio_client), kept stable: ``/explore``, ``/train`` (a generator), ``/stop_training``,
``/compare_losses`` (a generator), ``/predict_digit``, ``/classify_image``, ``/verify_faces``, ``/enrol_face``,
``/identify_face``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # an offline lab: no phoning home

import gradio as gr  # noqa: E402
from gradio.components.plot import PlotData  # noqa: E402

from arcdemo.margins import LOSSES  # noqa: E402
from arcdemo.ui import callbacks as cb  # noqa: E402
from arcdemo.ui import faces  # noqa: E402
from arcdemo.ui.models import DATASET_TITLES, IMAGE_FOLDER, LOSS_TITLES, REPO, available_models  # noqa: E402
from arcdemo.ui.outputs import image_file  # noqa: E402
from arcdemo.ui.plots import FigureJSON  # noqa: E402

log = logging.getLogger("arcdemo.ui")
RESIZE_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 60); }"
CIFAR10_TEXT = "airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck"
EXAMPLES_DIR = REPO / "docs" / "examples"
DESK = cb.TrainingDesk()
_NO_MODEL = {
    None: "No checkpoints yet: train one in the Train tab.",
    "mnist": "No MNIST model yet: train one in the Train tab.",
    "cifar10": "No CIFAR-10 model yet: train one in the Train tab (dataset CIFAR-10); it appears here for this "
    "browser session.",
}

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
""" + f"#explore-sphere {{ min-height: {cb.EXPLORE_HEIGHT}px; }}\n"  # the poster's room before Plotly sizes it

INTRO = """\
# arcdemo — margins on the sphere
Margin losses (ArcFace and its family) put each class's embeddings on the unit sphere around a learned **class
centre**, and ask every sample to be closer in *angle* to its own centre than to any other — by a **margin m**.
**Explore** a trained model, **Train** your own and watch the classes settle, **Draw** a digit or **Classify** an
image and see where it lands, or ask whether two **Faces** are the same person.
"""


# ------------------------------------------------------------------------------------------------ plumbing


def _friendly_error(error: Exception) -> gr.Error:
    """A sentence for the visitor; the server log gets a traceback only for what nobody expected (once, here)."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, cb.AppInputError):
        return gr.Error(str(error), title="Cannot do that", print_exception=False)
    log.exception("unexpected error in a callback")
    return gr.Error(f"Sorry, that failed unexpectedly ({type(error).__name__}: {error}). The server log has details.",
                    print_exception=False)


def _friendly(fn: Callable) -> Callable:
    """Errors become a ``gr.Error`` with a sentence (the user's mistakes) or a short note (ours), never a traceback."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                raise _friendly_error(error) from None

        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            raise _friendly_error(error) from None

    return function


def _plot(figure: Any) -> Any:
    """gr.Plot takes Plotly figures; pre-serialised ones go in as PlotData (no second encoding)."""
    if isinstance(figure, FigureJSON):
        return PlotData(type="plotly", plot=figure.json)
    return figure


# Public-server limits from the environment (README, "The app"): the largest upload Gradio accepts and how many
# calls may wait in the queue before a visitor is told it is full.
MAX_UPLOAD_MB = int(os.environ.get("ARCDEMO_MAX_UPLOAD_MB", "100"))
MAX_QUEUE = int(os.environ.get("ARCDEMO_MAX_QUEUE", "64"))
CLASSIFY_DATASETS = ("cifar10", IMAGE_FOLDER)  # Classify takes any photo: CIFAR-10 models and models of your images


def _choices(dataset: str | tuple[str, ...] | None, session: cb.SessionModels | None = None) -> list[tuple[str, str]]:
    return [(entry.label, entry.key) for entry in available_models(session, dataset)]


def _first(choices: list[tuple[str, str]]) -> str | None:
    return choices[0][1] if choices else None


def _check_uploads(files: list[Any]) -> None:
    """Check uploaded files before a component decodes them: a non-image or a 400-MP bomb gets a sentence."""
    from arcdemo.inputs import InputError, check_image_file

    for file in files:
        path = getattr(file, "path", None)
        if path is not None:
            try:
                check_image_file(path)
            except InputError as error:
                raise gr.Error(str(error), title="Cannot use that image", print_exception=False) from None


def guard_image(component: gr.Image) -> gr.Image:
    """Wrap the instance's ``preprocess``: uploads are checked (see _check_uploads) before Gradio decodes them.

    (An instance attribute rather than a subclass: Gradio writes a .pyi stub next to any module defining one.)
    """
    decode = component.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None:
            _check_uploads([payload])
        return decode(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


BLOB_WAIT_S = 2.0


def guard_sketchpad(component: gr.Sketchpad) -> gr.Sketchpad:
    """Wrap the instance's ``preprocess``: API uploads are checked, and a browser drawing is waited for.

    The browser sends an event and, separately, the drawing's pieces as blobs under the event's id; the event can
    reach ``preprocess`` before its composite has and would read an empty canvas, so it waits up to BLOB_WAIT_S.
    """
    decode = component.preprocess

    def preprocess(payload: Any) -> Any:
        blob_id = getattr(payload, "id", None)
        if payload is not None and blob_id is None:
            _check_uploads([payload.background, payload.composite, *(payload.layers or [])])
        if blob_id is not None:
            deadline = time.monotonic() + BLOB_WAIT_S
            while time.monotonic() < deadline:
                blobs = component.blob_storage.get(blob_id)
                if blobs is not None and blobs.composite is not None:
                    break
                time.sleep(0.02)
        return decode(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


# ---------------------------------------------------------------------------------------------- callbacks


@_friendly
def explore(key: str, paint_surface: bool, norm_factor: float, session: cb.SessionModels) -> tuple:
    view = cb.explore(key, paint_surface, session, norm_factor)
    return view.sphere, view.summary, view.confusion, view.angles, view.card


def _prediction_outputs(prediction: cb.Prediction) -> tuple:
    return (
        prediction.probabilities, _plot(prediction.figure), prediction.angles, image_file(prediction.preview),
        prediction.summary,
    )


_EMPTY_PREDICTION = (None, None, None, None, "")


@_friendly
def predict_digit(sketch: Any, key: str, session: cb.SessionModels) -> tuple:
    if not key:
        raise cb.InputError("No MNIST model is available yet: train one in the Train tab (dataset MNIST).")
    return _prediction_outputs(cb.predict(sketch, key, session))


def predict_digit_live(sketch: Any, key: str, session: cb.SessionModels) -> tuple:
    """On every stroke: predict, and keep the drawing (per session) for Predict and model changes.

    Gradio 6.31's Sketchpad uploads the drawing with its change events only; a click on Predict that sent the
    Sketchpad again would read an empty canvas (measured in the browser test), so Predict re-uses the drawing
    kept here. An empty canvas or a missing model is a quiet note, not an error toast.
    """
    drawing = sketch if sketch is not None and (sketch.get("composite") is not None or sketch.get("layers")) else None
    return (*predict_digit_again(drawing, key, session), drawing)


def predict_digit_again(drawing: Any, key: str, session: cb.SessionModels) -> tuple:
    """Predict the kept drawing (Predict button, another model chosen); quiet notes instead of errors."""
    if drawing is None:
        return (*_EMPTY_PREDICTION[:-1], "*Pick the brush and draw a digit: the prediction follows every stroke.*")
    try:
        return predict_digit(drawing, key, session)
    except gr.Error as error:
        return (*_EMPTY_PREDICTION[:-1], f"*{error.message}*")


@_friendly
def classify_image(image: Any, key: str, session: cb.SessionModels) -> tuple:
    if not key:
        raise cb.InputError("No CIFAR-10 model is available yet: train one in the Train tab (dataset CIFAR-10).")
    return _prediction_outputs(cb.predict(image, key, session))


def classify_image_live(image: Any, key: str, session: cb.SessionModels) -> tuple:
    if image is None:
        return (*_EMPTY_PREDICTION[:-1], "*Upload an image, or pick one of the examples below.*")
    try:
        return classify_image(image, key, session)
    except gr.Error as error:
        gr.Warning(error.message)
        return (*_EMPTY_PREDICTION[:-1], f"*{error.message}*")


@_friendly
def verify_faces(first: Any, second: Any) -> tuple:
    comparison = faces.compare_faces(first, second)
    a, b = comparison.photos
    images = (image_file(picture) for picture in (a.boxed, b.boxed, a.crop, b.crop))
    return (*images, comparison.summary(), comparison.result())


@_friendly
def enrol_face(name: str, photo: Any, gallery: faces.Gallery) -> tuple:
    gallery, enrolled = faces.enrol(gallery, name, photo)
    note = f"Enrolled **{name.strip()}** ({enrolled.note}). {len(gallery)} in the gallery."
    return [(image_file(crop), name) for crop, name in faces.gallery_items(gallery)], note, gallery


def clear_gallery() -> tuple:
    return [], "The gallery is empty.", {}


@_friendly
def identify_face(photo: Any, gallery: faces.Gallery) -> tuple:
    found = faces.identify(gallery, photo)
    return image_file(found.photo.boxed), found.summary, {"headers": found.headers, "data": found.rows}, found.name


def _train_outputs(update: cb.TrainUpdate, files: list[str], session: cb.SessionModels) -> tuple:
    return (
        update.status,
        update.sphere if update.sphere is not None else gr.skip(),
        update.curves if update.curves is not None else gr.skip(),
        files if update.done is not None else gr.skip(),
        session,
    )


def _run_training(
    make_stream: Callable[[Callable[[], bool]], Iterator[cb.TrainUpdate]], session: cb.SessionModels,
    request: gr.Request,
) -> Iterator[tuple]:
    """Bracket a run with the desk (Stop, one at a time) and add the finished models to the session."""
    session_id = request.session_hash if request is not None else "anonymous"
    flag = DESK.begin(session_id)
    if flag is None:
        DESK.end(session_id)
        yield (cb._progress_html(0, "Cancelled before it started.", "done"), gr.skip(), gr.skip(), gr.skip(), session)
        return
    files: list[str] = []
    try:
        for update in make_stream(flag.is_set):
            if update.done is not None:
                session = cb.add_session_model(session, update.done.model)
                files = files + update.done.files
            yield _train_outputs(update, files, session)
    finally:
        DESK.end(session_id)


@_friendly
def train(
    dataset: str, loss: str, margin: float, scale: float, dim: int, epochs: int, lr: float, warmup_steps: int,
    optimizer: str, batch_size: int, seed: int, train_subset: int, images_zip: str | None = None,
    session: cb.SessionModels | None = None, request: gr.Request | None = None,
) -> Iterator[tuple]:
    def stream(should_stop: Callable[[], bool]) -> Iterator[cb.TrainUpdate]:
        config = cb.training_config(
            dataset, loss, margin, scale, dim, epochs, lr, warmup_steps, seed, train_subset, batch_size, optimizer,
            images_zip,
        )
        return cb.train_stream(config, should_stop)

    yield from _run_training(stream, session or {}, request)


@_friendly
def compare_losses(
    dataset: str, loss: str, margin: float, scale: float, dim: int, epochs: int, lr: float, warmup_steps: int,
    optimizer: str, batch_size: int, seed: int, train_subset: int, loss_b: str, margin_b: float, scale_b: float,
    images_zip: str | None = None, session: cb.SessionModels | None = None, request: gr.Request | None = None,
) -> Iterator[tuple]:
    def stream(should_stop: Callable[[], bool]) -> Iterator[cb.TrainUpdate]:
        common = (dim, epochs, lr, warmup_steps, seed, train_subset, batch_size, optimizer, images_zip)
        config_a = cb.training_config(dataset, loss, margin, scale, *common)
        config_b = cb.training_config(dataset, loss_b, margin_b, scale_b, *common)
        return cb.compare_stream(config_a, config_b, should_stop)

    yield from _run_training(stream, session or {}, request)


def announce_training(request: gr.Request) -> str:
    queued = DESK.announce(request.session_hash if request is not None else "anonymous")
    if queued:
        return cb._progress_html(
            0,
            "⏳ Another training is running on this server (one at a time keeps it responsive). Yours is queued and "
            "starts as soon as it finishes; Stop cancels it.",
        )
    return cb._progress_html(0, "Starting…")


def stop_training(request: gr.Request) -> str:
    return DESK.stop(request.session_hash if request is not None else "anonymous")


def stop_on_leave(request: gr.Request) -> None:
    if request is not None:
        DESK.stop(request.session_hash)


# Where a loss's defaults (tuned on MNIST) fail on another dataset, the sliders start here instead. Measured on
# CIFAR-10 (presets.py, before the cifar10 recipes): ArcFace at s = 30 collapsed to chance, m = 0.2 and s = 16 trains.
# The same on ORL as your images (40 people, 8 photos each to train on, 32-D, 30 epochs, batch 32): m = 0.5, s = 30
# 30% held-out accuracy; m = 0.2, s = 16 96.3% (softmax 98.8%).
DATASET_LOSS_SETTINGS = {("cifar10", "arcface"): (0.2, 16.0), (IMAGE_FOLDER, "arcface"): (0.2, 16.0)}


def loss_controls(loss: str, dataset: str = "mnist") -> tuple:
    """Margin and scale sliders follow the loss (and dataset): defaults, allowed range, locked where fixed."""
    spec = LOSSES.get(loss)
    if spec is None:
        return gr.skip(), gr.skip()
    margin_value, scale_value = DATASET_LOSS_SETTINGS.get((dataset, loss), (spec.margin, spec.scale))
    low, high = spec.margin_range
    margin = gr.update(
        value=margin_value, minimum=low, maximum=high if high > low else low + 1, interactive=high > low,
        info=spec.margin_meaning if high > low else f"no margin: {spec.margin_meaning}",
    )
    low_s, high_s = spec.scale_range
    scale = gr.update(
        value=scale_value, minimum=low_s, maximum=high_s if high_s > low_s else low_s + 1,
        interactive=high_s > low_s and spec.uses_scale,
        info="logits are s·cos θ" if spec.uses_scale else "unused: a plain linear layer",
    )
    return margin, scale


def refresh_models(
    session: cb.SessionModels, explore_key: str | None, draw_key: str | None, classify_key: str | None
) -> tuple:
    """Model lists from disk plus this session's trained models, keeping each selection when it still exists."""
    updates = []
    tabs = ((None, None, explore_key), ("mnist", "mnist", draw_key), ("cifar10", CLASSIFY_DATASETS, classify_key))
    for tab, datasets, current in tabs:
        choices = _choices(datasets, session)
        keys = [key for _, key in choices]
        value = current if current in keys else _first(choices)
        updates.append(gr.update(choices=choices, value=value, info=None if choices else _NO_MODEL[tab]))
    return tuple(updates)


def first_explore_view(key: str | None) -> tuple:
    """The first Explore outputs, drawn while the app is built (from shipped test points: no torch, no dataset),
    so the page arrives with its figure instead of asking for it once loaded; empty when that is not possible
    (no shipped points: then the load event asks, and an error reaches the visitor as a sentence)."""
    from arcdemo.points import points_path
    from arcdemo.ui.models import checkpoints_dir

    if key and points_path(checkpoints_dir() / key).is_file():
        try:
            return explore(key, False, 1.0, {})
        except Exception:  # noqa: BLE001 - any failure here is shown by the load event's own call
            log.warning("the first Explore view of %s could not be drawn ahead", key, exc_info=True)
    return (None, "", None, None, None)


# Takes the still picture away once the interactive sphere is drawn (its WebGL canvas exists and two frames have
# passed), or after 20 s whatever happened (a browser without WebGL then shows Plotly's own message). Notes on the
# page's clock when the picture is first painted and when the interactive sphere replaced it (benchmarks read them:
# a busy main thread leaves a test's polling no earlier moment to look).
_POSTER_SWAP = """<script>
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


def explore_poster(figure: Any) -> str:
    """The first Explore sphere as a still picture drawn here (``viz.poster``): a style that paints it behind the
    plot, where it shows from the moment the page is laid out until the browser has built the WebGL scene (on a
    CPU-only browser Plotly's bundle and scene take ~3-4 s after the page loads, the picture none); Plotly's white
    paper covers it even if the script that takes it away never runs. Empty for a missing or flat (2-D) figure,
    which Plotly draws quickly."""
    if figure is None or not any(trace.type == "scatter3d" for trace in figure.data):
        return ""
    from arcdemo.viz.poster import poster_data_uri

    return (f"<style>#explore-sphere:not(.arc-drawn) {{ background: white url({poster_data_uri(figure)}) no-repeat "
            f"left top / 720px auto; }}</style>")


def plotly_preload() -> str:
    """A ``<link rel=modulepreload>`` for Gradio's Plotly bundle (4.6 MB), so the browser fetches and compiles it
    while the page boots, not after the first figure arrives; empty if this Gradio lays its assets out otherwise."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    bundle = next(iter(sorted(assets.glob("PlotlyPlot-*.js"))), None) if assets.is_dir() else None
    return f'<link rel="modulepreload" href="assets/{bundle.name}">' if bundle else ""


def warm_up(draw_key: str | None) -> None:
    """When the Draw tab opens: import torch and build its base figure, so the first drawing is instant. (Not on
    page load: on a 2-core CPU the import would compete with the browser drawing the first Explore figure.)"""
    if not draw_key:
        return
    try:
        cb.load_model(draw_key).draw_base(cb._draw_base)
    except Exception:  # noqa: BLE001 - warming up is best effort; the real call reports errors
        log.warning("warm-up of %s failed", draw_key, exc_info=True)


# --------------------------------------------------------------------------------------------------- layout


def _examples() -> list[str]:
    return [str(path) for path in sorted(EXAMPLES_DIR.glob("*")) if path.suffix.lower() in (".png", ".webp", ".jpg")]


def _prediction_panel(kind: str) -> tuple:
    summary = gr.Markdown(elem_id=f"{kind}-summary")
    with gr.Row():
        probabilities = gr.Label(num_top_classes=3, label="Top-3 probabilities", scale=2, elem_id=f"{kind}-label")
        preview = gr.Image(
            label=f"What the model sees ({'28×28, MNIST-style' if kind == 'digit' else '32×32 RGB'})", height=170,
            interactive=False, buttons=[], elem_id="arc-preview" if kind == "digit" else None, scale=1,
        )
    sphere = gr.Plot(show_label=False, elem_id=f"{kind}-sphere")
    angles = gr.Dataframe(
        headers=["class", "angle to centre (°)", "probability (%)"], label="Angle to every class centre",
        interactive=False, wrap=True,
    )
    return probabilities, sphere, angles, preview, summary


def build_demo() -> gr.Blocks:
    """The whole app. Launch with ``demo.launch(**launch_options())``."""
    all_models = _choices(None)
    mnist_models, cifar_models = _choices("mnist"), _choices("cifar10")
    loss_choices = [(title, name) for name, title in LOSS_TITLES.items()]
    start = cb.TRAIN_DEFAULTS
    first_view = first_explore_view(_first(all_models))

    with gr.Blocks(title="arcdemo — margins on the sphere") as demo:
        session = gr.State({}, time_to_live=cb.SESSION_TTL_S, delete_callback=cb.forget_session)
        gr.Markdown(INTRO)
        with gr.Tabs():
            # ------------------------------------------------------------------------------------- Explore
            with gr.Tab("Explore", id="explore") as explore_tab:
                with gr.Row():
                    explore_model = gr.Dropdown(
                        all_models, value=_first(all_models), label="Model", allow_custom_value=True, scale=4,
                        info=None if all_models else _NO_MODEL[None], elem_id="explore-model",
                    )
                    paint = gr.Checkbox(label="Paint the sphere by predicted class", value=False, scale=1,
                                        elem_id="explore-paint")
                    norm_factor = gr.Slider(
                        0.25, 4.0, value=1.0, step=0.05, scale=2, label="Softmax: ‖x‖ as a multiple of the test median",
                        info="softmax predicts argmax(W·x + b): its regions on the sphere move with the embedding's "
                        "length; normalised heads ignore it",
                    )
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.HTML(explore_poster(first_view[0]), elem_id="explore-poster", js_on_load=None)
                        explore_sphere = gr.Plot(first_view[0], show_label=False, elem_id="explore-sphere")
                        gr.Markdown(
                            "Dots: test images, coloured by their true class. Lines from the centre: the head's "
                            "**class centres** (every sub-centre for sub-center ArcFace; for softmax the directions "
                            "of W's rows). Everything else is the model's own prediction, computed from the head: "
                            "the paint is the class it predicts, solid black curves are its **decision "
                            "boundaries**, dashed curves the **margin bands** where the loss's ψ(θᵢ) = cos θⱼ "
                            "(legend: the formula). With more than 3 dimensions the view is a projection and no "
                            "boundary is drawn. Drag to rotate; click a class in the legend to hide it."
                        )
                    with gr.Column(scale=2):
                        explore_summary = gr.Markdown(first_view[1])
                        explore_confusion = gr.Plot(first_view[2], show_label=False, elem_id="explore-confusion")
                        explore_angles = gr.Plot(first_view[3], show_label=False, elem_id="explore-angles")
                with gr.Accordion("Checkpoint card", open=False):
                    explore_card = gr.JSON(first_view[4])

            # --------------------------------------------------------------------------------------- Train
            with gr.Tab("Train", id="train") as train_tab:
                with gr.Row():
                    with gr.Column(scale=1, min_width=320):
                        dataset = gr.Radio(
                            [(DATASET_TITLES[d], d) for d in ("mnist", "cifar10")] + [("Your images", IMAGE_FOLDER)],
                            value=start["dataset"], label="Dataset",
                            info="CIFAR-10 on a CPU: ~20 s an epoch (width 16). ArcFace needs s ≈ 16 there (the "
                            "sliders switch to m = 0.2, s = 16) and a margin warm-up; at 3-D, cosine heads trained "
                            "from scratch stall (use Softmax for a 3-D CIFAR-10 sphere, see docs/loss_study.md)",
                        )
                        images_zip = gr.File(
                            label="Your images: a .zip with one folder of images per class (or train/ and test/ "
                            "folders of them); 20% of each class is held out to test on",
                            file_types=[".zip"], type="filepath", visible=False, elem_id="train-zip",
                        )
                        loss = gr.Dropdown(loss_choices, value=start["loss"], label="Loss")
                        margin = gr.Slider(  # 0..6 covers every loss; loss_controls narrows it to the chosen one's
                            0.0, 6.0, value=start["margin"], step=0.01, label="Margin m",
                            info=LOSSES[start["loss"]].margin_meaning,
                        )
                        scale = gr.Slider(
                            1.0, 128.0, value=start["scale"], step=1.0, label="Scale s", info="logits are s·cos θ",
                        )
                        with gr.Row():
                            dim = gr.Number(start["dim"], label="Embedding dimension", precision=0)
                            epochs = gr.Number(start["epochs"], label="Epochs", precision=0)
                        with gr.Row():
                            lr = gr.Number(start["lr"], label="Peak learning rate (0 = 0.1 SGD / 0.003 Adam)")
                            warmup = gr.Number(
                                start["warmup_steps"], label="Margin warm-up steps (-1 = 1 epoch if dim ≤ 3)",
                                precision=0,
                            )
                        with gr.Accordion("More settings", open=False):
                            optimizer = gr.Radio(["sgd", "adam"], value=start["optimizer"], label="Optimizer")
                            batch_size = gr.Number(start["batch_size"], label="Batch size", precision=0)
                            seed = gr.Number(start["seed"], label="Seed", precision=0)
                            subset = gr.Number(start["train_subset"], label="Training images (0 = all)", precision=0)
                        with gr.Row():
                            train_button = gr.Button("Train", variant="primary")
                            stop_button = gr.Button("Stop", variant="stop")
                        stop_note = gr.Markdown()
                        with gr.Accordion("Side by side: train a second loss on the same data and seed", open=False):
                            loss_b = gr.Dropdown(loss_choices, value="softmax", label="Second loss")
                            margin_b = gr.Slider(0.0, 6.0, value=0.0, step=0.01, label="Margin m", interactive=False)
                            scale_b = gr.Slider(1.0, 128.0, value=1.0, step=1.0, label="Scale s", interactive=False)
                            compare_button = gr.Button("Train both and compare", variant="secondary")
                    with gr.Column(scale=2):
                        train_status = gr.HTML(
                            cb._progress_html(0, "Pick the settings and press Train."), elem_id="train-status",
                        )
                        train_sphere = gr.Plot(show_label=False, elem_id="train-sphere")
                        train_curves = gr.Plot(show_label=False, elem_id="train-curves")
                        train_files = gr.File(
                            label="Download the trained checkpoint (.safetensors weights + .json card)",
                            file_count="multiple", interactive=False, height=110,
                        )

            # ---------------------------------------------------------------------------------------- Draw
            with gr.Tab("Draw", id="draw") as draw_tab:
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        draw_model = gr.Dropdown(
                            mnist_models, value=_first(mnist_models), label="MNIST model", allow_custom_value=True,
                            info=None if mnist_models else _NO_MODEL["mnist"],
                        )
                        sketch = guard_sketchpad(gr.Sketchpad(
                            label="Draw a digit (pick the brush first)", canvas_size=(336, 336), fixed_canvas=True,
                            brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=14),
                            layers=False, type="numpy", height=420, elem_id="digit-pad",
                        ))
                        draw_button = gr.Button("Predict", variant="primary", elem_id="predict-button")
                        drawing = gr.State(None)  # the last drawing, for Predict and model changes
                        api_draw_button = gr.Button(visible=False)  # /predict_digit: the Sketchpad value from the API
                        gr.Markdown(
                            "The drawing is prepared the way MNIST was made: cropped to the ink, scaled to fit "
                            "20×20 keeping its shape, and centred by centre of mass in 28×28."
                        )
                    with gr.Column(scale=3):
                        draw_outputs = _prediction_panel("digit")

            # ------------------------------------------------------------------------------------ Classify
            with gr.Tab("Classify", id="classify") as classify_tab:
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        classify_model = gr.Dropdown(
                            cifar_models, value=_first(cifar_models), label="CIFAR-10 model", allow_custom_value=True,
                            info=None if cifar_models else _NO_MODEL["cifar10"],
                        )
                        upload = guard_image(gr.Image(  # image_mode=None: the file as uploaded, read by inputs
                            label="Any image (any size or mode)", type="filepath", image_mode=None,
                            sources=["upload", "clipboard"], height=300,
                        ))
                        classify_button = gr.Button("Classify", variant="primary")
                        examples = _examples()
                        if examples:
                            gr.Examples(examples, inputs=[upload], label="CIFAR-10 test images", cache_examples=False)
                        gr.Markdown(
                            f"CIFAR-10 classes: {CIFAR10_TEXT}. Anything else still lands somewhere on the sphere: "
                            "its angles to the centres tell how sure the model can be."
                        )
                    with gr.Column(scale=3):
                        classify_outputs = _prediction_panel("image")

            # --------------------------------------------------------------------------------------- Faces
            with gr.Tab("Faces", id="faces") as faces_tab:
                gr.Markdown(
                    "Two photos → the largest face in each is detected (dlib's HOG detector, its CNN detector when HOG "
                    "finds none), its 5 landmarks fitted and the face warped onto one 112×112 template — the same crop "
                    "the model was trained and tested on. The cosine of the two embeddings against a threshold set on "
                    "validation people (never trained on, never LFW) gives the verdict; LFW then says what it costs. "
                    "Ours first takes back how much each face looks like anyone: half the mean cosine with its "
                    "nearest training identities (a blurred or half-turned face is near many people)."
                )
                with gr.Row():
                    face_inputs = [
                        guard_image(gr.Image(
                            label=label, type="filepath", image_mode=None, sources=["upload", "webcam", "clipboard"],
                            height=280, elem_id=elem_id,
                        ))
                        for label, elem_id in (("First photo", "face-a"), ("Second photo", "face-b"))
                    ]
                verify_button = gr.Button("Same person?", variant="primary", elem_id="verify-button")
                boxed, crops = [], []
                with gr.Row():
                    for which in ("First", "Second"):
                        with gr.Column():
                            with gr.Row():
                                boxed.append(gr.Image(label=f"{which}: detected faces (green: used)",
                                                      interactive=False, height=240, scale=3))
                                crops.append(gr.Image(label="aligned 112×112", interactive=False, height=150,
                                                      scale=1, min_width=120))
                face_summary = gr.Markdown(elem_id="face-summary")
                with gr.Accordion("Result as JSON (the /verify_faces API)", open=False):
                    face_result = gr.JSON()
                with gr.Accordion("Gallery: enrol a few people, then identify a new photo among them", open=False):
                    gr.Markdown(
                        "Open-set: a photo is named only when its best similarity clears a threshold that grows with "
                        "the gallery, set on validation people so that a stranger is named at most ~1% of the time "
                        "whether 1 or 12 people are enrolled (with the one-to-one threshold, each enrolled face would "
                        "be another chance to name a stranger)."
                    )
                    gallery_state = gr.State({})
                    with gr.Row():
                        with gr.Column():
                            enrol_name = gr.Textbox(label="Name", max_lines=1)
                            enrol_photo = guard_image(gr.Image(
                                label="Their photo", type="filepath", image_mode=None, height=220,
                                sources=["upload", "webcam", "clipboard"],
                            ))
                            with gr.Row():
                                enrol_button = gr.Button("Enrol", variant="secondary")
                                clear_button = gr.Button("Clear gallery")
                            enrol_note = gr.Markdown()
                            enrolled = gr.Gallery(label="Enrolled (aligned crops)", columns=6, height=160)
                        with gr.Column():
                            probe = guard_image(gr.Image(
                                label="Who is this?", type="filepath", image_mode=None, height=220,
                                sources=["upload", "webcam", "clipboard"],
                            ))
                            identify_button = gr.Button("Identify", variant="primary")
                            identity = gr.Textbox(label="Identified as", interactive=False)
                            identify_summary = gr.Markdown()
                            probe_boxed = gr.Image(label="Detected faces", interactive=False, height=200)
                            identify_table = gr.Dataframe(label="Similarity to each enrolled face", interactive=False)

        # ------------------------------------------------------------------------------------------ wiring
        tabs = [explore_tab, train_tab, draw_tab, classify_tab, faces_tab]
        explore_io = dict(
            fn=explore, inputs=[explore_model, paint, norm_factor, session],
            outputs=[explore_sphere, explore_summary, explore_confusion, explore_angles, explore_card],
        )
        explore_model.change(**explore_io, api_name="explore", concurrency_limit=2)
        paint.change(**explore_io, api_visibility="private", concurrency_id="explore_paint")
        norm_factor.release(**explore_io, api_visibility="private", concurrency_id="explore_paint")

        for trigger in (loss, dataset):
            trigger.change(loss_controls, [loss, dataset], [margin, scale], api_visibility="private", queue=False)
        for trigger in (loss_b, dataset):
            trigger.change(loss_controls, [loss_b, dataset], [margin_b, scale_b], api_visibility="private", queue=False)
        settings = [dataset, loss, margin, scale, dim, epochs, lr, warmup, optimizer, batch_size, seed, subset]
        dataset.change(lambda d: gr.update(visible=d == IMAGE_FOLDER), dataset, images_zip, api_visibility="private",
                       queue=False)
        train_outputs = [train_status, train_sphere, train_curves, train_files, session]
        model_lists = [explore_model, draw_model, classify_model]
        refresh = dict(fn=refresh_models, inputs=[session, *model_lists], outputs=model_lists, api_visibility="private")
        train_kwargs = dict(concurrency_limit=1, concurrency_id="training", show_progress="minimal")
        announce = dict(fn=announce_training, inputs=None, outputs=train_status, api_visibility="private",
                        concurrency_limit=None)
        train_button.click(**announce).then(
            train, [*settings, images_zip, session], train_outputs, api_name="train", **train_kwargs
        ).then(**refresh)
        (
            compare_button.click(**announce)
            .then(
                compare_losses, [*settings, loss_b, margin_b, scale_b, images_zip, session], train_outputs,
                api_name="compare_losses", **train_kwargs,
            )
            .then(**refresh)
        )
        stop_button.click(stop_training, None, stop_note, api_name="stop_training", concurrency_limit=None)

        draw_outputs = list(draw_outputs)
        api_draw_button.click(
            predict_digit, [sketch, draw_model, session], draw_outputs, api_name="predict_digit", concurrency_limit=4,
        )
        sketch.change(
            predict_digit_live, [sketch, draw_model, session], [*draw_outputs, drawing], api_visibility="private",
            show_progress="hidden", trigger_mode="always_last", concurrency_limit=4,
        )
        for trigger in (draw_button.click, draw_model.change):
            trigger(
                predict_digit_again, [drawing, draw_model, session], draw_outputs, api_visibility="private",
                concurrency_limit=4,
            )
        classify_inputs = [upload, classify_model, session]
        classify_button.click(
            classify_image, classify_inputs, list(classify_outputs), api_name="classify_image", concurrency_limit=4,
        )
        upload.change(
            classify_image_live, classify_inputs, list(classify_outputs), api_visibility="private", concurrency_limit=4,
        )

        verify_button.click(
            verify_faces, face_inputs, [*boxed, *crops, face_summary, face_result], api_name="verify_faces",
            concurrency_limit=2,
        )
        enrol_button.click(
            enrol_face, [enrol_name, enrol_photo, gallery_state], [enrolled, enrol_note, gallery_state],
            api_name="enrol_face", concurrency_limit=2,
        )
        clear_button.click(clear_gallery, None, [enrolled, enrol_note, gallery_state], api_visibility="private")
        identify_button.click(
            identify_face, [probe, gallery_state], [probe_boxed, identify_summary, identify_table, identity],
            api_name="identify_face", concurrency_limit=2,
        )

        for tab in tabs:  # Plotly sizes a figure drawn in a hidden tab wrongly; a resize event fixes it on show
            tab.select(None, None, None, js=RESIZE_JS)

        loading = demo.load(**refresh)
        if first_view[0] is None:
            loading.then(**explore_io, api_visibility="private", concurrency_id="explore_load")
        draw_tab.select(warm_up, draw_model, None, api_visibility="private", show_progress="hidden")
        demo.load(loss_controls, loss, [margin, scale], api_visibility="private", queue=False)
        demo.unload(stop_on_leave)
    demo.queue(max_size=MAX_QUEUE)
    _poll_less_when_idle(demo)
    return demo


def _poll_less_when_idle(demo: gr.Blocks) -> None:
    """Gradio's queue looks for new events every 1 ms while it has none, and for progress every 10 ms: ~10% of a
    core on an idle server here (0.11 CPU-s a second), taken from a training beside it and from the visitors.
    Every 10 ms and 50 ms instead add at most that to the start of a call."""
    queue = getattr(demo, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):  # another Gradio's internals: leave them be
        return
    queue.sleep_when_free = max(queue.sleep_when_free, 0.01)
    queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, 0.05)


def launch_options(**overrides: Any) -> dict[str, Any]:
    """``demo.launch`` keywords: theme/css (Gradio 6 takes them at launch), host/port from the environment."""
    options: dict[str, Any] = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        theme=gr.themes.Soft(primary_hue="indigo", secondary_hue="amber"),
        css=CSS,
        head=plotly_preload() + _POSTER_SWAP,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        show_error=False,
    )
    options.update(overrides)
    return options


__all__ = ["build_demo", "launch_options"]
