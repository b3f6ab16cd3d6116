"""The face spheres are the verdicts: on grids of pairs and galleries at controlled angles, b inside the drawn cap ⇔
the verifier's own ``verdict`` says "same person", on the ring ⇔ "uncertain", and the probe inside a person's cap
(deepest) ⇔ the Faces tab's ``identify`` names them; for a cohort-normalised score and for a plain cosine, with
thresholds inside and outside [-1, 1]. The figures draw the geometry's angles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from arcdemo.faces.sphere import gallery_view, orthonormal_frame, pair_view
from arcdemo.faces.verify import Verifier, cohort_offsets
from arcdemo.ui.tabs import faces
from arcdemo.viz.face_figures import gallery_sphere_figure, pair_sphere_figure

DIMS = 64
COHORT_SIZE = 20
NEAR = 1e-5  # float32 scores this close to a threshold may land either side of the exact angle: not counted
QUANTILES = {"far": np.logspace(-5, np.log10(0.5), 30).tolist(), "threshold": np.linspace(0.75, 0.25, 30).tolist()}


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _at_angle(a: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at ``angle`` (radians) from the unit ``a``, in a random direction."""
    away = rng.normal(size=a.shape)
    away = _unit(away - (away @ a) * a)
    return np.cos(angle) * a + np.sin(angle) * away


def _verifier(kind: str, threshold: float, band: tuple[float, float]) -> Verifier:
    if kind == "cosine":
        return Verifier("reference", None, threshold, "test", band, gallery_quantiles=QUANTILES)
    cohort = _unit(np.random.default_rng(7).normal(size=(300, DIMS))).astype(np.float32)
    return Verifier("arcface", None, threshold, "test", band, gallery_quantiles=QUANTILES, cohort=cohort,
                    cohort_size=COHORT_SIZE)


OPERATING_POINTS = [  # (threshold, band): a usual one, a band reaching past a (cosine > 1), every pair the same
    pytest.param(0.3, (0.2, 0.45), id="usual"),
    pytest.param(0.6, (0.4, 1.3), id="band-past-a"),
    pytest.param(0.95, (0.95, 0.95), id="empty-cap-with-offsets"),
    pytest.param(-1.6, (-1.8, -1.6), id="whole-sphere"),
]


@pytest.mark.parametrize("kind", ["cohort", "cosine"])
@pytest.mark.parametrize(("threshold", "band"), OPERATING_POINTS)
def test_b_inside_the_cap_is_the_verdict(kind: str, threshold: float, band: tuple[float, float]) -> None:
    verifier = _verifier(kind, threshold, band)
    rng = np.random.default_rng(0)
    decisions, counted, near = set(), 0, 0
    for angle in np.radians(np.concatenate([np.arange(0.0, 180.5, 1.5), [0.0, 180.0]])):
        for _ in range(8):
            a = _unit(rng.normal(size=DIMS))
            b = a.copy() if angle == 0 else -a if angle == np.pi else _at_angle(a, angle, rng)
            a, b = a.astype(np.float32), b.astype(np.float32)
            verdict, view = verifier.verdict(a, b, [1, 1]), verifier.pair_view(a, b)
            assert {key: verdict[key] for key in view.fields()} == view.fields()
            edges = [view.cosine_threshold, *view.cosine_band]
            if min(abs(view.cosine - edge) for edge in edges) < NEAR:
                near += 1
                continue
            counted += 1
            assert view.same_person == verdict["same_person"], (np.degrees(angle), verdict)
            assert view.decision == verdict["decision"], (np.degrees(angle), verdict)
            decisions.add(verdict["decision"])
    assert counted >= 960 and near <= 0.01 * counted
    expected = {"usual": {"same", "uncertain", "different"}, "band-past-a": {"uncertain", "different"}}
    if threshold == 0.95:
        assert decisions == ({"different"} if kind == "cohort" else {"same", "different"})
    elif threshold < -1:
        assert decisions == {"same"}
    else:
        assert decisions == expected["usual" if band[1] < 1 else "band-past-a"]


def test_clamped_thresholds_are_named_and_drawn_as_empty_or_whole() -> None:
    a, b = np.eye(DIMS)[0], np.eye(DIMS)[1]
    empty = pair_view(a, b, 0.9, offsets=(0.1, 0.05))
    assert empty.threshold_angle_deg == 0.0 and not empty.same_person
    assert "no angle is small enough" in empty.notes[0]
    whole = pair_view(a, -a, -1.2)
    assert whole.threshold_angle_deg == 180.0 and whole.same_person and "the whole sphere" in whole.notes[0]
    assert not [t for t in pair_sphere_figure(empty).data if t.type == "mesh3d"]  # nothing to fill


def _angle_deg(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(_unit(x) * _unit(y), axis=-1), -1.0, 1.0)))


@pytest.mark.parametrize("case", ["general", "b-is-a", "cohort-in-plane", "no-third"])
def test_the_pair_view_keeps_every_angle(case: str) -> None:
    rng = np.random.default_rng(1)
    a, b, c = _unit(rng.normal(size=(3, DIMS)))
    if case == "b-is-a":
        b = a.copy()
    if case == "cohort-in-plane":
        c = _unit(a + 2 * b)
    view = pair_view(a, b, 0.3, (0.2, 0.4), third=None if case == "no-third" else c, third_name="C: test")
    drawn = view.points
    assert np.allclose(np.linalg.norm(drawn, axis=1), 1.0) and np.allclose(drawn[0], [0, 0, 1])
    originals = [a, b] + ([] if case == "no-third" else [c])
    kept = drawn[: len(originals)]
    assert np.allclose(kept @ kept.T, np.stack(originals) @ np.stack(originals).T, atol=1e-12)  # every cosine
    assert view.angle_deg == pytest.approx(_angle_deg(a, b), abs=1e-9)
    frame = orthonormal_frame(originals, DIMS)
    assert np.allclose(frame @ frame.T, np.eye(3), atol=1e-12)


def _trace(figure, name: str):  # noqa: ANN001, ANN202 - plotly objects
    return next(trace for trace in figure.data if trace.meta == name)


def _xyz(trace) -> np.ndarray:  # noqa: ANN001
    return np.stack([trace.x, trace.y, trace.z], axis=1).astype(float)


def test_the_pair_figure_draws_the_views_angles() -> None:
    rng = np.random.default_rng(2)
    a, c = _unit(rng.normal(size=(2, DIMS)))
    b = _at_angle(a, np.radians(50.0), rng)
    view = pair_view(a, b, 0.3, (0.2, 0.45), (0.08, 0.11), c, "C: cohort")
    crop = np.zeros((112, 112, 3), np.uint8)
    figure = pair_sphere_figure(view, crops=(crop, crop), labels=("first", "second"))
    drawn_a = _xyz(_trace(figure, "first"))[1]
    drawn_b = _xyz(_trace(figure, "second"))[1]
    assert _angle_deg(drawn_a, drawn_b) == pytest.approx(view.angle_deg, abs=0.02)
    cap = [t for t in figure.data if t.type == "scatter3d" and t.meta and t.meta.startswith("same person")]
    assert len(cap) == 1 and np.allclose(_angle_deg(_xyz(cap[0]), drawn_a), view.threshold_angle_deg, atol=0.02)
    ring = [t for t in figure.data if t.type == "scatter3d" and t.meta and t.meta.startswith("uncertain")]
    edges = sorted(float(np.mean(_angle_deg(_xyz(t), drawn_a))) for t in ring)
    assert edges == pytest.approx(list(view.band_deg), abs=0.02)
    fill = next(t for t in figure.data if t.meta and t.meta.startswith("fill: same person"))
    assert _angle_deg(_xyz(fill), drawn_a).max() <= view.threshold_angle_deg + 0.02
    assert f"θ = {view.angle_deg:.1f}°" in [label.text for label in figure.layout.scene.annotations]
    assert len(figure.layout.images) == 2 and figure.layout.images[0].source.startswith("data:image/png;base64,")
    assert "cohort" in figure.layout.title.text and figure.layout.uirevision


# ------------------------------------------------------------------------------------------------- the gallery


def _identify(gallery: dict, probe: np.ndarray, model: Verifier, monkeypatch) -> faces.Identification:  # noqa: ANN001
    """The Faces tab's own identify, with the photo's detection and embedding replaced by ``probe``."""
    crop = np.zeros((112, 112, 3), np.uint8)
    monkeypatch.setattr(faces, "face_photo", lambda source, which: SimpleNamespace(note="1 face found", crop=crop))
    monkeypatch.setattr(faces, "RECENT_PHOTOS", SimpleNamespace(embedding=lambda m, photo: probe))
    return faces.identify(gallery, "probe.jpg", [model])


@pytest.mark.parametrize("kind", ["cohort", "cosine"])
def test_the_probe_inside_a_cap_is_who_the_gallery_names(kind: str, monkeypatch) -> None:  # noqa: ANN001
    verifier = _verifier(kind, 0.3, (0.2, 0.45))
    rng = np.random.default_rng(3)
    outcomes, counted = {"named": 0, "unknown": 0, "several caps": 0}, 0
    for size in (1, 2, 3, 5, 12):
        for trial in range(40):
            people = _unit(rng.normal(size=(size, DIMS)))
            near = people[trial % size]  # probes at controlled angles from one enrolled face, or from none
            if size > 1 and trial % 3 == 1:  # a look-alike enrolled 15° away: caps that overlap
                people[(trial + 1) % size] = _at_angle(near, np.radians(15.0), rng)
            angle = np.radians(rng.uniform(0, 90))
            probe = (_at_angle(near, angle, rng) if trial % 4 else _unit(rng.normal(size=DIMS))).astype(np.float32)
            names = [f"person {i}" for i in range(size)]
            gallery = {name: {"crop": np.zeros((112, 112, 3), np.uint8), verifier.model: vector.astype(np.float32)}
                       for name, vector in zip(names, people)}
            view = verifier.gallery_view(np.stack([gallery[n][verifier.model] for n in names]), probe, names)
            if np.min(np.abs(view.scores - view.threshold)) < NEAR:
                continue
            counted += 1
            found = _identify(gallery, probe, verifier, monkeypatch)
            assert found.name == (names[view.named] if view.named is not None else "unknown"), (size, trial)
            assert found.view().named == view.named
            if trial == 0:
                title = found.sphere().layout.title.text
                assert title.startswith("Judged by") and (found.name in title or "Unknown" in title)
            outcomes["named" if view.named is not None else "unknown"] += 1
            outcomes["several caps"] += int(view.holding.sum() > 1)
            assert view.threshold == pytest.approx(verifier.gallery_threshold(size))
    assert counted >= 195 and min(outcomes.values()) >= 10, outcomes


def test_the_gallery_view_keeps_the_probes_angles_and_the_best_twos_places() -> None:
    rng = np.random.default_rng(4)
    people = _unit(rng.normal(size=(6, DIMS)))
    probe = _unit(people[2] + 0.5 * rng.normal(size=DIMS) / np.sqrt(DIMS))
    offsets = rng.uniform(0.0, 0.1, size=6)
    view = gallery_view(probe, people, 0.3, offsets, 0.05)
    assert list(view.order[:1]) == [2] and view.exact.sum() == 2
    assert np.allclose(_angle_deg(view.points, np.array([0, 0, 1.0])), _angle_deg(people, probe), atol=1e-9)
    first, second = view.order[:2]
    assert _angle_deg(view.points[first], view.points[second]) == pytest.approx(
        _angle_deg(people[first], people[second]), abs=1e-9)
    assert np.allclose(view.cosine_thresholds, 0.3 + offsets + 0.05)
    assert "4 more: angle to the probe exact" in view.notes[0]


def test_the_gallery_figure_draws_each_cap_at_its_angle() -> None:
    rng = np.random.default_rng(5)
    people = _unit(rng.normal(size=(4, DIMS)))
    probe = _at_angle(people[1], np.radians(20.0), rng)
    view = gallery_view(probe, people, 0.5)
    names = ["Ann", "Ben", "Cal", "Dee"]
    crop = np.zeros((112, 112, 3), np.uint8)
    figure = gallery_sphere_figure(view, names, probe_crop=crop, crops=[crop] * 4)
    probe3 = _xyz(_trace(figure, "probe"))[1]
    for person, name in enumerate(names):
        centre = _xyz(_trace(figure, name))[1]
        assert _angle_deg(centre, probe3) == pytest.approx(view.angles_deg[person], abs=0.02)
        edge = _xyz(_trace(figure, f"{name}: cap {view.cap_deg[person]:.1f}°"))
        assert np.allclose(_angle_deg(edge, centre), view.cap_deg[person], atol=0.02)
    assert view.named == 1 and figure.layout.title.text.startswith("Ben: the probe is 20.0° away")
    assert len(figure.layout.images) == 3  # the probe and its two best
    stranger = gallery_view(_unit(rng.normal(size=DIMS)), people, 0.5)
    assert stranger.named is None
    assert gallery_sphere_figure(stranger, names).layout.title.text.startswith("Unknown")


def test_offsets_in_the_view_are_the_scores_own() -> None:
    verifier = _verifier("cohort", 0.3, (0.2, 0.45))
    a, b = _unit(np.random.default_rng(6).normal(size=(2, DIMS))).astype(np.float32)
    view = verifier.pair_view(a, b)
    offsets = cohort_offsets(np.stack([a, b]), verifier.cohort, COHORT_SIZE)
    assert view.cosine_threshold == pytest.approx(0.3 + offsets.sum(), abs=1e-6)
    assert view.cosine - view.cosine_threshold == pytest.approx(verifier.score(a, b) - 0.3, abs=1e-5)
    assert view.third.startswith("C: the mean of the 20 training identities")


def test_real_photos_verdicts_and_spheres_agree() -> None:
    """Two LFW photos of one person through every shipped face model: each verdict's angles are its sphere's."""
    from arcdemo.faces.evaluate import lfw_pairs
    from tests.conftest import DATA_ROOT, require_data

    require_data("faces", "lfw", "pairs.txt")
    first, second, _, _ = next(pair for pair in lfw_pairs(DATA_ROOT / "faces") if pair[2])
    comparison = faces.compare_faces(str(first), str(second))
    assert {verdict["model"] for verdict in comparison.verdicts} >= {"reference"}
    for index, verdict in enumerate(comparison.verdicts):
        assert verdict["same_person"] == (verdict["angle_deg"] < verdict["threshold_angle_deg"]), verdict
        inner, outer = verdict["uncertain_band_deg"]
        assert (verdict["decision"] == "uncertain") == (inner < verdict["angle_deg"] < outer), verdict
        figure = comparison.sphere(index)
        assert f"θ = {verdict['angle_deg']:.1f}°" in figure.layout.title.text
        assert len(figure.layout.images) == 2
