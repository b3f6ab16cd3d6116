"""Face operating points and the faces package's shape: calibration on validation identities, the open-set gallery
rule, the LFW overlap rule and exclusions, and an import graph without cycles. No datasets needed."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from arcdemo.data import Split
from arcdemo.evaluate import unit_rows
from arcdemo.faces import data as face_data
from arcdemo.faces.evaluate import calibrate, stranger_rates
from arcdemo.faces.overlap import is_match, lfw_overlap, match_rates
from arcdemo.faces.verify import Verifier, cohort_offsets, gallery_far, gallery_threshold

REPO = Path(__file__).resolve().parents[1]


def identities(count: int, per: int, dim: int = 32, noise: float = 1.0, seed: int = 0):
    """Unit embeddings of ``count`` people × ``per`` photos scattered around each person's own direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.repeat(centres, per, axis=0) + noise * rng.normal(size=(count * per, dim)) / np.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), np.repeat(np.arange(count), per)


@pytest.fixture(scope="module")
def calibration():
    return calibrate(*identities(400, 4), gallery_trials=4000)


def test_threshold_and_band_come_from_the_fit_half_and_hold_on_the_other(calibration):
    embeddings, labels = identities(400, 4)
    fit = labels % 2 == 0
    # recompute the fit half's pair scores by brute force: the threshold accepts 1% of its different-person pairs
    e, y = embeddings[fit], labels[fit]
    cos = e @ e.T
    i, j = np.triu_indices(len(y), 1)
    same, different = cos[i, j][y[i] == y[j]], cos[i, j][y[i] != y[j]]
    t = calibration["threshold"]
    assert calibration["target_far"] == 0.01
    assert np.mean(different > t) == pytest.approx(0.01, abs=0.002)
    assert calibration["fit_frr"] == pytest.approx(np.mean(same <= t), abs=0.02)
    low, high = calibration["uncertain_band"]
    assert high == t  # above the threshold is "same"; the band holds the scores between
    assert np.mean(same <= low) == pytest.approx(0.02, abs=0.01)  # the band's low edge: 2% of same-person pairs
    assert calibration["fit_identities"] == calibration["check_identities"] == 200
    # out of sample, the same threshold keeps its promise
    assert calibration["check_far"] == pytest.approx(0.01, abs=0.005)
    assert calibration["check_frr"] == pytest.approx(calibration["fit_frr"], abs=0.03)
    assert calibration["check_balanced_accuracy"] > 0.88


def test_far_threshold_is_the_lowest_that_keeps_its_rate():
    from arcdemo.faces.evaluate import far_threshold

    impostor = np.sort(np.random.default_rng(0).normal(size=1000))
    for far in (0.0, 0.001, 0.01, 0.2):
        t = far_threshold(impostor, far)
        assert np.mean(impostor > t) <= far
        assert np.mean(impostor > np.nextafter(t, -np.inf)) > far  # any lower threshold accepts too many


def test_gallery_threshold_rises_with_the_gallery_and_names_strangers_rarely(calibration):
    thresholds = [gallery_threshold(calibration, n) for n in (1, 10, 50, 500)]
    assert thresholds == sorted(thresholds) and thresholds[0] >= calibration["threshold"]
    assert gallery_far(1) == pytest.approx(0.01) and gallery_far(50) == pytest.approx(1 - 0.99 ** (1 / 50))
    gallery = calibration["gallery"]
    for size in ("1", "10", "50"):
        rates = gallery[size]
        assert rates["stranger_named"] <= 0.02, rates  # ~1% target, measured on identities it was not set on
        assert rates["enrolled_found"] > 0.2
    # the 1:1 threshold would name strangers far more often in a gallery of 50
    assert gallery["50"]["stranger_named_at_1to1_threshold"] > 3 * gallery["50"]["stranger_named"]


def test_stranger_rate_is_measured_not_assumed():
    embeddings, labels = identities(60, 3, noise=3.0)  # a hopeless model: everyone looks alike
    calibration = calibrate(embeddings, labels, gallery_trials=10)
    # a rule set on the impostor table still holds on strangers, because the table saw the same overlap
    rates = stranger_rates(embeddings, labels, calibration, sizes=(10,), trials=500)
    assert rates["10"]["stranger_named"] <= 0.06 and rates["10"]["enrolled_found"] < 0.5


def test_verifier_uses_the_gallery_rule(calibration):
    verifier = Verifier("arcface", None, calibration["threshold"], "test", tuple(calibration["uncertain_band"]),
                        gallery_quantiles=calibration["impostor_quantiles"])
    assert verifier.gallery_threshold(12) == pytest.approx(gallery_threshold(calibration, 12))
    assert verifier.gallery_threshold(12) > verifier.threshold
    bare = Verifier("arcface", None, 0.3, "old card")
    assert bare.gallery_threshold(12) == 0.3


# --- cohort scores ---------------------------------------------------------------------------------------------


def test_cohort_offsets_match_a_float64_loop():
    vectors, _ = identities(30, 2, seed=1)
    cohort, _ = identities(50, 1, seed=2)
    offsets = cohort_offsets(vectors, cohort, 7)
    for vector, offset in zip(vectors.astype(np.float64), offsets):
        cosines = sorted((float(np.dot(vector, centre)) for centre in cohort.astype(np.float64)), reverse=True)
        assert offset == pytest.approx(0.5 * sum(cosines[:7]) / 7, abs=1e-6)
    assert not cohort_offsets(vectors, None, 7).any() and not cohort_offsets(vectors, cohort, 0).any()
    with pytest.raises(ValueError, match="at least 51"):
        cohort_offsets(vectors, cohort, 51)


def looks_alike(count: int, per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces whose embeddings lean, each by its own amount, towards one direction every person shares (as blurred,
    small or half-turned faces do): two strongly leaning faces of different people score high."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    common = np.eye(32)[0]
    lean = rng.uniform(0, 1.5, size=(count * per, 1))
    points = np.repeat(centres, per, axis=0) + 0.8 * rng.normal(size=(count * per, 32)) / np.sqrt(32) + lean * common
    return unit_rows(points).astype(np.float32), np.repeat(np.arange(count), per)


def test_cohort_offsets_take_back_how_much_a_face_looks_like_everyone():
    embeddings, labels = looks_alike(300, 4, seed=0)
    training, _ = looks_alike(500, 1, seed=1)  # other people: the cohort, as a head's class centres would be
    offsets = cohort_offsets(embeddings, training, 20)
    plain = calibrate(embeddings, labels, gallery_trials=10)
    normalised = calibrate(embeddings, labels, offsets=offsets, gallery_trials=10)
    assert normalised["check_eer"] < 0.7 * plain["check_eer"], (normalised["check_eer"], plain["check_eer"])
    verifier = Verifier("arcface", None, normalised["threshold"], "test", cohort=training, cohort_size=20)
    a, b = embeddings[0], embeddings[5]
    assert verifier.score(a, b) == pytest.approx(float(a @ b) - offsets[0] - offsets[5], abs=1e-6)
    assert verifier.verdict(a, b, [1, 1])["similarity"] == pytest.approx(verifier.score(a, b))


# --- LFW overlap ------------------------------------------------------------------------------------------------


def aligned_source(names: list[str], vectors: np.ndarray, source: str = "celeba") -> face_data.AlignedSource:
    n = len(names)
    return face_data.AlignedSource(source, tuple(f"/x/{i}.jpg" for i in range(n)), tuple(names),
                                   torch.zeros(n, 3, 112, 112, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64),
                                   torch.tensor(vectors, dtype=torch.float32))


def test_overlap_matches_the_same_person_and_not_strangers():
    rng = np.random.default_rng(3)
    people = rng.normal(size=(60, 128))
    cone = 4.0 * np.ones(128) / np.sqrt(128)  # dlib's descriptors share one direction: centring must remove it

    def photos(person: int, count: int) -> np.ndarray:
        return people[person] + cone * np.sqrt(128) / 4 + 0.6 * rng.normal(size=(count, 128))

    # training: people 0-29, 3 photos each; LFW: another photo of people 0-9, and strangers 30-59
    train_rows = np.concatenate([photos(p, 3) for p in range(30)])
    train = aligned_source([f"CelebA-{p}" for p in range(30) for _ in range(3)], unit_rows(train_rows))
    lfw_rows = np.concatenate([photos(p, 1) for p in range(10)] + [photos(p, 2) for p in range(30, 60)])
    lfw_names = [f"Person_{p}" for p in range(10)] + [f"Stranger_{p}" for p in range(30, 60) for _ in range(2)]
    lfw = aligned_source(lfw_names, unit_rows(lfw_rows), source="lfw")
    matches = lfw_overlap(train, lfw)
    assert sorted(matches) == sorted(f"CelebA-{p}" for p in range(10))
    assert all(person == f"Person_{name.split('-')[1]}" for name, (person, _, _) in matches.items())
    assert all(margin >= 0.08 for _, _, margin in matches.values())
    # measured on people LFW does not hold (for the others an LFW photo of themselves rightly competes)
    unseen = aligned_source([f"CelebA-{p}" for p in range(10, 30) for _ in range(3)], unit_rows(train_rows[30:]))
    rates = match_rates(unseen, lfw, [(0.4, 0.08), (0.99, 0.0)])
    assert rates["identities"] == 20
    assert rates["rates"][0]["own_identity_found"] > 0.9 and rates["rates"][0]["lfw_person_matched_instead"] < 0.1
    assert rates["rates"][1]["own_identity_found"] == 0.0  # nothing clears 0.99


def test_the_rule_needs_one_person_to_stand_out():
    scores = np.array([[0.9, 0.5], [0.9, 0.85], [0.3, 0.0]])
    assert is_match(scores).tolist() == [True, False, False]


def test_excluded_identities_are_dropped_from_both_splits(tmp_path, monkeypatch):
    names = ["CelebA-3"] * 2 + ["CelebA-5"] * 2 + ["CelebA-30"] * 2 + ["CelebA-40"] * 2
    source = aligned_source(names, np.eye(8, 128))
    excluded = tmp_path / "lfw_excluded.json"
    excluded.write_text(json.dumps({"excluded": {"celeba": ["CelebA-5", "CelebA-40"]}}))
    monkeypatch.setattr(face_data, "EXCLUDED_FILE", excluded)
    drop = face_data.excluded_identities()["celeba"]
    assert face_data.source_split(source, "train", drop).class_names == ("CelebA-3",)
    assert face_data.source_split(source, "val", drop).class_names == ("CelebA-30",)
    assert face_data.source_split(source, "train").class_names == ("CelebA-3", "CelebA-5")


def test_the_committed_exclusion_list_states_its_rule_and_command():
    committed = json.loads(face_data.EXCLUDED_FILE.read_text())
    assert "runner-up" in committed["rule"] and committed["command"].startswith("python benchmarks/lfw_overlap.py")
    assert set(committed["excluded"]) == set(face_data.SOURCES)
    assert {s: len(v) for s, v in committed["excluded"].items()} == committed["counts"]


def test_concatenated_sources_keep_their_classes_apart():
    a = Split(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 1]), ("F0001_MID1", "F0001_MID2"))
    b = Split(torch.ones(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 0]), ("CelebA-4",))
    both = face_data.concatenate([a, b])
    assert both.labels.tolist() == [0, 1, 1, 2, 2] and both.class_names == ("F0001_MID1", "F0001_MID2", "CelebA-4")


# --- the package's shape ----------------------------------------------------------------------------------------


def imports_of(path: Path, known: set[str] = frozenset()) -> set[str]:
    """Every module a file imports, at the top or inside a function; ``from package import module`` counts as the
    module (in ``known``), not as the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= submodules or {node.module}
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_faces_is_a_package_without_import_cycles():
    package = REPO / "arcdemo"
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    assert {"arcdemo.faces.align", "arcdemo.faces.reference", "arcdemo.faces.data", "arcdemo.faces.evaluate",
            "arcdemo.faces.verify", "arcdemo.faces.overlap"} <= set(modules)
    assert not (package / "faces.py").exists() and not (package / "face_data.py").exists()
    graph = {name: {m for m in imports_of(path, set(modules)) if m in modules and m != name}
             for name, path in modules.items()}
    for name, path in modules.items():
        if name.startswith("arcdemo.faces"):
            assert not {m for m in imports_of(path) if m.split(".")[0] in ("gradio", "plotly")}, name
    assert not any(m.startswith("arcdemo.faces") for m in graph["arcdemo.data"])  # data never reaches up

    done, path = set(), []

    def visit(name: str) -> None:  # depth-first; meeting a module already on the path is a cycle
        assert name not in path, " → ".join(path[path.index(name):] + [name])
        if name in done:
            return
        path.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_one_image_loader_serves_uploads_and_faces():
    for module in ("align", "data", "evaluate", "verify", "reference"):
        source = (REPO / "arcdemo" / "faces" / f"{module}.py").read_text()
        assert "Image.open(" not in source and "def load_rgb" not in source, module
    assert "from arcdemo.inputs import load_rgb" in (REPO / "arcdemo" / "faces" / "align.py").read_text()
