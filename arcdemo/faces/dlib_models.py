"""dlib and the model files of ``face-recognition-models``, loaded lazily once per process, each behind its lock.

dlib objects are not documented as safe for concurrent use and the app calls from several threads, so every model
is used under its own lock (:func:`locked`). Importing this module costs nothing; the first use of a model pays
its load (0.1-1 s).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any

_MODEL_FILES = {  # kind -> (face_recognition_models helper, file name)
    "five_point": ("pose_predictor_five_point_model_location", "shape_predictor_5_face_landmarks.dat"),
    "resnet": ("face_recognition_model_location", "dlib_face_recognition_resnet_model_v1.dat"),
    "cnn_detector": ("cnn_face_detector_model_location", "mmod_human_face_detector.dat"),
}

_models: dict[str, Any] = {}
_locks = {kind: threading.Lock() for kind in ("hog", *_MODEL_FILES)}
_loading = threading.Lock()


def dlib_module():
    """``import dlib``, deferred: the page and the digit tabs never pay for it."""
    import dlib

    return dlib


def model_path(kind: str) -> str:
    """Path of a model file shipped by ``face_recognition_models``.

    Its own location helpers import ``pkg_resources``, which recent setuptools no longer ships, so the file is
    also looked for beside the package without importing it.
    """
    helper, file_name = _MODEL_FILES[kind]
    try:
        import face_recognition_models

        path = getattr(face_recognition_models, helper)()
        if os.path.isfile(path):
            return path
    except Exception:  # ImportError of pkg_resources, or anything else: look beside the package
        pass
    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(location, "models", file_name)
        if os.path.isfile(path):
            return path
    raise RuntimeError(f"dlib model file {file_name!r} not found: install the 'face-recognition-models' package")


def _factory(kind: str) -> Callable[[], Any]:
    dlib = dlib_module()
    return {
        "hog": dlib.get_frontal_face_detector,
        "five_point": lambda: dlib.shape_predictor(model_path("five_point")),
        "resnet": lambda: dlib.face_recognition_model_v1(model_path("resnet")),
        "cnn_detector": lambda: dlib.cnn_face_detection_model_v1(model_path("cnn_detector")),
    }[kind]


def model(kind: str) -> Any:
    """The loaded model: ``hog`` (frontal detector), ``five_point``, ``resnet`` or ``cnn_detector``."""
    loaded = _models.get(kind)
    if loaded is None:
        with _loading:
            loaded = _models.get(kind)
            if loaded is None:
                loaded = _models[kind] = _factory(kind)()
    return loaded


def locked(kind: str) -> threading.Lock:
    """The lock to hold while calling the model ``kind``."""
    return _locks[kind]


def preload(reference: bool = False) -> None:
    """Load the detector and the 5-point predictor now (and the ResNet if ``reference``), e.g. at app start-up.

    The CNN detector is not preloaded: it only runs when HOG finds no face.
    """
    model("hog")
    model("five_point")
    if reference:
        model("resnet")
