"""The Draw tab: a drawing through an MNIST model, kept for Predict, quiet notes instead of errors."""

from __future__ import annotations

import math

import numpy as np

from arcdemo.ui.predict import draw_base, predict
from arcdemo.ui.store import load_model
from arcdemo.ui.tabs.draw import predict_digit_again, predict_digit_live
from tests.helpers import TinyWorld, drawn_one, sketch_value


def test_predict_digit_returns_probabilities_angles_and_figure(tiny_world: TinyWorld) -> None:
    prediction = predict(sketch_value(drawn_one()), "mnist-tiny-3d")
    assert math.isclose(sum(prediction.probabilities.values()), 1.0, rel_tol=1e-4)
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    assert [row[0] for row in prediction.angles] and len(prediction.angles) == 10
    angles = [row[1] for row in prediction.angles]
    assert angles == sorted(angles) and 0 <= angles[0] <= 180
    figure = prediction.figure.to_dict()
    assert figure["data"][-1]["type"] == "scatter3d" and figure["data"][-1]["marker"]["color"] == "gold"
    point = np.array([figure["data"][-1][axis][1] for axis in "xyz"])
    assert math.isclose(np.linalg.norm(point), 1.0, abs_tol=1e-3)
    assert len(prediction.figure) < 2_000_000
    assert prediction.preview.shape == (140, 140)
    assert prediction.label in prediction.summary


def test_predict_draws_2d_and_projected_8d_models(tiny_world: TinyWorld) -> None:
    flat = predict(drawn_one(), "mnist-random-2d").figure.to_dict()
    assert flat["data"][-1]["type"] == "scatter" and "z" not in flat["data"][-1]
    projected = predict(drawn_one(), "mnist-random-8d").figure.to_dict()
    assert projected["data"][-1]["type"] == "scatter3d"
    assert "PCA" in projected["layout"]["title"]["text"]


def test_the_fast_path_reuses_the_cached_figure(tiny_world: TinyWorld) -> None:
    predict(drawn_one(), "mnist-tiny-3d")
    base = load_model("mnist-tiny-3d").draw_base(draw_base)
    predict(drawn_one(), "mnist-tiny-3d")
    assert load_model("mnist-tiny-3d").draw_base(draw_base) is base


def test_live_drawing_is_kept_for_predict_and_empty_is_a_quiet_note(tiny_world: TinyWorld) -> None:
    *outputs, kept = predict_digit_live(sketch_value(None), "mnist-tiny-3d", {})
    assert kept is None and outputs[0] is None and "draw a digit" in outputs[-1]
    *outputs, kept = predict_digit_live(sketch_value(np.full((336, 336, 4), 255, np.uint8)), "mnist-tiny-3d", {})
    assert outputs[0] is None and "empty" in outputs[-1]  # a blank canvas: a note, not an error
    *outputs, kept = predict_digit_live(sketch_value(drawn_one()), "mnist-tiny-3d", {})
    assert kept is not None and set(outputs[0]) == {str(i) for i in range(10)}
    again = predict_digit_again(kept, "mnist-random-2d", {})  # Predict / another model: the kept drawing
    assert set(again[0]) == {str(i) for i in range(10)} and "with probability" in again[-1]
    assert "No checkpoint" in predict_digit_again(kept, "gone", {})[-1]
