"""What every tab shares on the page: errors as sentences, checked uploads, the progress bar, model pickers, and
the prediction panel of Draw and Classify."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr

from arcdemo.inputs import InputError, check_image_file
from arcdemo.ui.outputs import image_file
from arcdemo.ui.predict import predict
from arcdemo.ui.store import ModelNotFound, available_models
from arcdemo.ui.tweaks import plot_value, wait_for_drawing

log = logging.getLogger("arcdemo.ui")


class TrainingFailed(RuntimeError):
    """A training run that could not finish (diverged, data missing); the message says what to change."""


AppInputError = (InputError, ModelNotFound, TrainingFailed)  # the visitor can fix these: shown as a sentence


# ------------------------------------------------------------------------------------------------------- errors


def friendly_error(error: Exception) -> gr.Error:
    """A sentence for the visitor; the server log gets a traceback only for what nobody expected (once, here)."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, AppInputError):
        return gr.Error(str(error), title="Cannot do that", print_exception=False)
    log.exception("unexpected error in a callback")
    return gr.Error(f"Sorry, that failed unexpectedly ({type(error).__name__}: {error}). The server log has details.",
                    print_exception=False)


def friendly(fn: Callable) -> Callable:
    """Errors become a ``gr.Error`` with a sentence (the user's mistakes) or a short note (ours), never a traceback."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                raise friendly_error(error) from None

        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            raise friendly_error(error) from None

    return function


def session_id(request: gr.Request | None) -> str:
    return request.session_hash if request is not None else "anonymous"


# ------------------------------------------------------------------------------------------------------ uploads


def check_uploads(files: list[Any]) -> None:
    """Check uploaded files before a component decodes them: a non-image or a 400-MP bomb gets a sentence."""
    for file in files:
        path = getattr(file, "path", None)
        if path is not None:
            try:
                check_image_file(path)
            except InputError as error:
                raise gr.Error(str(error), title="Cannot use that image", print_exception=False) from None


def guard_image(component: gr.Image) -> gr.Image:
    """Wrap the instance's ``preprocess``: uploads are checked (see check_uploads) before Gradio decodes them.

    (An instance attribute rather than a subclass: Gradio writes a .pyi stub next to any module defining one.)
    """
    decode = component.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None:
            check_uploads([payload])
        return decode(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def guard_sketchpad(component: gr.Sketchpad) -> gr.Sketchpad:
    """Wrap the instance's ``preprocess``: API uploads are checked, and a browser drawing is waited for."""
    decode = component.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and getattr(payload, "id", None) is None:
            check_uploads([payload.background, payload.composite, *(payload.layers or [])])
        wait_for_drawing(component, payload)
        return decode(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


# ----------------------------------------------------------------------------------------------------- progress


def progress_html(fraction: float, text: str, state: str = "running") -> str:
    """A progress bar with a line of text (``state``: "running" or "done")."""
    percent = max(0.0, min(100.0, 100 * fraction))
    return (
        f'<div class="arc-progress arc-{state}"><div class="arc-bar"><div style="width:{percent:.1f}%"></div></div>'
        f"<span>{text}</span></div>"
    )


# ------------------------------------------------------------------------------------------------ model pickers


def model_choices(datasets: tuple[str, ...] | None, session: Mapping | None = None) -> list[tuple[str, str]]:
    """(label, key) of every model of ``datasets`` (None: all), shipped ones first, then this session's."""
    return [(entry.label, entry.key) for entry in available_models(session, datasets)]


def first_choice(choices: list[tuple[str, str]]) -> str | None:
    return choices[0][1] if choices else None


# ------------------------------------------------------------------------------------- Draw/Classify prediction


EMPTY_PREDICTION = (None, None, None, None, "")


def prediction_panel(kind: str) -> list:
    """Probabilities, sphere, angles, what the model sees and a summary line, for a "digit" or an "image"."""
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
    return [probabilities, sphere, angles, preview, summary]


def prediction_outputs(prediction: Any) -> tuple:
    """A ``predict.Prediction`` as the panel's values."""
    return (
        prediction.probabilities, plot_value(prediction.figure), prediction.angles, image_file(prediction.preview),
        prediction.summary,
    )


def quiet_note(note: str) -> tuple:
    """The panel emptied, with a note in place of the summary."""
    return (*EMPTY_PREDICTION[:-1], f"*{note}*")


def panel_prediction(source: Any, key: str, session: Any, no_model: str) -> tuple:
    """The panel's values for one drawing or image through the model ``key``; ``no_model`` when none is chosen."""
    if not key:
        raise InputError(no_model)
    return prediction_outputs(predict(source, key, session))


def noted(endpoint: Callable[..., tuple], *args: Any, warn: bool = False) -> tuple:
    """``endpoint(*args)``, its error shown as a quiet note in the panel (and as a warning toast with ``warn``)."""
    try:
        return endpoint(*args)
    except gr.Error as error:
        if warn:
            gr.Warning(error.message)
        return quiet_note(error.message)
