"""Reading a drawn sphere back: which class the paint shows in a given direction
(for the picture-is-the-model tests)."""

from __future__ import annotations

import numpy as np

from arcdemo.viz import CLASS_COLOURS


def fibonacci_sphere(count: int) -> np.ndarray:
    """``count`` nearly uniform unit directions (a fine, even grid of the sphere)."""
    index = np.arange(count) + 0.5
    polar = np.arccos(1 - 2 * index / count)
    azimuth = np.pi * (1 + 5**0.5) * index
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


def painted_classes(figure, directions: np.ndarray, chunk: int = 500) -> np.ndarray:  # noqa: ANN001 - go.Figure
    """The class whose colour the painted mesh shows where a ray from the centre along each direction meets it
    (-1 where no face is hit). Colours map back to classes through ``CLASS_COLOURS``."""
    mesh = next(trace for trace in figure.data if trace.type == "mesh3d")
    vertices = np.stack([mesh.x, mesh.y, mesh.z], axis=1).astype(float)
    faces = np.stack([mesh.i, mesh.j, mesh.k], axis=1)
    colour_class = {colour: index for index, colour in reversed(list(enumerate(CLASS_COLOURS)))}
    face_class = np.array([colour_class[colour] for colour in mesh.facecolor])
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("ij,ij->i", np.cross(a, b), c)
    solid = np.abs(volume) > 1e-12  # a face of no area covers no direction
    face_class, a, b, c = face_class[solid], a[solid], b[solid], c[solid]
    orientation = np.sign(volume[solid])[:, None]  # faces may wind either way
    sides = [np.cross(a, b) * orientation, np.cross(b, c) * orientation, np.cross(c, a) * orientation]
    found = np.full(len(directions), -1)
    for start in range(0, len(directions), chunk):
        rays = directions[start : start + chunk]
        inside = np.ones((len(rays), len(face_class)), dtype=bool)
        for side in sides:
            inside &= rays @ side.T >= -1e-9
        hit = inside.any(axis=1)
        found[start : start + chunk] = np.where(hit, face_class[np.argmax(inside, axis=1)], -1)
    return found
