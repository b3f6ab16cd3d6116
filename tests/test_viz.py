"""Geometry and figure checks for arcdemo.viz, on plain numpy inputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from arcdemo import viz
from arcdemo.margins import DecisionRule
from tests.sphere_checks import fibonacci_sphere, painted_classes

NAMES = [f"class {index}" for index in range(10)]
OCTAHEDRON = np.vstack([np.eye(3), -np.eye(3)])
CUBE = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=float)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _sorted_angles(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Angles from each point to every centre, nearest first."""
    return np.sort(np.arccos(np.clip(points @ _unit(centres).T, -1, 1)), axis=1)


def _clustered(dims: int, count: int = 20000, spread: float = 0.25, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dims))
    labels = rng.integers(0, 10, count)
    points = _unit(centres)[labels] + rng.normal(size=(count, dims)) * spread / np.sqrt(dims)
    return points, labels, centres


def _rule(centres: np.ndarray, margin: float = 0.0) -> DecisionRule:
    """An ArcFace-like cosine head with these centres (margin m2 in radians; 0: no band)."""
    return DecisionRule.from_centres(np.asarray(centres, dtype=float), margins=(1.0, margin, 0.0) if margin else None)


def _class_traces(figure, names=NAMES):
    return [trace for trace in figure.data if trace.name in names and trace.showlegend is not False]


# ------------------------------------------------------------------------------------------------------ geometry


def test_great_circle_arc_is_an_evenly_spaced_unit_arc():
    arc = viz.great_circle_arc(np.array([2.0, 0, 0]), np.array([0, 0, 3.0]), n=7)
    assert arc.shape == (7, 3)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(arc[[0, -1]], [[1, 0, 0], [0, 0, 1]], atol=1e-12)
    steps = np.arccos(np.clip(np.sum(arc[1:] * arc[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(steps, np.pi / 2 / 6, atol=1e-9)


def test_great_circle_arc_between_antipodes_still_reaches_the_end():
    arc = viz.great_circle_arc(np.array([0, 0, 1.0]), np.array([0, 0, -1.0]), n=5)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(arc[-1], [0, 0, -1], atol=1e-12)


def _assert_equidistant_boundaries(arcs: list[np.ndarray], centres: np.ndarray) -> None:
    for arc in arcs:
        np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 1.0, atol=1e-12)
        angles = _sorted_angles(arc, centres)
        np.testing.assert_allclose(angles[:, 0], angles[:, 1], atol=1e-6)


def test_octahedron_centres_have_the_cube_as_boundaries():
    arcs = viz.boundary_arcs(_rule(OCTAHEDRON))
    assert len(arcs) == 12
    _assert_equidistant_boundaries(arcs, OCTAHEDRON)
    for arc in arcs:
        np.testing.assert_allclose(np.abs(arc[[0, -1]]), 1 / np.sqrt(3), atol=1e-9)  # ends at cube vertices
        np.testing.assert_allclose(arc[0] @ arc[-1], 1 / 3, atol=1e-9)  # one cube edge, 70.5°


def test_cube_centres_merge_repeated_voronoi_vertices():
    arcs = viz.boundary_arcs(_rule(CUBE))  # 4 cocircular centres per face: qhull splits each face in two
    assert len(arcs) == 12
    _assert_equidistant_boundaries(arcs, CUBE)
    for arc in arcs:
        np.testing.assert_allclose(arc[0] @ arc[-1], 0.0, atol=1e-7)  # octahedron edges are quarter circles


def test_random_centres_have_3c_minus_6_boundaries():
    centres = np.random.default_rng(3).normal(size=(10, 3))
    arcs = viz.boundary_arcs(_rule(centres))
    assert len(arcs) == 3 * 10 - 6
    _assert_equidistant_boundaries(arcs, centres)


@pytest.mark.parametrize(
    ("centres", "arc_count"),
    [
        (OCTAHEDRON[:2], 1),  # two classes: the bisecting great circle, closed
        (OCTAHEDRON[[0, 1, 3]], 3),
        (np.array([[1.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]]), 1),  # copies never win: two classes
        (np.array([[np.cos(a), np.sin(a), 0] for a in (0.0, 1.0, 2.5, 4.0)]), 4),  # on a great circle
        (np.array([[np.cos(a), np.sin(a), 1.0] for a in (0.0, 1.0, 2.5, 4.0, 5.0)]), 5),  # on a small circle
    ],
)
def test_degenerate_centres_get_exact_lune_boundaries(centres, arc_count):
    arcs = viz.boundary_arcs(_rule(centres))
    assert len(arcs) == arc_count
    _assert_equidistant_boundaries(arcs, np.unique(_unit(centres), axis=0))
    for curve in viz.margin_bands(_rule(centres, 0.2)):
        angles = _sorted_angles(curve, np.unique(_unit(centres), axis=0))
        np.testing.assert_allclose(angles[:, 0] + 0.2, angles[:, 1], atol=1e-5)


@pytest.mark.parametrize(
    "centres", [np.zeros((0, 3)), np.array([[0, 0, 1.0]]), np.array([[1.0, 0, 0]] * 4), np.array([[0.0, 0, 0]] * 2)]
)
def test_too_few_distinct_centres_have_no_boundaries(centres):
    assert viz.boundary_arcs(_rule(centres)) == []
    assert viz.margin_bands(_rule(centres, 0.3)) == []


def test_margin_band_points_use_up_exactly_the_margin():
    centres = np.random.default_rng(0).normal(size=(10, 3))
    margin = 0.3
    curves = viz.margin_bands(_rule(centres, margin))
    assert len(curves) >= 24  # every boundary has a side with room for the margin
    for curve in curves:
        np.testing.assert_allclose(np.linalg.norm(curve, axis=1), 1.0, atol=1e-12)
        angles = _sorted_angles(curve, centres)
        np.testing.assert_allclose(angles[:, 0] + margin, angles[:, 1], atol=1e-5)


def test_margin_bands_cover_the_whole_margin_boundary():
    """Brute force: every sphere point where the two nearest angles differ by m lies near a drawn curve."""
    centres = _unit(np.random.default_rng(3).normal(size=(10, 3)))
    margin = 0.3
    fractions = np.linspace(0, 1, 10)[:, None, None]
    drawn = np.vstack([  # the polylines themselves, not just their vertices
        _unit((1 - fractions) * curve[:-1] + fractions * curve[1:]).reshape(-1, 3)
        for curve in viz.margin_bands(_rule(centres, margin))
    ])
    samples = _unit(np.random.default_rng(1).normal(size=(100000, 3)))
    cosines = samples @ centres.T
    nearest, runner_up = np.argsort(-cosines, axis=1)[:, :2].T

    def angle_gradient(centre_index: np.ndarray) -> np.ndarray:  # ∇θ on the sphere = −tangential(c) / sin θ
        centre = centres[centre_index]
        cosine = np.sum(samples * centre, axis=1, keepdims=True)
        return -(centre - cosine * samples) / np.sqrt(1 - cosine**2)

    excess = np.arccos(cosines[np.arange(len(samples)), runner_up]) - np.arccos(
        cosines[np.arange(len(samples)), nearest]
    ) - margin
    slope = np.linalg.norm(angle_gradient(runner_up) - angle_gradient(nearest), axis=1)
    on_boundary = samples[np.abs(excess) / slope < 0.002]  # within ~0.1° of the exact curve
    assert len(on_boundary) > 300
    gap_deg = np.degrees(np.arccos(np.clip(on_boundary @ drawn.T, -1, 1)).min(axis=1))
    assert gap_deg.max() < 0.3


def test_two_centres_margin_curves_close_on_themselves():
    curves = viz.margin_bands(_rule(OCTAHEDRON[:2], 0.5))
    assert len(curves) == 2
    for curve in curves:
        np.testing.assert_allclose(curve[0], curve[-1], atol=1e-9)


def test_no_margin_curves_without_room_for_the_margin():
    assert viz.margin_bands(_rule(OCTAHEDRON, 0.0)) == []
    assert viz.margin_bands(_rule(OCTAHEDRON, -0.1)) == []
    assert viz.margin_bands(_rule(OCTAHEDRON, np.pi / 2)) == []  # neighbours are exactly 90° apart


def test_project_to_3d_passes_3d_through_normalised():
    points, _, centres = _clustered(3, count=50)
    points3, centres3, explained = viz.project_to_3d(points, centres)
    np.testing.assert_allclose(points3, _unit(points), atol=1e-12)
    np.testing.assert_allclose(centres3, _unit(centres), atol=1e-12)
    assert explained.shape == (3,) and explained.sum() == pytest.approx(1.0)


def test_project_to_3d_keeps_angles_of_data_near_a_3d_subspace():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(128, 3)))
    centres = _unit(rng.normal(size=(10, 3))) @ basis.T
    labels = rng.integers(0, 10, 2000)
    points = centres[labels] + rng.normal(size=(2000, 3)) @ basis.T * 0.3
    points += rng.normal(size=points.shape) * 0.01  # a little energy outside the subspace
    points3, centres3, explained = viz.project_to_3d(points, centres)
    np.testing.assert_allclose(np.linalg.norm(points3, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(centres3, axis=1), 1.0, atol=1e-12)
    assert 0.95 < explained.sum() <= 1.0 and np.all(np.diff(explained) <= 0)
    nearest_before = np.argmax(_unit(points) @ _unit(centres).T, axis=1)
    nearest_after = np.argmax(points3 @ centres3.T, axis=1)
    assert np.mean(nearest_before == nearest_after) > 0.98
    angles_before = np.arccos(np.clip(_unit(points[:200]) @ _unit(points[:200]).T, -1, 1)).ravel()
    angles_after = np.arccos(np.clip(points3[:200] @ points3[:200].T, -1, 1)).ravel()
    assert np.corrcoef(angles_before, angles_after)[0, 1] > 0.99


def test_project_to_3d_rejects_2d():
    with pytest.raises(ValueError):
        viz.project_to_3d(np.ones((4, 2)), np.ones((2, 2)))


# ------------------------------------------------------------------------------------------------- sphere figure


def test_sphere_figure_3d_has_one_trace_per_class_and_a_stable_camera():
    points, labels, centres = _clustered(3, count=500)
    figure = viz.sphere_figure(points, labels, _rule(centres, 0.2), NAMES, title="epoch 1")
    class_traces = _class_traces(figure)
    assert [trace.name for trace in class_traces] == NAMES
    assert sum(len(trace.x) for trace in class_traces) == 500
    for index, trace in enumerate(class_traces):
        assert len(trace.x) == np.sum(labels == index)
        np.testing.assert_allclose(np.linalg.norm(np.stack([trace.x, trace.y, trace.z], 1), axis=1), 1, atol=1e-3)
    assert figure.layout.uirevision == "sphere"
    assert figure.layout.scene.aspectmode == "cube"
    for axis in (figure.layout.scene.xaxis, figure.layout.scene.yaxis, figure.layout.scene.zaxis):
        assert list(axis.range) == [-1.1, 1.1] and axis.visible is False
    names = [trace.name for trace in figure.data]
    assert "decision boundary" in names and any(name.startswith("margin band") for name in names)
    assert figure.layout.title.text == "epoch 1"
    labels_at = {a.text: (a.x, a.y, a.z) for a in figure.layout.scene.annotations}  # class names at the centres' tips
    assert list(labels_at) == NAMES
    np.testing.assert_allclose(list(labels_at.values()), _unit(centres), atol=1e-3)


def test_sphere_figure_without_margin_draws_no_band():
    points, labels, centres = _clustered(3, count=200)
    figure = viz.sphere_figure(points, labels, _rule(centres), NAMES)
    assert not any(trace.name.startswith("margin band") for trace in figure.data)


def test_sphere_figure_128d_says_it_is_a_projection_and_stays_small():
    points, labels, centres = _clustered(128)
    figure = viz.sphere_figure(
        points, labels, _rule(centres, 0.3), NAMES, highlight=points[0], highlight_label="your digit",
        paint_surface=True,
    )
    shown_percent = re.search(r"128-D seen through PCA \((\d+)% variance\)", figure.layout.title.text)
    assert shown_percent is not None and "none are drawn" in figure.layout.title.text
    assert not any(trace.type == "mesh3d" or trace.name.startswith(("decision boundary", "margin band"))
                   for trace in figure.data)  # a projection has no exact boundary to paint or draw
    explained_by_all = 100 * viz.project_to_3d(points[:5000], centres)[2].sum()  # the figure fits on its sample
    assert abs(int(shown_percent.group(1)) - explained_by_all) < 3
    assert [trace.name for trace in _class_traces(figure)] == NAMES
    assert sum(len(trace.x) for trace in _class_traces(figure)) <= 3000 + 10
    assert len(figure.to_json()) < 2_000_000
    star = next(trace for trace in figure.data if trace.name == "your digit")
    assert np.linalg.norm([star.x[0], star.y[0], star.z[0]]) == pytest.approx(1.0, abs=1e-3)


def test_subsampling_keeps_rare_classes_and_is_deterministic():
    points, labels, centres = _clustered(3, count=5000)
    labels[labels == 7] = 0
    labels[:2] = 7  # a class with only two samples
    first = viz.sphere_figure(points, labels, _rule(centres), NAMES, max_points=400, seed=5)
    counts = [len(trace.x) for trace in _class_traces(first)]
    assert counts[7] >= 1 and all(count > 0 for count in counts)
    assert 390 <= sum(counts) <= 410
    assert first.to_json() == viz.sphere_figure(points, labels, _rule(centres), NAMES, max_points=400, seed=5).to_json()


def test_painted_surface_is_the_nearest_centre_everywhere():
    points, labels, centres = _clustered(3, count=100)
    figure = viz.sphere_figure(points, labels, _rule(centres), NAMES, paint_surface=True)
    directions = fibonacci_sphere(20000)
    painted = painted_classes(figure, directions)
    nearest = np.argmax(directions @ _unit(centres).T, axis=1)
    assert np.mean(painted == nearest) >= 0.9999  # rounding the JSON to 1e-4 is all that may differ


def test_sphere_figure_2d_draws_the_unit_circle_with_bisectors():
    angles = np.radians([0.0, 90.0, 180.0])
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 3.0
    labels = np.array([0, 1, 2, 2])
    points = centres[labels] + 0.1
    names = ["a", "b", "c"]
    figure = viz.sphere_figure(points, labels, _rule(centres, 0.2), names, highlight=np.array([0.0, 2.0]))
    assert figure.layout.uirevision == "circle"
    assert [trace.name for trace in _class_traces(figure, names)] == names
    class_c = _class_traces(figure, names)[2]
    np.testing.assert_allclose(np.hypot(class_c.x, class_c.y), 1.0, atol=1e-3)
    boundary = next(trace for trace in figure.data if trace.name == "decision boundary")
    ray_ends = [(x, y) for x, y in zip(boundary.x, boundary.y) if x is not None and (x, y) != (0.0, 0.0)]
    ray_angles = sorted(np.degrees(np.arctan2(y, x)) % 360 for x, y in ray_ends)
    np.testing.assert_allclose(ray_angles, [45.0, 135.0, 270.0], atol=0.01)
    wedge = next(trace for trace in figure.data if trace.name.startswith("margin band"))
    assert wedge.fill == "toself"
    star = next(trace for trace in figure.data if trace.name == "highlight")
    assert (star.x[0], star.y[0]) == (0.0, 1.0)


def test_sphere_figure_survives_degenerate_centres():
    points, labels, _ = _clustered(3, count=100)
    labels = labels % 2
    two = viz.sphere_figure(points, labels, _rule(OCTAHEDRON[:2], 0.3), NAMES[:2])
    assert [trace.name for trace in _class_traces(two, NAMES[:2])] == NAMES[:2]
    duplicated = viz.sphere_figure(points, labels % 4, _rule(np.array([[1.0, 0, 0]] * 4), 0.3), NAMES[:4])
    assert "decision boundary" not in [trace.name for trace in duplicated.data]


def test_sphere_figure_rejects_mismatched_names():
    points, labels, centres = _clustered(3, count=10)
    with pytest.raises(ValueError):
        viz.sphere_figure(points, labels, _rule(centres), NAMES[:3])


# ------------------------------------------------------------------------------------------------ other figures


def test_curves_figure_with_empty_history_shows_a_note():
    figure = viz.curves_figure({})
    assert len(figure.data) == 0
    assert figure.layout.annotations[0].text == "no training steps yet"
    assert figure.layout.uirevision == "curves"


def test_curves_figure_with_one_point_uses_markers():
    figure = viz.curves_figure({"step": [1], "loss": [2.3], "train_accuracy": [0.1]})
    loss, accuracy = figure.data
    assert loss.mode == "lines+markers" and list(loss.y) == [2.3]
    assert accuracy.yaxis == "y2" and list(accuracy.y) == [0.1]
    assert figure.layout.yaxis2.tickformat == ".0%"


def test_curves_figure_pairs_test_accuracy_with_its_own_steps():
    history = {
        "step": [1, 2, 3, 4],
        "loss": [2.0, 1.5, 1.0, 0.8],
        "train_accuracy": [0.2, 0.5, 0.7],  # one behind during a live update
        "test_step": [2, 4],
        "test_accuracy": [0.4, 0.75],
    }
    loss, train, test = viz.curves_figure(history).data
    assert list(loss.x) == [1, 2, 3, 4] and loss.yaxis == "y"
    assert list(train.x) == [1, 2, 3]
    assert list(test.x) == [2, 4] and list(test.y) == [0.4, 0.75] and test.yaxis == "y2"


def test_curves_figure_gives_each_test_protocol_its_own_trace():
    history = {
        "step": [1, 2, 3], "loss": [2.0, 1.0, 0.5], "train_accuracy": [0.2, 0.6, 0.8],
        "test_step": [1, 2, 3, 3], "test_accuracy": [0.5, 0.7, 0.8, 0.82], "test_views": [1, 1, 1, 6],
    }
    _, _, single, augmented = viz.curves_figure(history).data
    assert single.name == "test accuracy (1 view: image only)" and list(single.y) == [0.5, 0.7, 0.8]
    assert augmented.name == "test accuracy (6 views: image, mirror + 1-px shifts)"
    assert list(augmented.x) == [3] and list(augmented.y) == [0.82] and augmented.mode == "lines+markers"


def test_confusion_figure_puts_true_on_y_and_reports_accuracy():
    matrix = np.array([[5, 1], [2, 12]])
    figure = viz.confusion_figure(matrix, ["cat", "dog"])
    heatmap = figure.data[0]
    np.testing.assert_array_equal(heatmap.z, matrix)
    assert list(heatmap.x) == ["cat", "dog"] and list(heatmap.y) == ["cat", "dog"]
    assert heatmap.texttemplate == "%{z}"
    assert figure.layout.yaxis.title.text == "true" and figure.layout.xaxis.title.text == "predicted"
    assert figure.layout.title.text == "accuracy 85.0% of 20 samples"
    assert viz.confusion_figure(np.zeros((2, 2)), ["cat", "dog"]).layout.title.text == "no samples"
    with pytest.raises(ValueError):
        viz.confusion_figure(matrix, ["cat"])


def test_angle_histogram_counts_every_angle_in_2_degree_bins():
    intra = np.array([0.0, 1.0, 3.0, 10.0])
    inter = np.array([90.0, 180.0])
    figure = viz.angle_histogram_figure(intra, inter)
    intra_bars, inter_bars = figure.data
    assert intra_bars.y.sum() == 4 and inter_bars.y.sum() == 2
    assert list(intra_bars.y[:2]) == [2, 1] and inter_bars.y[-1] == 1  # 180° lands in the last bin
    assert "mean 3.5°" in intra_bars.name and "mean 135.0°" in inter_bars.name
    assert list(figure.layout.xaxis.range) == [0, 180] and figure.layout.barmode == "overlay"
    empty = viz.angle_histogram_figure(np.array([]), np.array([]))
    assert all(bars.y.sum() == 0 for bars in empty.data)


def test_comparison_figure_puts_two_spheres_side_by_side():
    points, labels, centres = _clustered(3, count=300)
    left = viz.sphere_figure(points, labels, _rule(centres), NAMES, title="epoch 3")
    right = viz.sphere_figure(points[:, ::-1], labels, _rule(centres[:, ::-1], 0.2), NAMES)
    figure = viz.comparison_figure(left, right, "softmax", "ArcFace")
    assert len(figure.data) == len(left.data) + len(right.data)
    assert {trace.scene for trace in figure.data[: len(left.data)]} == {"scene"}
    assert {trace.scene for trace in figure.data[len(left.data) :]} == {"scene2"}
    assert [trace.name for trace in _class_traces(figure)] == NAMES  # the right view's duplicates are hidden
    assert figure.layout.uirevision == "comparison"
    assert figure.layout.scene.aspectmode == figure.layout.scene2.aspectmode == "cube"
    assert figure.layout.scene2.domain.x[0] > figure.layout.scene.domain.x[1]
    assert [annotation.text for annotation in figure.layout.annotations] == ["softmax<br><sup>epoch 3</sup>", "ArcFace"]
    assert figure.layout.scene.annotations == left.layout.scene.annotations
    assert figure.layout.scene2.annotations == right.layout.scene.annotations
    json.loads(figure.to_json())


def test_comparison_figure_of_two_circles_uses_flat_axes():
    points, labels, centres = _clustered(2, count=100)
    circle = viz.sphere_figure(points, labels, _rule(centres), NAMES)
    figure = viz.comparison_figure(circle, circle, "a", "b")
    assert figure.layout.yaxis2.scaleanchor == "x2"
    assert {trace.xaxis for trace in figure.data[len(circle.data) :]} == {"x2"}
