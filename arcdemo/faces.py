"""Offline face detection, 5-point alignment and the dlib reference descriptor.

Every face the project touches -- FIW training crops, LFW evaluation images and
uploads in the app -- goes through :func:`align_face`, so the model always sees
the same geometry: the dlib 5-point landmarks mapped by a least-squares
similarity transform onto one fixed 112x112 template, :data:`TEMPLATE_112`.

Pipeline of :func:`align_face`:

1. :func:`load_rgb` -- EXIF orientation applied, any mode/size -> HxWx3 uint8.
2. :func:`detect_faces` -- dlib's HOG frontal detector on a copy whose long side
   is at most 800 px; boxes are mapped back to full resolution.  If nothing is
   found it retries with the detector upsampled (x2, and x4 for small images
   such as LFW 160 px / ORL 92x112), then on the image padded with a black
   border (for faces that fill the frame).  For inputs declared pre-cropped
   (``assume_cropped=True``, the FIW training crops) and only for those, the
   last resort is the face box that the detector returns on average on FIW
   crops, scaled to the frame.  Otherwise :class:`NoFaceError` is raised --
   never a silent centre crop.
3. :func:`fit_landmarks` -- dlib's 5-point shape predictor
   (``shape_predictor_5_face_landmarks.dat``), always on the full-resolution
   image.
4. :func:`similarity_transform` (Umeyama) from the landmarks to the template,
   then a bilinear warp (PIL, box-filtered first when shrinking a lot) to
   112x112; the area outside the photo is black, as in the FIW crops and in
   insightface's ``cv2.warpAffine`` crops.

The template (see :data:`TEMPLATE_112`) is the mean dlib layout measured on the
FIW crops, so FIW crops map to (almost) the identity.

dlib and the model files are loaded lazily, on first use, and cached for the
process; importing this module costs only numpy and Pillow.
"""

from __future__ import annotations

import io
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageDraw, ImageOps

__all__ = [
    "NoFaceError",
    "FaceBox",
    "AlignedFace",
    "TEMPLATE_112",
    "load_rgb",
    "detect_faces",
    "fit_landmarks",
    "similarity_transform",
    "align_face",
    "draw_boxes",
    "ReferenceModel",
    "lfw_pairs",
    "preload",
]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

# --------------------------------------------------------------------------------------
# Template
# --------------------------------------------------------------------------------------

#: dlib 5-point template in 112x112 crop pixel coordinates (integer = pixel centre,
#: the convention dlib uses), in dlib's point order:
#:
#: 0. outer corner of the eye on the image's right (the subject's left eye),
#: 1. inner corner of that eye,
#: 2. outer corner of the eye on the image's left (the subject's right eye),
#: 3. inner corner of that eye,
#: 4. base of the nose (subnasale).
#:
#: How it was chosen: dlib's HOG detector + 5-point predictor were run on 2,000
#: random FIW crops (seed 1; 1,959 detected without help) and the landmark
#: positions averaged after dropping the 5% worst-fitting shapes.  The mean was
#: made left/right symmetric about the crop's centre line x = 55.5 (the FIW mean
#: midline is x = 54.7, 0.8 px off), so a horizontal flip maps the template onto
#: itself.  Per-point spread on FIW is about 1.5-2.8 px (std).
#:
#: Consequence: FIW crops map to ~the identity (see the tests), which is the
#: "same geometry" property that matters for train/eval/upload consistency.
#: Note that FIW's own alignment is *tighter* than insightface's 112x112 ArcFace
#: template: eye centres here are at (34.0, 33.6) and (77.0, 33.6) -- 43 px
#: apart, 33.6 px from the top -- whereas insightface puts them at
#: (38.29, 51.70) and (73.53, 51.50), 35 px apart.  Putting the eye centres at
#: insightface's positions (a similarity that scales by 0.82 and moves the face
#: down 18 px; nose base would land at about (55.9, 78.0), consistently ~6 px
#: below insightface's nose *tip* at (56.03, 71.74)) would pad the top fifth of
#: every FIW training crop with black, so it was not done.
TEMPLATE_112: np.ndarray = np.array(
    [
        [85.57, 33.19],
        [68.46, 34.02],
        [25.43, 33.19],
        [42.54, 34.02],
        [55.50, 65.87],
    ],
    dtype=np.float64,
)
TEMPLATE_112.setflags(write=False)

#: Face box (left, top, right, bottom; fractions of width/height, right/bottom
#: exclusive) that dlib's HOG detector returns on average on the FIW crops.  It is
#: the last-resort box for ``assume_cropped=True`` inputs on which nothing is detected.
_CROPPED_FRAME_BOX = (2.68 / 112, 0.84 / 112, 108.03 / 112, 106.83 / 112)

_DETECT_MAX_SIDE = 800
_LOAD_MAX_SIDE = 1600  # JPEGs at least 2x this are decoded at reduced scale (see load_rgb)
_SMALL_IMAGE_SIDE = 400  # long side at or below which a x4 upsampled pass is also tried
_PAD_FRACTION = 0.4  # border added on each side for the padded detection pass


# --------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------


class NoFaceError(ValueError):
    """No face could be found in the image."""


@dataclass(frozen=True)
class FaceBox:
    """A face box in image pixels; ``right``/``bottom`` are exclusive (PIL convention).

    A box may extend past the image border (the detector and the landmark fit
    handle that); use :meth:`clipped` for drawing or cropping.
    """

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    def clipped(self, width: int, height: int) -> "FaceBox":
        return FaceBox(
            min(max(self.left, 0), width),
            min(max(self.top, 0), height),
            min(max(self.right, 0), width),
            min(max(self.bottom, 0), height),
        )

    def _to_dlib(self):
        dlib = _dlib()
        return dlib.rectangle(int(self.left), int(self.top), int(self.right) - 1, int(self.bottom) - 1)

    @staticmethod
    def _from_dlib(rect, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> "FaceBox":
        # dlib rectangles are inclusive; FaceBox is exclusive on the right/bottom.
        return FaceBox(
            int(round((rect.left() - dx) / scale)),
            int(round((rect.top() - dy) / scale)),
            int(round((rect.right() + 1 - dx) / scale)),
            int(round((rect.bottom() + 1 - dy) / scale)),
        )


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """Result of :func:`align_face`.

    ``crop`` is the aligned (size, size, 3) uint8 RGB face; ``box`` the face box
    used, ``landmarks`` the 5 dlib points in full-image coordinates, ``image`` the
    RGB image actually used (EXIF-corrected; JPEGs of 3200 px or more are decoded
    at 1/2..1/8 scale, see :func:`load_rgb`), ``faces_found`` how many faces the
    successful detection pass found (0 when the pre-cropped frame box was used),
    ``transform`` the (2, 3) similarity matrix image -> crop, and ``detection`` how
    the box was obtained: ``"hog"``, ``"hog_upsampled"``, ``"hog_padded"`` or
    ``"cropped_frame"`` (the ``assume_cropped`` fallback).  ``boxes`` holds every face
    box of that pass, largest first (``boxes[0] == box``; empty for ``"cropped_frame"``),
    ready for ``draw_boxes(a.image, list(a.boxes), chosen=0)``.
    """

    crop: np.ndarray
    box: FaceBox
    landmarks: np.ndarray
    faces_found: int
    image: np.ndarray
    transform: np.ndarray | None = None
    detection: str = "hog"
    boxes: tuple[FaceBox, ...] = ()
    # dlib.full_object_detection for `image`, kept for ReferenceModel.embed.
    _shape: Any = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------------------
# Lazy dlib / model loading
# --------------------------------------------------------------------------------------

_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()
# dlib objects are not documented as safe for concurrent use; the app may call from
# several threads, so each model is used under its own lock.
_detector_lock = threading.Lock()
_predictor_lock = threading.Lock()
_recognizer_lock = threading.Lock()


def _dlib():
    mod = _cache.get("dlib")
    if mod is None:
        import dlib  # noqa: PLC0415 -- deliberately lazy: importing dlib is not free

        _cache["dlib"] = mod = dlib
    return mod


def _model_path(kind: str) -> str:
    """Path of a model file shipped by the ``face_recognition_models`` package.

    The package's own location helpers import ``pkg_resources``, which recent
    setuptools no longer ships; fall back to finding the file next to the package
    without importing it.
    """
    names = {
        "five_point": ("pose_predictor_five_point_model_location", "shape_predictor_5_face_landmarks.dat"),
        "resnet": ("face_recognition_model_location", "dlib_face_recognition_resnet_model_v1.dat"),
    }
    func_name, file_name = names[kind]
    try:
        import face_recognition_models  # noqa: PLC0415

        path = getattr(face_recognition_models, func_name)()
        if os.path.isfile(path):
            return path
    except Exception:  # ImportError of pkg_resources, or anything else: use the fallback
        pass
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(location, "models", file_name)
        if os.path.isfile(path):
            return path
    raise RuntimeError(
        f"dlib model file {file_name!r} not found: install the 'face-recognition-models' package"
    )


def _cached(key: str, factory):
    obj = _cache.get(key)
    if obj is None:
        with _cache_lock:
            obj = _cache.get(key)
            if obj is None:
                obj = factory()
                _cache[key] = obj
    return obj


def _detector():
    return _cached("detector", lambda: _dlib().get_frontal_face_detector())


def _predictor():
    return _cached("predictor", lambda: _dlib().shape_predictor(_model_path("five_point")))


def _recognizer():
    return _cached("recognizer", lambda: _dlib().face_recognition_model_v1(_model_path("resnet")))


def preload(reference: bool = False) -> None:
    """Load dlib, the detector and the 5-point predictor now (and the ResNet if ``reference``).

    Otherwise the first :func:`align_face` pays ~0.3-1 s for it.  Safe to call from
    a background thread at app start-up.
    """
    _detector()
    _predictor()
    if reference:
        _recognizer()


# --------------------------------------------------------------------------------------
# Loading images
# --------------------------------------------------------------------------------------


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale an integer/float/bool array to uint8 (0..255)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype in (np.uint16, np.int16) or (arr.size and arr.max() > 255):
            top = 65535.0 if (not arr.size or arr.max() <= 65535) else float(arr.max())
            return np.clip(np.rint(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.clip(arr, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(arr.astype(np.float64))
        if a.size and a.max() <= 1.0 and a.min() >= 0.0:
            a = a * 255.0
        elif a.size and a.max() > 255.0:
            a = a * (255.0 / a.max())
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    raise ValueError(f"could not read image: unsupported array dtype {arr.dtype}")


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        g = _to_uint8(arr)
        rgb = np.repeat(g[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        g = _to_uint8(arr[..., 0])
        rgb = _composite_on_white(np.repeat(g[..., None], 3, axis=2), _to_uint8(arr[..., 1]))
    elif arr.ndim == 3 and arr.shape[2] == 3:
        rgb = _to_uint8(arr)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        rgb = _composite_on_white(_to_uint8(arr[..., :3]), _to_uint8(arr[..., 3]))
    else:
        raise ValueError(f"could not read image: unsupported array shape {arr.shape}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"could not read image: empty image of shape {arr.shape}")
    return np.ascontiguousarray(rgb)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        return _pil_to_rgb(img)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode == "L":
        return _array_to_rgb(np.asarray(img, dtype=np.uint8))
    if mode.startswith("I") or mode == "F":
        # 16-bit / 32-bit integer or float grey: scale to 8 bit (see _to_uint8).
        if mode.startswith("I;16"):
            arr = np.asarray(img).astype(np.uint16)
        else:
            arr = np.asarray(img)
        return _array_to_rgb(arr)
    # 1, CMYK, YCbCr, LAB, HSV, RGBX, ...: Pillow knows how to get RGB.
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def load_rgb(source: ImageSource, *, max_side: int | None = None) -> np.ndarray:
    """Read an image into an HxWx3 uint8 RGB array.

    ``source`` may be a path, encoded bytes, a PIL image or a numpy array.
    EXIF orientation is applied (paths, bytes and PIL images).  Any mode is
    accepted: grey, palette, alpha (composited on white), CMYK, 16/32-bit
    integer and float images (scaled to 8 bit).  Arrays may be HxW, HxWx1,
    HxWx2, HxWx3 (taken as RGB) or HxWx4, of any integer, bool or float dtype
    (floats in [0, 1] are scaled by 255).

    ``max_side``: if given, a JPEG larger than that is decoded at 1/2, 1/4 or
    1/8 scale (libjpeg DCT scaling, nearly free), keeping the long side at least
    ``max_side``; other inputs are returned at full size.  :func:`align_face`
    uses 1600 so a 12 MP phone photo (decoded at 2000x1500) does not cost 150 ms of decoding.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError("could not
    read image: ...")`` for anything that is not a readable image.
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"no such image file: {os.fspath(source)!r}")
    opened = None  # an image this function opened itself, closed at the end
    try:
        if isinstance(source, Image.Image):
            img = source
        elif isinstance(source, (str, os.PathLike)):
            img = opened = Image.open(source)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            img = opened = Image.open(io.BytesIO(bytes(source)))
        else:
            raise TypeError(f"unsupported image source type {type(source).__name__}")
        if opened is not None and max_side and img.format == "JPEG" and max(img.size) >= 2 * max_side:
            f = max_side / float(max(img.size))
            img.draft(None, (max(1, int(math.ceil(img.size[0] * f))), max(1, int(math.ceil(img.size[1] * f)))))
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not make the photo unreadable
            pass
        rgb = _pil_to_rgb(img)
    except TypeError as exc:
        raise ValueError(f"could not read image: {exc}") from exc
    except Exception as exc:  # UnidentifiedImageError, truncated data, decompression bomb, ...
        reason = str(exc) or type(exc).__name__
        raise ValueError(f"could not read image: {_describe(source)} is not a readable image ({reason})") from exc
    finally:
        if opened is not None:
            opened.close()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"could not read image: {_describe(source)} decoded to shape {rgb.shape}")
    return rgb


# --------------------------------------------------------------------------------------
# Detection and landmarks
# --------------------------------------------------------------------------------------


def _scaled_copy(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    # the real scale per axis differs by rounding; use the width's (error < 0.1 %)
    return np.ascontiguousarray(small), size[0] / float(w)


def _run_detector(img: np.ndarray, upsample: int) -> list:
    with _detector_lock:
        return list(_detector()(img, int(upsample)))


def _detect(rgb: np.ndarray, max_side: int, upsample: int, pad: float) -> list[FaceBox]:
    small, scale = _scaled_copy(rgb, max_side)
    dx = dy = 0
    if pad > 0:
        p = int(round(pad * max(small.shape[:2])))
        small = np.pad(small, ((p, p), (p, p), (0, 0)))  # black: what the shape predictor sees outside too
        dx = dy = p
    rects = _run_detector(small, upsample)
    boxes = [FaceBox._from_dlib(r, scale, dx, dy) for r in rects]
    return _largest_first(boxes, rgb.shape[1], rgb.shape[0])


def _largest_first(boxes: list[FaceBox], width: int, height: int) -> list[FaceBox]:
    """Sort by area, largest first.

    Boxes within 10% of the largest area count as equally large (dlib's boxes come
    in a few fixed sizes, so a near-tie is rounding): among those the one nearest
    the image centre comes first.  This matters for LFW, where the subject is the
    centre face and a bystander can get a box of the same size.
    """
    if len(boxes) < 2:
        return list(boxes)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0

    def dist(b: FaceBox) -> float:
        return math.hypot((b.left + b.right - 1) / 2.0 - cx, (b.top + b.bottom - 1) / 2.0 - cy)

    by_area = sorted(boxes, key=lambda b: (-b.area, dist(b)))
    top = by_area[0].area
    first = min((b for b in by_area if b.area >= 0.9 * top), key=dist)
    return [first] + [b for b in by_area if b is not first]


def detect_faces(rgb: np.ndarray, max_side: int = _DETECT_MAX_SIDE, *, upsample: int = 0) -> list[FaceBox]:
    """dlib HOG frontal-face boxes in full-resolution coordinates, largest first.

    Near-ties in area (within 10%) go to the box nearest the image centre.

    Detection runs on a copy scaled so that its long side is at most ``max_side``;
    ``upsample`` is dlib's ``upsample_num_times`` (each step doubles the image,
    halving the smallest findable face, 80 px at 0).  One pass only: the retry
    policy lives in :func:`align_face`.
    """
    rgb = _array_to_rgb(rgb)
    return _detect(rgb, max_side, upsample, 0.0)


def _detection_passes(h: int, w: int) -> list[tuple[str, int, float]]:
    small = max(h, w) <= _SMALL_IMAGE_SIDE
    passes = [("hog", 0, 0.0), ("hog_upsampled", 1, 0.0)]
    if small:
        passes.append(("hog_upsampled", 2, 0.0))
    passes.append(("hog_padded", 0, _PAD_FRACTION))
    if small:
        passes.append(("hog_padded", 1, _PAD_FRACTION))
    return passes


def _fit_shape(rgb: np.ndarray, box: FaceBox):
    with _predictor_lock:
        return _predictor()(rgb, box._to_dlib())


def _shape_points(shape) -> np.ndarray:
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)


def fit_landmarks(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The 5 dlib landmarks (see :data:`TEMPLATE_112` for the order) inside ``box``, as (5, 2) float x, y.

    ``rgb`` is the full-resolution image; pixels outside it read as black.
    """
    rgb = _array_to_rgb(rgb)
    return _shape_points(_fit_shape(rgb, box))


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama (1991), no reflection.  ``src``/``dst`` are (N, 2), N >= 2.  Returns
    the (2, 3) matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two (N, 2) point sets with N >= 2, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / n
    if var_s <= 1e-12:
        raise ValueError("degenerate source points (all equal)")
    cov = d0.T @ s0 / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    out = np.empty((2, 3))
    out[:, :2] = a
    out[:, 2] = -a @ m[:, 2]
    return out


def _warp(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Warp ``rgb`` with the forward (2, 3) similarity ``m`` into a (size, size) crop, black outside.

    Coordinates use the integer-pixel-centre convention.  When the crop is much
    smaller than the source face (a large photo) the region is first reduced by
    an integer box filter so that bilinear sampling does not alias.
    """
    inv = _invert(m)  # crop -> image
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # crop px per image px
    k = max(1, int(math.floor(1.0 / scale))) if scale < 0.5 else 1
    corners = _apply(inv, np.array([[-1, -1], [size, -1], [-1, size], [size, size]], dtype=np.float64))
    margin = 2 * k + 2
    x0 = int(math.floor(corners[:, 0].min())) - margin
    y0 = int(math.floor(corners[:, 1].min())) - margin
    x1 = int(math.ceil(corners[:, 0].max())) + margin
    y1 = int(math.ceil(corners[:, 1].max())) + margin
    region = Image.fromarray(rgb).crop((x0, y0, x1, y1))  # outside the photo -> black
    if k > 1:
        region = region.reduce(k)
    # crop pixel -> region pixel (integer-centre convention):
    #   x_img = inv(x_out);  x_reg = (x_img - x0 - (k - 1) / 2) / k
    a = inv[:, :2] / k
    t = (inv[:, 2] - np.array([x0, y0]) - (k - 1) / 2.0) / k
    # PIL samples at continuous coordinates where pixel i is centred at i + 0.5.
    c = t + 0.5 - a @ np.array([0.5, 0.5])
    coeffs = (a[0, 0], a[0, 1], c[0], a[1, 0], a[1, 1], c[1])
    out = region.transform(
        (size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0)
    )
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8))


def _template(size: int) -> np.ndarray:
    if size == 112:
        return TEMPLATE_112
    # scale about the pixel-centre grid: x' = (x + 0.5) * s - 0.5
    return (TEMPLATE_112 + 0.5) * (size / 112.0) - 0.5


# --------------------------------------------------------------------------------------
# The one crop function
# --------------------------------------------------------------------------------------


def align_face(source: ImageSource, *, size: int = 112, assume_cropped: bool = False) -> AlignedFace:
    """Detect the largest face, fit the 5 landmarks and warp it onto the template.

    ``source``: anything :func:`load_rgb` accepts.  ``size``: side of the output
    crop (the template is scaled from 112).  ``assume_cropped=True`` declares the
    input an already-cropped face that fills the frame (the FIW training crops):
    if no pass of the detector finds the face, the landmarks are fitted in the
    average FIW detector box instead of failing.  Never use it for uploads.

    Raises :class:`NoFaceError` when no face is found (and not ``assume_cropped``),
    ``ValueError`` when the source is not an image.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    rgb = load_rgb(source, max_side=_LOAD_MAX_SIDE)
    h, w = rgb.shape[:2]
    boxes: list[FaceBox] = []
    how = "hog"
    tried = []
    for how, upsample, pad in _detection_passes(h, w):
        boxes = _detect(rgb, _DETECT_MAX_SIDE, upsample, pad)
        tried.append(f"upsample={upsample}" + (f" padded {int(pad * 100)}%" if pad else ""))
        if boxes:
            break
    if boxes:
        box, faces_found = boxes[0], len(boxes)
    elif assume_cropped:
        fl, ft, fr, fb = _CROPPED_FRAME_BOX
        box = FaceBox(int(round(fl * w)), int(round(ft * h)), int(round(fr * w)), int(round(fb * h)))
        faces_found, how = 0, "cropped_frame"
    else:
        raise NoFaceError(
            f"no face found in the {w}x{h} image (dlib HOG frontal detector, passes: {', '.join(tried)}); "
            "use a photo with an upright, roughly frontal face that is not tiny (at least ~1/20 of the long side)"
        )
    shape = _fit_shape(rgb, box)
    landmarks = _shape_points(shape)
    m = similarity_transform(landmarks, _template(size))
    crop = _warp(rgb, m, size)
    return AlignedFace(
        crop=crop,
        box=box,
        landmarks=landmarks,
        faces_found=faces_found,
        image=rgb,
        transform=m,
        detection=how,
        boxes=tuple(boxes),
        _shape=shape,
    )


# --------------------------------------------------------------------------------------
# UI helper
# --------------------------------------------------------------------------------------


def draw_boxes(rgb: np.ndarray, boxes: list[FaceBox], chosen: int = 0) -> np.ndarray:
    """Copy of ``rgb`` with ``boxes`` drawn: the chosen one thick green, the others thin orange."""
    rgb = _array_to_rgb(rgb)
    img = Image.fromarray(rgb.copy())
    draw = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    thin = max(1, int(round(max(h, w) / 400)))
    order = [i for i in range(len(boxes)) if i != chosen] + ([chosen] if 0 <= chosen < len(boxes) else [])
    for i in order:
        b = boxes[i].clipped(w, h)
        if b.right - b.left < 1 or b.bottom - b.top < 1:
            continue
        is_chosen = i == chosen
        width = thin * 3 if is_chosen else thin
        color = (0, 220, 0) if is_chosen else (255, 140, 0)
        draw.rectangle((b.left, b.top, b.right - 1, b.bottom - 1), outline=color, width=width)
    return np.asarray(img)


# --------------------------------------------------------------------------------------
# Reference model (dlib ResNet)
# --------------------------------------------------------------------------------------


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
            shape = _fit_shape(aligned.image, aligned.box)
        return shape

    def descriptor(self, aligned: AlignedFace) -> np.ndarray:
        """Raw 128-D dlib descriptor (float64; euclidean distance < 0.6 means same person)."""
        shape = self._shape_for(aligned)
        net = _recognizer()
        with _recognizer_lock:
            vec = net.compute_face_descriptor(aligned.image, shape, self.num_jitters)
        return np.asarray(vec, dtype=np.float64)

    def embed(self, aligned: AlignedFace) -> np.ndarray:
        """L2-normalised 128-D descriptor (float32), for cosine similarity."""
        v = self.descriptor(aligned)
        return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


# --------------------------------------------------------------------------------------
# LFW pairs
# --------------------------------------------------------------------------------------


def _lfw_dir(root: Path) -> Path:
    root = Path(root)
    for cand in (root, root / "lfw", root / "faces" / "lfw"):
        if (cand / "pairs.txt").is_file():
            return cand
    raise FileNotFoundError(f"no LFW pairs.txt under {root} (looked in ., lfw/, faces/lfw/)")


def lfw_pairs(root: Path) -> list[tuple[Path, Path, bool, int]]:
    """The official LFW View-2 pairs as ``(image_a, image_b, same, fold)``, fold in 0..9.

    ``root`` is the LFW folder (holding ``pairs.txt``), or the data root /
    ``faces`` folder above it.  ``pairs.txt``: a header ``<folds> <n>``, then per
    fold ``n`` matched lines ``name i j`` and ``n`` mismatched lines
    ``name1 i name2 j``; images are ``<name>/<name>_<i:04d>.jpg``.
    """
    lfw = _lfw_dir(root)
    lines = [ln.split() for ln in (lfw / "pairs.txt").read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise ValueError(f"{lfw / 'pairs.txt'}: bad header {lines[:1]}")
    n_folds, n_per = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != n_folds * 2 * n_per:
        raise ValueError(f"{lfw / 'pairs.txt'}: expected {n_folds * 2 * n_per} pairs, found {len(body)}")

    def img(name: str, idx: str) -> Path:
        return lfw / name / f"{name}_{int(idx):04d}.jpg"

    pairs: list[tuple[Path, Path, bool, int]] = []
    for k, parts in enumerate(body):
        fold, pos = divmod(k, 2 * n_per)
        same = pos < n_per
        if same and len(parts) == 3:
            pairs.append((img(parts[0], parts[1]), img(parts[0], parts[2]), True, fold))
        elif not same and len(parts) == 4:
            pairs.append((img(parts[0], parts[1]), img(parts[2], parts[3]), False, fold))
        else:
            raise ValueError(f"{lfw / 'pairs.txt'}: line {k + 2} {parts} does not fit the View-2 layout")
    return pairs
