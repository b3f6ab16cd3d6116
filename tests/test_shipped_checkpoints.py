"""Every shipped checkpoint loads, matches its card, and reproduces its card's test accuracy on the real test split."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from arcdemo.checkpoints import load_checkpoint
from arcdemo.data import FACE_DATASETS, load_split
from arcdemo.evaluate import card_tta, drawn_points, evaluate_model
from arcdemo.faces.verify import FACE_MODEL
from arcdemo.points import load_points
from arcdemo.presets import PRESETS
from tests.conftest import REPO, require_data

CHECKPOINTS = REPO / "checkpoints"
SHIPPED = sorted(path.with_suffix("") for path in CHECKPOINTS.glob("*.json"))
EXPECTED = {f"mnist-{loss}-3d" for loss in ("softmax", "normface", "sphereface", "cosface", "arcface")} | {
    "mnist-arcface-128d", FACE_MODEL, "cifar10-arcface-3d", "orl-arcface-3d",
}


def test_the_app_has_its_checkpoints():
    assert EXPECTED <= {path.name for path in SHIPPED}


def test_checkpoints_stay_small():
    sizes = {path.name: path.stat().st_size for path in CHECKPOINTS.glob("*.safetensors")}
    assert all(size <= 15e6 for size in sizes.values()), sizes
    assert sum(sizes.values()) <= 60e6


@pytest.mark.parametrize("stem", SHIPPED, ids=lambda p: p.name)
def test_checkpoint_reproduces_its_card(stem: Path):
    model, card = load_checkpoint(stem)
    config = card["config"]
    assert stem.name in PRESETS and PRESETS[card["preset"]] == PRESETS[stem.name], "each has its recipe, by its name"
    recipe = replace(PRESETS[stem.name], init_from="").resolved()  # a stage's starting point need not be here
    for key in ("dataset", "loss", "dim", "epochs", "seed", "margin", "scale", "lr", "image_size"):
        assert config[key] == getattr(recipe, key), key
    assert model.spec.embedding_dim == config["dim"] and model.spec.loss == config["loss"]
    if config["dataset"] in FACE_DATASETS:
        return check_face_card(model, card)
    require_data(*{"mnist": ("MNIST",), "cifar10": ("cifar10",), "orl": ("faces", "orl")}[config["dataset"]])
    split = load_split(config["dataset"], "test")
    evaluation = evaluate_model(model, split, **card_tta(config))
    assert evaluation.metrics["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=0.001)
    assert json.loads(stem.with_suffix(".json").read_text())["metrics"]["samples"] == evaluation.metrics["samples"]
    check_shipped_points(stem, drawn_points(model, split, evaluation))


def check_shipped_points(stem: Path, fresh) -> None:  # noqa: ANN001 - points.DrawnPoints
    """What Explore and Draw read from disk is what a fresh evaluation of these weights gives."""
    shipped = load_points(stem)
    assert shipped is not None, f"no points for these weights: run `python -m arcdemo points {stem.name}`"
    assert np.array_equal(shipped.index, fresh.index) and np.array_equal(shipped.labels, fresh.labels)
    np.testing.assert_allclose(shipped.embeddings, fresh.embeddings, atol=2e-3)  # float16 on disk
    np.testing.assert_allclose(shipped.intra_deg, fresh.intra_deg, atol=0.05)
    np.testing.assert_allclose(shipped.inter_deg, fresh.inter_deg, atol=0.05)
    assert (shipped.norm is None) == (fresh.norm is None)
    if fresh.norm is not None:
        assert shipped.norm == pytest.approx(fresh.norm, rel=1e-3)


def check_face_card(model, card: dict) -> None:
    """ORL EER as on the card; LFW fold 1 alone (its 600 pairs split in ten inside) within 3 pp of the card's
    10-fold accuracy and with a protocol threshold near the card's (the whole protocol takes minutes; folds spread
    ~1-2 pp); the operating threshold was calibrated on validation identities, and LFW's FAR there is the card's."""
    from arcdemo.faces.evaluate import evaluate_lfw, evaluate_orl

    require_data("faces", "orl")
    require_data("faces", "lfw", "pairs.txt")
    metrics = card["metrics"]
    calibration = metrics["calibration"]
    cohort_size = calibration.get("cohort_size", 0)
    assert evaluate_orl(model, cohort_size=cohort_size)["orl_eer"] == pytest.approx(metrics["orl_eer"], abs=0.001)
    fold = evaluate_lfw(model, folds=[1], threshold=calibration["threshold"], cohort_size=cohort_size)
    assert fold["lfw_pairs"] == 600
    assert fold["lfw_accuracy"] == pytest.approx(metrics["lfw_accuracy"], abs=0.03)
    assert metrics["lfw_protocol_threshold"] == pytest.approx(fold["lfw_protocol_threshold"], abs=0.1)
    assert fold["lfw_far_at_threshold"] == pytest.approx(metrics["lfw_far_at_threshold"], abs=0.05)
    assert calibration["dataset"] in FACE_DATASETS and calibration["fit_identities"] >= 100
