"""Relational distillation: pull the student's pairwise cosines toward a reference model's.

A teacher's embedding space cannot be copied into ours directly (another dimension, another basis, another
crop), but the angles between faces can: within a batch, every pair's cosine under our embedding is pulled toward
the same pair's cosine under the teacher (relational knowledge distillation, Park et al. 2019, on cosines). The
margin loss stays the main loss; this one only adds what the teacher knows about how alike two people look.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def centred(teacher: torch.Tensor) -> torch.Tensor:
    """Teacher vectors less their mean over the rows that have one, at unit length; NaN rows stay NaN.

    dlib's raw descriptors sit in a narrow cone (different people ~0.84 apart in cosine, the same person ~0.95);
    centred, different people average 0 and the same person ~0.66, the range an ArcFace embedding uses, so the
    two sets of cosines can be compared as they are.
    """
    has = teacher.isfinite().all(dim=1)
    if not has.any():
        raise ValueError("no training sample has a teacher vector to distil from")
    out = torch.full_like(teacher, float("nan"))
    out[has] = F.normalize(teacher[has] - teacher[has].mean(dim=0), dim=1)
    return out


def relational_loss(embeddings: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the pairwise cosines of ``embeddings`` and of unit ``teacher`` vectors,
    over the distinct pairs of rows that have a teacher vector (0, with a gradient path, when fewer than two do)."""
    has = teacher.isfinite().all(dim=1)
    count = int(has.sum())
    if count < 2:
        return embeddings.sum() * 0.0
    student = F.normalize(embeddings[has].float(), dim=1)
    target = teacher[has].float()
    gap = student @ student.T - target @ target.T
    off_diagonal = ~torch.eye(count, dtype=torch.bool, device=gap.device)
    return gap[off_diagonal].pow(2).mean()
