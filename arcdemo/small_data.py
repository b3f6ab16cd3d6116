"""Training defaults that follow the size of a small training set (a user's folder, ORL), in plain Python: the
Train tab fills its settings from them without importing torch."""

from __future__ import annotations

import math
from pathlib import Path

from arcdemo.catalog import IMAGE_SUFFIXES

STEP_TARGET = 400  # optimizer steps a small folder gets in total
# a neck on a frozen network is a probe: ORL on S², AdamW + decay 0.5 97%, SGD's defaults 88%
NECK_TRAINING = {"optimizer": "adam", "lr": 0.02, "weight_decay": 0.5}


def folder_defaults(data_dir: str, loss: str, frozen_features: bool = False) -> dict:
    """``small_data_defaults`` for an image folder of classes (80% of each class trains)."""
    images = [p for p in Path(data_dir).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    classes = {p.parent.name for p in images}
    return small_data_defaults(max(2, int(0.8 * len(images))), len(classes), loss, frozen_features)


def small_data_defaults(train_images: int, classes: int, loss: str, frozen_features: bool = False) -> dict:
    """Batch, epochs, margin warm-up, scale and dimension that follow the size of a small training set.

    ~400 optimizer steps at the largest power-of-two batch that still gives 8 a pass; the margin ramped in over the
    first quarter below 10,000 images; AdaCos' fixed scale √2·ln(C−1) (at least 8) for the angular and cosine
    margins; 64-D above 10 classes unless a frozen face network already separates them (a neck on it puts ORL's 40
    people on S² at 97%), and then AdamW with strong weight decay for that neck.
    """
    batch = max(8, min(128, 2 ** int(math.log2(max(8, train_images // 8)))))
    steps_per_epoch = max(1, train_images // batch)
    epochs = max(3, min(1000, math.ceil(STEP_TARGET / steps_per_epoch)))
    chosen = dict(batch_size=batch, epochs=epochs)
    if classes > 10 and not frozen_features:  # a 3-D sphere has no room for many classes: 40 ORL people 15% at 3-D
        chosen["dim"] = 64
    if train_images < 10000:
        chosen["margin_warmup_steps"] = (epochs * steps_per_epoch) // 4
    if loss in ("arcface", "cosface", "sphereface") and classes > 2:
        chosen["scale"] = max(8.0, round(math.sqrt(2) * math.log(classes - 1), 2))  # AdaCos' fixed scale, ≥ 8
    if frozen_features:
        chosen.update(NECK_TRAINING)
    return chosen
