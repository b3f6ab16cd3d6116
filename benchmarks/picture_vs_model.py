"""How far the sphere's picture was from the model before it was drawn from the head, and how far it is now.

    .venv/bin/python benchmarks/picture_vs_model.py

Before, every picture was the spherical Voronoi diagram of the unit class centres (softmax: W's rows normalised,
its bias and the embedding's norm ignored; sub-center ArcFace: each class's mean sub-centre) and every margin band
was θᵢ + m2 = θⱼ (m1 and m3 ignored). Now the paint, boundaries and bands come from ``head.decision_rule``.
On a 20,000-direction Fibonacci grid: the share of the sphere painted with a class the head does not predict
(the old picture's cells vs the new painted mesh, read back by ray casting), and for the combined margin the
largest |ψ(θ_own) − cos θ_rival| on the drawn bands, computed by the head's margin_logits. Heads: the shipped
``mnist-softmax-3d`` at its test median norm and at 3, and 1-epoch MNIST 3-D sub-center and combined models
(seed 0). Writes benchmarks/results/picture_vs_model.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo import viz  # noqa: E402
from arcdemo.checkpoints import hardware, load_checkpoint  # noqa: E402
from arcdemo.points import load_points  # noqa: E402
from arcdemo.train import TrainConfig, train  # noqa: E402
from tests.sphere_checks import fibonacci_sphere, painted_classes  # noqa: E402

GRID = fibonacci_sphere(20_000)
NAMES = [str(index) for index in range(10)]


def predicted(head, norm: float) -> np.ndarray:  # noqa: ANN001
    with torch.no_grad():
        return head.logits(torch.from_numpy(GRID * norm)).argmax(dim=1).numpy()


def old_cells(head) -> np.ndarray:  # noqa: ANN001
    """The old picture: nearest unit class centre (``head.centres()``: softmax's W rows, mean sub-centres)."""
    centres = torch.nn.functional.normalize(head.centres().detach().double(), dim=1).numpy()
    return np.argmax(GRID @ centres.T, axis=1)


def new_paint(head, norm: float) -> np.ndarray:  # noqa: ANN001
    figure = viz.sphere_figure(GRID[:200] * 0.5, np.arange(200) % 10, head.decision_rule(norm=norm), NAMES,
                               paint_surface=True)
    return painted_classes(figure, GRID)


def band_error(head, bands: list[np.ndarray]) -> float:  # noqa: ANN001
    """Largest |ψ(θ_own) − max cos θ_rival| over points on the drawn bands, by the head's own margin_logits."""
    points = torch.from_numpy(np.vstack(bands))
    with torch.no_grad():
        cosines = head.cosines(points).double()
        own = cosines.argmax(dim=1)
        target = head.margin_logits(points, own).double().gather(1, own[:, None])[:, 0] / head.scale
        rival = cosines.scatter(1, own[:, None], -2.0).amax(dim=1)
    return float((target - rival).abs().max())


def old_bands(head) -> list[np.ndarray]:  # noqa: ANN001
    """The old bands: θᵢ + m2 = θⱼ between neighbouring unit centres, whatever m1 and m3 were."""
    rule = head.decision_rule()
    m2 = head.effective_margins()[1]
    return viz.margin_bands(type(rule)(rule.generators, rule.offsets, rule.classes, rule.num_classes, (1.0, m2, 0.0)))


def trained(loss: str) -> torch.nn.Module:
    config = TrainConfig(dataset="mnist", loss=loss, dim=3, epochs=1, sample_every=0, seed=0)
    done = list(train(config))[-1]
    return done.model.eval()


def main() -> None:
    started = time.perf_counter()
    results: dict[str, dict] = {}
    softmax, _ = load_checkpoint(REPO / "checkpoints" / "mnist-softmax-3d")
    median = load_points(REPO / "checkpoints" / "mnist-softmax-3d").norm
    for name, norm in (("test median", median), ("3", 3.0)):
        truth = predicted(softmax.head, norm)
        results[f"mnist-softmax-3d at ‖x‖ = {name} ({norm:.2f})"] = {
            "old_mismatch": float(np.mean(old_cells(softmax.head) != truth)),
            "new_mismatch": float(np.mean(new_paint(softmax.head, norm) != truth)),
        }
    for loss in ("subcenter", "combined"):
        model = trained(loss)
        truth = predicted(model.head, 1.0)
        row = {"old_mismatch": float(np.mean(old_cells(model.head) != truth)),
               "new_mismatch": float(np.mean(new_paint(model.head, 1.0) != truth))}
        if loss == "combined":
            row["old_band_error"] = band_error(model.head, old_bands(model.head))
            row["new_band_error"] = band_error(model.head, viz.margin_bands(model.head.decision_rule()))
            row["margins_m1_m2_m3"] = list(model.head.effective_margins())
        results[f"MNIST 3-D {loss}, 1 epoch, seed 0"] = row
    for name, row in results.items():
        text = ", ".join(f"{key} {value:.4%}" if "mismatch" in key else f"{key} {value}" for key, value in row.items())
        print(f"{name}: {text}")
    out = {"grid_directions": len(GRID), "results": results, "hardware": hardware(),
           "wall_s": round(time.perf_counter() - started, 1), "command": "python benchmarks/picture_vs_model.py"}
    (REPO / "benchmarks" / "results" / "picture_vs_model.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
