"""Can ORL's 40 people live on S²? A 3-D ArcFace head on the frozen shipped face embedding, measured before one is
shipped for Explore.

    python benchmarks/orl_sphere_head.py        # ~1 min after ORL is aligned (cached), 2 CPU cores

The shipped face model's 128-D embedding of ORL (40 people × 10 photos, aligned as everywhere else) is frozen; a neck
maps it to 3-D (linear 128→3, or 128→64→ReLU→3) and an ArcFace head (m = 0.3 warmed up over 100 steps, s = 16)
over the 40 people is trained on photos 1-7 of each person with AdamW (full batch, 300 steps, lr 0.05); photos
8-10 (120) are held out. The nearest class mean in 128-D is the ceiling. Writes benchmarks/results/orl_sphere_head.json.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from arcdemo.checkpoints import hardware  # noqa: E402
from arcdemo.faces.data import align_images, faces_root  # noqa: E402
from arcdemo.faces.evaluate import embed_aligned  # noqa: E402
from arcdemo.faces.verify import FACE_MODEL, load_verifier  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "orl_sphere_head.json"
PEOPLE, TRAIN_PHOTOS = 40, 7
MARGIN, SCALE, WARMUP, STEPS, LR = 0.3, 16.0, 100, 300, 0.05
SEEDS = range(5)
NECKS = {"linear 128→3": 0, "128→64→ReLU→3": 64}
WEIGHT_DECAYS = (0.0, 0.1, 1.0)


def orl_embeddings() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(unit embeddings (400, 128), person (400,), photo number (400,)) by the shipped face model."""
    paths = sorted((faces_root() / "orl").glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    aligned = align_images(paths, "orl")
    vectors = embed_aligned(load_verifier("arcface").embedder, aligned)
    people = torch.tensor([int(p.parent.name[1:]) - 1 for p in paths])
    return torch.tensor(vectors), people, np.array([int(p.stem) for p in paths])


def train_head(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, hidden: int, weight_decay: float,
               seed: int) -> torch.Tensor:
    """Cosines (400, 40) of every photo with the trained centres, through a neck trained on ``train`` only."""
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(128, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3)] if hidden else [
        torch.nn.Linear(128, 3, bias=False)]
    neck, centres = torch.nn.Sequential(*layers), torch.nn.Parameter(torch.randn(PEOPLE, 3))
    optimiser = torch.optim.AdamW([*neck.parameters(), centres], lr=LR, weight_decay=weight_decay)
    own = F.one_hot(y[train], PEOPLE).bool()
    for step in range(STEPS):
        cosines = F.normalize(neck(x[train]), dim=1) @ F.normalize(centres, dim=1).T
        angles = torch.acos(cosines.clamp(-1 + 1e-6, 1 - 1e-6))
        logits = torch.where(own, torch.cos(angles + MARGIN * min(1.0, step / WARMUP)), cosines) * SCALE
        loss = F.cross_entropy(logits, y[train])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return F.normalize(neck(x), dim=1) @ F.normalize(centres, dim=1).T


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    x, y, photo = orl_embeddings()
    train, held_out = torch.tensor(photo <= TRAIN_PHOTOS), torch.tensor(photo > TRAIN_PHOTOS)
    means = F.normalize(torch.stack([x[train & (y == person)].mean(0) for person in range(PEOPLE)]), dim=1)
    ceiling = float(((x[held_out] @ means.T).argmax(1) == y[held_out]).float().mean())
    rows = []
    for neck, hidden in NECKS.items():
        for weight_decay in WEIGHT_DECAYS:
            runs = [train_head(x, y, train, hidden, weight_decay, seed) for seed in SEEDS]
            accuracy = {name: [float((c[mask].argmax(1) == y[mask]).float().mean()) for c in runs]
                        for name, mask in (("train", train), ("held_out", held_out))}
            rows.append({"neck": neck, "weight_decay": weight_decay, **{
                f"{name}_accuracy": {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
                for name, v in accuracy.items()}})
            print(f"{neck:>16}  wd {weight_decay:<4}  train {rows[-1]['train_accuracy']['mean']:.3f}  held-out "
                  f"{rows[-1]['held_out_accuracy']['mean']:.3f} ({rows[-1]['held_out_accuracy']['min']:.3f}-"
                  f"{rows[-1]['held_out_accuracy']['max']:.3f})")
    print(f"ceiling, nearest 128-D class mean: {ceiling:.3f}")
    OUT.write_text(json.dumps({
        "what": __doc__.split("\n\n")[0], "face_model": FACE_MODEL, "train_photos": int(train.sum()),
        "held_out_photos": int(held_out.sum()), "seeds": len(SEEDS),
        "head": {"margin": MARGIN, "scale": SCALE, "warmup_steps": WARMUP, "steps": STEPS, "lr": LR},
        "ceiling_nearest_mean_128d": ceiling, "rows": rows, "seconds": round(time.time() - start, 1),
        "hardware": hardware(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
