"""Named training recipes: ``python -m arcdemo train --preset NAME`` rebuilds ``checkpoints/NAME``.

Each preset is a set of ``TrainConfig`` overrides; the card of the checkpoint it produced records the preset name,
so every shipped number traces back to one command.
"""

from __future__ import annotations

from dataclasses import replace

from arcdemo.train import TrainConfig

_MNIST_SPHERE = dict(dataset="mnist", dim=3, epochs=8, augment=True, seed=0)

PRESETS: dict[str, TrainConfig] = {
    **{
        f"mnist-{loss}-3d": TrainConfig(loss=loss, **_MNIST_SPHERE)
        for loss in ("softmax", "normface", "sphereface", "cosface", "arcface")
    },
    "mnist-arcface-128d": TrainConfig(dataset="mnist", loss="arcface", dim=128, epochs=10, augment=True, seed=0),
    "cifar10-arcface-3d": TrainConfig(dataset="cifar10", loss="arcface", dim=3, epochs=30, width=32, seed=0),
    "cifar10-arcface-512d": TrainConfig(dataset="cifar10", loss="arcface", dim=512, epochs=30, width=64, seed=0),
    "cifar10-softmax-512d": TrainConfig(dataset="cifar10", loss="softmax", dim=512, epochs=30, width=64, seed=0),
}


def preset(name: str, **overrides: object) -> TrainConfig:
    """The named recipe, optionally with some fields overridden (e.g. another seed)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
