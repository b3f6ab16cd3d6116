"""Shipped test points: they round-trip, belong to one set of weights, and carry the head's own decision rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from arcdemo.checkpoints import load_checkpoint, save_checkpoint
from arcdemo.data import Split
from arcdemo.evaluate import drawn_points, evaluate_model
from arcdemo.margins import LOSSES
from arcdemo.model import EmbeddingModel, ModelSpec
from arcdemo.points import POINTS_SHOWN, load_points, points_path, save_points, shown_subset
from tests.conftest import REPO

APP_CHECKPOINTS = sorted(
    path.with_suffix("") for path in (REPO / "checkpoints").glob("*.json")
    if json.loads(path.read_text())["model"]["dataset"] in ("mnist", "cifar10")
)


def _model(loss: str, dim: int = 3, seed: int = 0) -> EmbeddingModel:
    torch.manual_seed(seed)
    spec = ModelSpec(dataset="mnist", backbone="mnist_cnn", width=8, embedding_dim=dim, in_channels=1,
                     image_size=28, class_names=tuple(str(i) for i in range(10)), loss=loss,
                     margin=LOSSES[loss].margin, scale=LOSSES[loss].scale)
    return EmbeddingModel(spec).eval()


def _split(count: int = 2500) -> Split:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8, generator=generator)
    return Split(images, torch.arange(count) % 10, tuple(str(i) for i in range(10)))


def _saved(tmp_path: Path, loss: str) -> tuple[Path, EmbeddingModel, Split]:
    model, split = _model(loss), _split()
    stem = tmp_path / f"mnist-{loss}"
    save_checkpoint(stem, model, {"config": {}, "metrics": {}})
    save_points(stem, drawn_points(model, split, evaluate_model(model, split)))
    return stem, model, split


def test_the_subset_is_fixed_sorted_and_capped():
    index = shown_subset(10_000)
    assert len(index) == POINTS_SHOWN and np.all(np.diff(index) > 0) and index[-1] < 10_000
    assert np.array_equal(index, shown_subset(10_000)) and len(shown_subset(300)) == 300


@pytest.mark.parametrize("loss", ["softmax", "arcface", "subcenter"])
def test_points_round_trip_with_the_heads_rule(tmp_path: Path, loss: str):
    stem, model, split = _saved(tmp_path, loss)
    evaluation = evaluate_model(model, split)
    fresh, stored = drawn_points(model, split, evaluation), load_points(stem)
    assert stored is not None and stored.samples == len(split)
    assert np.array_equal(stored.index, fresh.index) and np.array_equal(stored.labels, fresh.labels)
    np.testing.assert_allclose(stored.embeddings, fresh.embeddings, atol=1e-3)  # float16 on disk
    np.testing.assert_allclose(stored.intra_deg, evaluation.intra_deg, atol=1e-4)
    head_rule = model.head.decision_rule(norm=fresh.norm)
    rule = stored.decision_rule()
    assert rule.kind == head_rule.kind and rule.margins == head_rule.margins
    np.testing.assert_array_equal(rule.generators, head_rule.generators)
    np.testing.assert_allclose(rule.offsets, head_rule.offsets, rtol=1e-12, atol=0)
    if loss == "softmax":  # the regions move with the norm they are drawn at, exactly as the head's logits do
        assert stored.norm == pytest.approx(float(model.embed(split.images[torch.from_numpy(fresh.index)])
                                                  .norm(dim=1).median()))
        np.testing.assert_allclose(stored.decision_rule(2.0).offsets, model.head.decision_rule(norm=2 * fresh.norm)
                                   .offsets, rtol=1e-12, atol=0)
    else:
        assert stored.norm is None and stored.decision_rule(3.0) is stored.rule


def test_points_of_other_weights_or_broken_files_are_ignored(tmp_path: Path):
    stem, model, _ = _saved(tmp_path, "arcface")
    with torch.no_grad():
        model.head.weight.add_(0.01)
    save_checkpoint(stem, model, {"config": {}, "metrics": {}})  # retrained, points not rebuilt
    assert load_points(stem) is None
    points_path(stem).write_bytes(b"not a safetensors file")
    assert load_points(stem) is None
    points_path(stem).unlink()
    assert load_points(stem) is None


@pytest.mark.parametrize("stem", APP_CHECKPOINTS, ids=lambda p: p.name)
def test_every_app_checkpoint_ships_points_with_its_heads_rule(stem: Path):
    points = load_points(stem)
    assert points is not None, f"run `python -m arcdemo points {stem.name}`"
    model, card = load_checkpoint(stem)
    head_rule = model.head.decision_rule(norm=points.norm)
    np.testing.assert_array_equal(points.decision_rule().generators, head_rule.generators)
    np.testing.assert_allclose(points.decision_rule().offsets, head_rule.offsets, rtol=1e-12, atol=0)
    assert points.samples == card["metrics"]["samples"] and len(points.labels) == min(POINTS_SHOWN, points.samples)
    assert points_path(stem).stat().st_size < 2.5e6


def test_explore_and_draw_need_no_data_and_explore_no_torch(tmp_path: Path):
    """A fresh server with an empty data root draws a shipped model's Explore view from its points alone (without
    importing torch), and a drawing lands among the same 2,000 test points in Draw."""
    code = (
        "import sys, numpy as np; from arcdemo.ui.predict import predict; from arcdemo.ui.tabs.explore import explore; "
        "view = explore('mnist-softmax-3d', True, None, 2.0); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "names = [t.name for t in view.sphere.data]; assert 'decision boundary at ‖x‖ =' in str(names), names; "
        "print(view.sphere.layout.title.text); "
        "people = explore('orl-arcface-3d'); assert 'torch' not in sys.modules, 'torch imported'; "
        "print(people.sphere.layout.title.text); "
        "canvas = np.full((336, 336, 4), 255, np.uint8); canvas[56:280, 156:180, :3] = 0; "
        "drawn = predict({'background': None, 'layers': [], 'composite': canvas}, 'mnist-arcface-3d'); "
        "print(drawn.label, drawn.figure.to_dict()['layout']['title']['text'])"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"ARCDEMO_DATA_ROOT": str(empty), "ARCDEMO_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2,000 of 10,000 test embeddings" in result.stdout
    assert "1 mnist-arcface-3d: your input among 2,000 test images" in result.stdout
    assert "orl-arcface-3d: 120 of 120 test embeddings" in result.stdout  # ORL's 40 people, without ORL or faces
