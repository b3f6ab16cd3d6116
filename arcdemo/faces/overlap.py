"""Which training identities are LFW people: dlib's reference descriptors of each training identity against LFW's.

A test set is only a test set if its people were never trained on. CelebA's identities were built to be disjoint
from LFW's, but no name list comes with it, and FIW holds public families. So every training identity is compared
with all 4,281 LFW people through the reference model (trained on other data).

dlib's unit descriptors all lie in a narrow cone (two strangers' cosine is ~0.84 on average), so they are centred
on LFW's mean descriptor first. An identity is the normalised mean of its centred faces (the first
:data:`~arcdemo.faces.data.REFERENCE_PER_IDENTITY` found). Against thousands of LFW people some stranger always
scores high, so a threshold alone would match every identity; the rule asks instead that the best LFW person
clear :data:`MATCH_COSINE` *and* beat the runner-up by :data:`MATCH_MARGIN`: one person stands out.

:func:`match_rates` measures the rule where the truth is known: a training identity's last face is added to the
LFW gallery as one more person, and the mean of its other faces is the probe. Found = the rule picks that face;
false match = the rule picks an LFW person instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arcdemo.evaluate import unit_rows
from arcdemo.faces.data import AlignedSource

#: The rule (chosen with :func:`match_rates` on FIW: see benchmarks/results/lfw_overlap.json).
MATCH_COSINE = 0.40
MATCH_MARGIN = 0.08


def centre_of(gallery: AlignedSource) -> np.ndarray:
    """The mean unit descriptor of the gallery's faces: what every descriptor is centred on."""
    reference = gallery.reference.numpy()
    rows = ~np.isnan(reference).any(1) & gallery.found
    return reference[rows].mean(0)


def centred_faces(aligned: AlignedSource, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(identity name per face, unit centred descriptor per face) over the faces that hold a descriptor."""
    reference = aligned.reference.numpy()
    rows = np.flatnonzero(~np.isnan(reference).any(1) & aligned.found)
    return np.array(aligned.identities)[rows], unit_rows(reference[rows] - centre)


def identity_means(names: np.ndarray, faces: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(sorted identity names, unit mean of each identity's faces)."""
    order = sorted(set(names.tolist()))
    index = {n: i for i, n in enumerate(order)}
    sums = np.zeros((len(order), faces.shape[1]))
    np.add.at(sums, [index[n] for n in names], faces)
    return order, unit_rows(sums)


def best_two(probes: np.ndarray, gallery: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each probe: the index of its most similar gallery entry, and the (best, runner-up) cosines."""
    best = np.empty(len(probes), dtype=np.int64)
    scores = np.empty((len(probes), 2))
    for start in range(0, len(probes), chunk):
        block = probes[start:start + chunk] @ gallery.T
        best[start:start + chunk] = block.argmax(1)
        scores[start:start + chunk] = -np.sort(-block, axis=1)[:, :2]
    return best, scores


def is_match(scores: np.ndarray, threshold: float = MATCH_COSINE, margin: float = MATCH_MARGIN) -> np.ndarray:
    """The rule on (best, runner-up) cosines: the best clears ``threshold`` and beats the runner-up by ``margin``."""
    return (scores[:, 0] >= threshold) & (scores[:, 0] - scores[:, 1] >= margin)


def match_rates(source: AlignedSource, lfw: AlignedSource, rules: Sequence[tuple[float, float]]) -> dict:
    """The rule's two errors, measured on the source's identities with ≥ 3 faces (see the module's docstring)."""
    centre = centre_of(lfw)
    names, faces = centred_faces(source, centre)
    _, lfw_means = identity_means(*centred_faces(lfw, centre))
    groups: dict[str, list[int]] = {}
    for row, name in enumerate(names):
        groups.setdefault(name, []).append(row)
    chosen = [rows for rows in groups.values() if len(rows) >= 3]
    probes = unit_rows(np.stack([faces[rows[:-1]].sum(0) for rows in chosen]))
    own = np.einsum("ij,ij->i", probes, faces[[rows[-1] for rows in chosen]])
    _, lfw_scores = best_two(probes, lfw_means)
    rates = []
    for threshold, margin in rules:
        found = (own >= threshold) & (own - lfw_scores[:, 0] >= margin)
        # an LFW person wins when it beats both the own face and the next LFW person by the margin
        runner_up = np.maximum(lfw_scores[:, 1], own)
        wrong = (lfw_scores[:, 0] >= threshold) & (lfw_scores[:, 0] - runner_up >= margin)
        rates.append({"cosine": threshold, "margin": margin, "own_identity_found": float(found.mean()),
                      "lfw_person_matched_instead": float(wrong.mean())})
    return {"identities": len(chosen), "rates": rates}


def lfw_overlap(source: AlignedSource, lfw: AlignedSource, threshold: float = MATCH_COSINE,
                margin: float = MATCH_MARGIN) -> dict[str, tuple[str, float, float]]:
    """Training identity → (the LFW person it matches, cosine, margin over the runner-up), for every match."""
    centre = centre_of(lfw)
    train_names, train_means = identity_means(*centred_faces(source, centre))
    lfw_names, lfw_means = identity_means(*centred_faces(lfw, centre))
    best, scores = best_two(train_means, lfw_means)
    return {train_names[k]: (lfw_names[best[k]], round(float(scores[k, 0]), 4),
                             round(float(scores[k, 0] - scores[k, 1]), 4))
            for k in np.flatnonzero(is_match(scores, threshold, margin))}
