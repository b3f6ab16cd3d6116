"""Test points shipped beside a checkpoint, so Explore and Draw need no dataset, no evaluation and (Explore) no torch.

``<stem>.points.safetensors`` holds what the two tabs draw of a checkpoint's test split: a fixed 2,000-image
subset's unit embeddings (float16) and labels, every test image's angle to its own and to the nearest other centre,
and the head's decision rule (``margins.DecisionRule``, at norm 1 for softmax) with the raw embedding norm its
regions are drawn at. It is tagged with the SHA-256 of the weights it came from and ignored when they differ.
``python -m arcdemo points`` writes it; the shipped-checkpoint tests recompute it from a fresh evaluation.
This module needs numpy and safetensors only: the page's first figure must not wait for torch to import.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from arcdemo.margins import DecisionRule

POINTS_SHOWN = 2000  # test images drawn on the sphere in Explore and behind a new point in Draw/Classify
SUFFIX = ".points.safetensors"
FORMAT = "arcdemo-test-points"


@dataclass(frozen=True)
class DrawnPoints:
    """What Explore and Draw show of a model's test split; computed from an evaluation or read from disk."""

    index: np.ndarray  # (n,) positions in the test split of the drawn subset (``shown_subset``)
    embeddings: np.ndarray  # (n, D) unit embeddings under the card's test-time views
    labels: np.ndarray  # (n,)
    intra_deg: np.ndarray  # (N,) every test image's angle to its own class centre
    inter_deg: np.ndarray  # (N,) ... and to the nearest other centre
    rule: DecisionRule  # what the head predicts on the sphere (softmax: at norm 1, see ``decision_rule``)
    norm: float | None = None  # linear heads: median raw single-view embedding norm of the subset

    @property
    def samples(self) -> int:
        return len(self.intra_deg)

    def decision_rule(self, norm_factor: float = 1.0) -> DecisionRule:
        """The head's rule; softmax's at ``norm_factor`` × the subset's median embedding norm."""
        if self.rule.kind != "linear":
            return self.rule
        return self.rule.at_norm((1.0 if self.norm is None else self.norm) * norm_factor)


def shown_subset(total: int, size: int = POINTS_SHOWN) -> np.ndarray:
    """The test images drawn: ``size`` of ``total`` at random (seed 0), in split order."""
    return np.sort(np.random.default_rng(0).permutation(total)[:size])


def points_path(stem: str | os.PathLike) -> Path:
    stem = Path(stem)
    return stem.with_name(stem.name + SUFFIX)


def weights_digest(stem: str | os.PathLike) -> str:
    """SHA-256 of a checkpoint's weights file: the points are valid for these weights only."""
    stem = Path(stem)
    return hashlib.sha256(stem.with_name(stem.name + ".safetensors").read_bytes()).hexdigest()


def save_points(stem: str | os.PathLike, points: DrawnPoints) -> Path:
    """Write ``<stem>.points.safetensors`` atomically, tagged with the digest of ``<stem>.safetensors``."""
    rule = points.rule
    arrays = {
        "index": np.asarray(points.index, dtype=np.int32),
        "embeddings": np.asarray(points.embeddings, dtype=np.float16),
        "labels": np.asarray(points.labels, dtype=np.int16),
        "intra_deg": np.asarray(points.intra_deg, dtype=np.float32),
        "inter_deg": np.asarray(points.inter_deg, dtype=np.float32),
        "rule_generators": rule.generators, "rule_offsets": rule.offsets, "rule_classes": rule.classes,
    }
    described = {"num_classes": rule.num_classes, "margins": rule.margins, "easy_margin": rule.easy_margin,
                 "norm": rule.norm, "kind": rule.kind}
    metadata = {"format": FORMAT, "weights_sha256": weights_digest(stem), "norm": json.dumps(points.norm),
                "rule": json.dumps(described)}
    target = points_path(stem)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        save_file({key: np.ascontiguousarray(value) for key, value in arrays.items()}, str(temporary), metadata)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def load_points(stem: str | os.PathLike) -> DrawnPoints | None:
    """The shipped points of ``stem``; None when there are none, they are unreadable or other weights made them."""
    target = points_path(stem)
    if not target.is_file():
        return None
    try:
        with safe_open(str(target), framework="np") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT or metadata.get("weights_sha256") != weights_digest(stem):
                return None
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
        described = json.loads(metadata["rule"])
        margins = described["margins"]
        rule = DecisionRule(arrays["rule_generators"], arrays["rule_offsets"], arrays["rule_classes"],
                            int(described["num_classes"]), None if margins is None else tuple(margins),
                            bool(described["easy_margin"]), described["norm"], described["kind"])
        norm = json.loads(metadata["norm"])
        return DrawnPoints(arrays["index"].astype(np.int64), arrays["embeddings"].astype(np.float32),
                          arrays["labels"].astype(np.int64), arrays["intra_deg"], arrays["inter_deg"], rule,
                          None if norm is None else float(norm))
    except (OSError, SafetensorError, ValueError, KeyError, TypeError):
        return None
