"""The picture is the model: what the sphere paints, outlines and bands is what the head itself computes.

Checked on a fine, even grid of the sphere for every loss (a head with random weights, so nothing lines up by
luck) and for every shipped 3-D checkpoint: the painted class is the head's prediction at ≥ 99.9% of directions,
points on drawn boundaries tie the head's two best classes, points on drawn bands satisfy the loss's own
ψ(θ_own) = max cos θ_rival to 1e-6, computed by the head's code (margin_logits), not by the drawing's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arcdemo import viz
from arcdemo.checkpoints import load_checkpoint
from arcdemo.heads import LOSSES, build_head
from tests.conftest import REPO
from tests.sphere_checks import fibonacci_sphere, painted_classes

NAMES = [f"class {index}" for index in range(10)]
GRID = fibonacci_sphere(20000)
SOFTMAX_NORM = 4.0  # any norm works: the rule is drawn at the norm it is asked for
SHIPPED_3D = sorted(
    path.with_suffix("").name for path in (REPO / "checkpoints").glob("*-3d.json")
)


def _random_head(loss: str, seed: int = 0):
    """A head for ``loss`` with random weights (and biases, class means), as training might leave it."""
    torch.manual_seed(seed)
    head = build_head(loss, 3, 10)
    with torch.no_grad():
        if hasattr(head, "weight"):
            head.weight.normal_()
        if getattr(head, "bias", None) is not None:
            head.bias.normal_(std=1.5)
        if hasattr(head, "class_means"):
            head.class_means.copy_(F.normalize(torch.randn(10, 3), dim=1))
    return head.eval()


def _heads():
    for loss in LOSSES:
        yield pytest.param(loss, lambda loss=loss: _random_head(loss), id=f"random-{loss}")
    for name in SHIPPED_3D:
        yield pytest.param(name, lambda name=name: load_checkpoint(REPO / "checkpoints" / name)[0].head, id=name)


def _predicted(head, directions: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head.logits(torch.from_numpy(directions * SOFTMAX_NORM).float()).argmax(dim=1).numpy()


@pytest.mark.parametrize(("name", "make"), list(_heads()))
def test_painted_sphere_is_the_heads_prediction(name, make):
    head = make()
    rule = head.decision_rule(norm=SOFTMAX_NORM)
    points = GRID[:300] * 0.5
    names = [f"class {index}" for index in range(rule.num_classes)]  # 10, or ORL's 40 people
    figure = viz.sphere_figure(points, np.arange(300) % rule.num_classes, rule, names, paint_surface=True)
    agreement = np.mean(painted_classes(figure, GRID) == _predicted(head, GRID))
    assert agreement >= 0.999, f"{name}: the paint shows the head's class at {100 * agreement:.3f}% of the grid"


@pytest.mark.parametrize(("name", "make"), list(_heads()))
def test_drawn_boundaries_are_where_the_heads_top_two_classes_tie(name, make):
    head = make()
    arcs = viz.boundary_arcs(head.decision_rule(norm=SOFTMAX_NORM))
    assert arcs, f"{name}: no boundary drawn"
    points = np.vstack(arcs)
    with torch.no_grad():
        logits = head.logits(torch.from_numpy(points * SOFTMAX_NORM))
    top_two = logits.topk(2, dim=1).values
    scale = logits.abs().amax(dim=1).clamp_min(1.0)
    assert ((top_two[:, 0] - top_two[:, 1]) / scale).max() < 1e-7, name


@pytest.mark.parametrize(("name", "make"), list(_heads()))
def test_drawn_margin_bands_satisfy_the_losses_own_equation(name, make):
    head = make()
    rule = head.decision_rule(norm=SOFTMAX_NORM)
    bands = viz.margin_bands(rule)
    loss = head.kind if hasattr(head, "kind") else ("softmax" if not head.normalise else None)
    if loss in ("softmax", "triplet", "supcon") or (head.m1, head.m2, head.m3) == (1.0, 0.0, 0.0):
        assert bands == [], f"{name}: a loss without a margin to centres gets no band"
        return
    assert bands, f"{name}: no band drawn for a margin loss"
    points = torch.from_numpy(np.vstack(bands))  # float64: the head computes in float64 when given it
    with torch.no_grad():
        cosines = head.cosines(points).double()
        own = cosines.argmax(dim=1)
        target = head.margin_logits(points, own).double().gather(1, own[:, None])[:, 0] / head.scale
        rival = cosines.scatter(1, own[:, None], -2.0).amax(dim=1)
    assert (target - rival).abs().max() < 1e-6, name


def test_every_loss_gets_its_own_band_formula():
    formulas = {loss: viz.figures._band_legend(_random_head(loss).decision_rule()) for loss in
                ("arcface", "cosface", "sphereface", "combined", "subcenter")}
    assert formulas["arcface"].startswith("margin band: θᵢ + 0.50 = θⱼ")
    assert formulas["cosface"] == "margin band: cos θᵢ − 0.35 = cos θⱼ"
    assert formulas["sphereface"] == "margin band: cos(1.5·θᵢ) = cos θⱼ"
    assert formulas["combined"] == "margin band: cos(θᵢ + 0.30) − 0.20 = cos θⱼ"
    assert "nearest sub-centre" in formulas["subcenter"]


def test_softmax_regions_move_with_the_norm_and_the_figure_says_so():
    head = _random_head("softmax")
    small, large = head.decision_rule(norm=0.5), head.decision_rule(norm=8.0)
    moved = np.mean(small.predict(GRID) != large.predict(GRID))
    assert moved > 0.01  # the bias matters less as ‖x‖ grows: cells that are no cones
    figure = viz.sphere_figure(GRID[:50], np.arange(50) % 10, large, NAMES)
    assert "‖x‖ = 8" in figure.layout.title.text
    assert any(trace.name == "decision boundary at ‖x‖ = 8" for trace in figure.data)


def test_sub_centres_are_drawn_as_what_they_are():
    rule = _random_head("subcenter").decision_rule()
    figure = viz.sphere_figure(GRID[:50], np.arange(50) % 10, rule, NAMES)
    names = [trace.name for trace in figure.data]
    assert sum(name.startswith("class 3 sub-centre") for name in names) == 3
