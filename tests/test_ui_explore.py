"""The Explore tab: a model's test embeddings, boundaries and statistics."""

from __future__ import annotations

import pytest

from arcdemo.ui.tabs.explore import explore
from tests.helpers import TinyWorld


@pytest.mark.parametrize("paint", [False, True])
def test_explore_view(tiny_world: TinyWorld, paint: bool) -> None:
    view = explore("mnist-tiny-3d", paint)
    assert "Test accuracy" in view.summary and "mean angle to own class centre" in view.summary
    assert len(view.sphere.to_json()) < 2_000_000
    assert any(trace.name == "decision boundary" for trace in view.sphere.data)
    assert any(trace.type == "mesh3d" for trace in view.sphere.data) == paint
    assert view.confusion.data[0].type == "heatmap" and len(view.angles.data) == 2
    assert "confusion_matrix" not in view.card["metrics"] and view.card["model"]["embedding_dim"] == 3


def test_explore_untrained_high_dimensional_model(tiny_world: TinyWorld) -> None:
    view = explore("mnist-random-8d")
    assert "PCA" in view.sphere.layout.title.text and "8-D" in view.summary
