"""dlib's ResNet face descriptor: the reference our face model is measured against, and the overlap check's judge."""

from __future__ import annotations

import numpy as np

from arcdemo.faces.align import AlignedFace, fit_shape
from arcdemo.faces.dlib_models import locked, model


class ReferenceModel:
    """dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``), the reference to beat.

    It reports 99.38% on LFW with its own same-person threshold of 0.6 (euclidean
    distance between raw descriptors).  :meth:`descriptor` returns that raw
    128-D vector; :meth:`embed` the L2-normalised one for cosine scoring.

    It does **not** use our 112x112 crop: the network was trained on dlib's own
    150x150 chips (``dlib.get_face_chip``, 0.25 padding, dlib's 5-point
    alignment), and feeding it another geometry would measure our alignment
    rather than the reference model.  So it is given the full image and the
    fitted dlib shape, and builds its chip itself.  The network is loaded once
    per process, on first use.
    """

    name = "dlib ResNet v1 (reference)"
    dim = 128
    euclidean_threshold = 0.6

    def __init__(self, num_jitters: int = 0):
        self.num_jitters = int(num_jitters)

    @staticmethod
    def _shape_for(aligned: AlignedFace):
        shape = aligned._shape
        if shape is None:
            shape = fit_shape(aligned.image, aligned.box)
        return shape

    def descriptor(self, aligned: AlignedFace) -> np.ndarray:
        """Raw 128-D dlib descriptor (float64; euclidean distance < 0.6 means same person)."""
        shape = self._shape_for(aligned)
        with locked("resnet"):
            vec = model("resnet").compute_face_descriptor(aligned.image, shape, self.num_jitters)
        return np.asarray(vec, dtype=np.float64)

    def embed(self, aligned: AlignedFace) -> np.ndarray:
        """L2-normalised 128-D descriptor (float32), for cosine similarity."""
        v = self.descriptor(aligned)
        return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)
