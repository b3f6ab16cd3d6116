"""Face detection, 5-point alignment and the crop every face model here sees.

Every face the project touches -- training crops (FIW, CelebA), LFW/ORL evaluation images and uploads in the app --
goes through :func:`align_face`, so the model always sees the same geometry: dlib's 5-point landmarks mapped by a
least-squares similarity transform onto one fixed 112x112 template, :data:`TEMPLATE_112`.

Pipeline of :func:`align_face`:

1. :func:`arcdemo.inputs.load_rgb` -- the upload loader: EXIF orientation, any mode/size -> HxWx3 uint8.
2. Detection: dlib's HOG frontal detector on a copy whose long side is at most 800 px, boxes mapped back to full
   resolution. If nothing is found it retries upsampled (x2, and x4 for small images such as LFW 160 px / ORL
   92x112), then on the image padded with a black border (faces that fill the frame), and last with dlib's CNN
   (MMOD) detector, which finds profile, tilted and blurred faces HOG misses at ~10x its cost -- it only runs when
   every HOG pass failed, so photos HOG handles pay nothing for it. Before the CNN, when HOG finds no face upright (a
   phone photo whose EXIF orientation is missing or wrong), its passes run on the image turned by :data:`TURNS`
   (``try_turns``; uploads only). For inputs declared pre-cropped
   (``assume_cropped=True``, the FIW training crops) and only for those, the last resort is the face box the
   detector returns on average on FIW crops. Otherwise :class:`NoFaceError` -- never a silent centre crop.
3. dlib's 5-point shape predictor (trained for both detectors' boxes), on the full-resolution image.
4. :func:`similarity_transform` (Umeyama) from the landmarks to the template, then a bilinear warp (PIL,
   box-filtered first when shrinking a lot) to 112x112; the area outside the photo is black, as in the FIW crops.

dlib's native code trusts its input: its CNN detector raises on an image narrower than its filter windows and
leaves the heap corrupted, so the process aborts later. :func:`check_face_size` refuses, with a sentence, images in
which no detector could find a face (a side under :data:`MIN_FACE_SIDE` px, or so long and thin that the detector's
copy would be), and the CNN runs only on copies at least :data:`MIN_FACE_SIDE` px on each side.

:data:`ALIGNMENT_KEY` names this geometry; caches of aligned crops are keyed by it, so they survive edits that do
not change a crop and are rebuilt after edits that do (bump :data:`ALIGNMENT_VERSION` then).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from arcdemo.faces.dlib_models import dlib_module, locked, model
from arcdemo.inputs import load_rgb

__all__ = [
    "NoFaceError",
    "MIN_FACE_SIDE",
    "check_face_size",
    "FaceBox",
    "AlignedFace",
    "TEMPLATE_112",
    "detect_faces",
    "fit_landmarks",
    "similarity_transform",
    "align_face",
    "draw_boxes",
    "ALIGNMENT_KEY",
]

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

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
_CNN_MAX_SIDE = 640  # the CNN detector's cost grows with the pixels: it sees a copy at most this long
# Images whose long side is below this are upsampled once for it (finding 40 px faces instead of 80 px) at ~4x the
# cost: LFW's 160 px crops and FIW's 112 px ones are; CelebA's ~200 px crops, whose faces are larger, are not.
_CNN_UPSAMPLE_BELOW = 180

#: The smallest face any pass finds is 20 px (HOG's 80 px window on a copy upsampled x4), so an image needs at least
#: this many pixels on each side, also in the detector's copy.  dlib's CNN detector raises on inputs under ~10 px a
#: side and then aborts the process (measured: 200x9 and 6x200 abort, 200x10 and 7x200 do not): its copies are
#: held to this bound too, twice that measured limit.
MIN_FACE_SIDE = 20

#: Turns (degrees clockwise) tried when no face is found upright: a sideways phone photo first, then upside down.
TURNS = (90, 270, 180)

#: Bump when a change alters the crops (detection passes, template, warp); caches of aligned faces are keyed by
#: :data:`ALIGNMENT_KEY`, never by this file's text.
ALIGNMENT_VERSION = 2  # 1: HOG passes only; 2: + the CNN detector when every HOG pass fails


# --------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------


class NoFaceError(ValueError):
    """No face could be found in the image."""


def check_face_size(height: int, width: int) -> None:
    """Raise :class:`NoFaceError` with a sentence when no detector could find a face in an image of this size."""
    if min(height, width) < MIN_FACE_SIDE:
        raise NoFaceError(f"the image is {width}×{height} px; a face needs at least {MIN_FACE_SIDE} px on each side")
    scale = min(1.0, _DETECT_MAX_SIDE / max(height, width))
    if min(height, width) * scale < MIN_FACE_SIDE:
        longest = _DETECT_MAX_SIDE // MIN_FACE_SIDE
        raise NoFaceError(
            f"the image is {width}×{height} px, its long side {max(height, width) / min(height, width):.0f} times its "
            f"short side; faces are looked for in images of at most {longest}:1, so crop it around the face"
        )


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

    def clipped(self, width: int, height: int) -> FaceBox:
        return FaceBox(
            min(max(self.left, 0), width),
            min(max(self.top, 0), height),
            min(max(self.right, 0), width),
            min(max(self.bottom, 0), height),
        )

    def _to_dlib(self):
        return dlib_module().rectangle(int(self.left), int(self.top), int(self.right) - 1, int(self.bottom) - 1)

    @staticmethod
    def _from_dlib(rect, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> FaceBox:
        # dlib rectangles are inclusive; FaceBox is exclusive on the right/bottom.
        return FaceBox(
            int(round((rect.left() - dx) / scale)),
            int(round((rect.top() - dy) / scale)),
            int(round((rect.right() + 1 - dx) / scale)),
            int(round((rect.bottom() + 1 - dy) / scale)),
        )


#: How a face box was found, in the order tried; "cropped_frame" is the ``assume_cropped`` fallback.
DETECTIONS = ("hog", "hog_upsampled", "hog_padded", "cnn", "cropped_frame")


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """Result of :func:`align_face`.

    ``crop`` is the aligned (size, size, 3) uint8 RGB face; ``box`` the face box
    used, ``landmarks`` the 5 dlib points in full-image coordinates, ``image`` the
    RGB image actually used (EXIF-corrected; JPEGs of 3200 px or more are decoded
    at 1/2..1/8 scale, see :func:`arcdemo.inputs.load_rgb`), ``faces_found`` how many faces the
    successful detection pass found (0 when the pre-cropped frame box was used),
    ``transform`` the (2, 3) similarity matrix image -> crop, and ``detection`` how
    the box was obtained: one of :data:`DETECTIONS`.  ``boxes`` holds every face
    box of that pass, largest first (``boxes[0] == box``; empty for ``"cropped_frame"``),
    ready for ``draw_boxes(a.image, list(a.boxes), chosen=0)``; ``turn`` the degrees the photo was
    turned clockwise for a face to be found, 0 when it was found upright.
    """

    crop: np.ndarray
    box: FaceBox
    landmarks: np.ndarray
    faces_found: int
    image: np.ndarray
    transform: np.ndarray | None = None
    detection: str = "hog"
    boxes: tuple[FaceBox, ...] = ()
    turn: int = 0
    # dlib.full_object_detection for `image`, kept for ReferenceModel.embed.
    _shape: Any = field(default=None, repr=False, compare=False)



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
    with locked("hog"):
        return list(model("hog")(img, int(upsample)))


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
    rgb = load_rgb(rgb)
    return _detect(rgb, max_side, upsample, 0.0)


def _detect_cnn(rgb: np.ndarray) -> list[FaceBox]:
    """dlib's CNN (MMOD) detector on a copy at most ``_CNN_MAX_SIDE`` long, upsampled once if small.

    A copy under :data:`MIN_FACE_SIDE` px on a side holds no findable face and would abort the process: skipped.
    """
    small, scale = _scaled_copy(rgb, _CNN_MAX_SIDE)
    if min(small.shape[:2]) < MIN_FACE_SIDE:
        return []
    upsample = 1 if max(rgb.shape[:2]) < _CNN_UPSAMPLE_BELOW else 0
    with locked("cnn_detector"):
        found = model("cnn_detector")(small, upsample)
    boxes = [FaceBox._from_dlib(d.rect, scale) for d in found]
    return _largest_first(boxes, rgb.shape[1], rgb.shape[0])


def _detection_passes(h: int, w: int) -> list[tuple[str, int, float]]:
    small = max(h, w) <= _SMALL_IMAGE_SIDE
    passes = [("hog", 0, 0.0), ("hog_upsampled", 1, 0.0)]
    if small:
        passes.append(("hog_upsampled", 2, 0.0))
    passes.append(("hog_padded", 0, _PAD_FRACTION))
    if small:
        passes.append(("hog_padded", 1, _PAD_FRACTION))
    return passes


def fit_shape(rgb: np.ndarray, box: FaceBox):
    """dlib's 5-point shape (a ``full_object_detection``) in ``box``; the reference model builds its chip from it."""
    with locked("five_point"):
        return model("five_point")(rgb, box._to_dlib())


def _shape_points(shape) -> np.ndarray:
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)


def fit_landmarks(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The 5 dlib landmarks (see :data:`TEMPLATE_112` for the order) inside ``box``, as (5, 2) float x, y.

    ``rgb`` is the full-resolution image; pixels outside it read as black.
    """
    rgb = load_rgb(rgb)
    return _shape_points(fit_shape(rgb, box))


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


def _alignment_key() -> str:
    """Digest of everything that shapes a crop: the version, the template and the detection constants."""
    parts = (ALIGNMENT_VERSION, TEMPLATE_112.round(4).tolist(), _CROPPED_FRAME_BOX, _DETECT_MAX_SIDE, _LOAD_MAX_SIDE,
             _SMALL_IMAGE_SIDE, _PAD_FRACTION, _CNN_MAX_SIDE, _CNN_UPSAMPLE_BELOW)
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


ALIGNMENT_KEY = _alignment_key()


def _template(size: int) -> np.ndarray:
    if size == 112:
        return TEMPLATE_112
    # scale about the pixel-centre grid: x' = (x + 0.5) * s - 0.5
    return (TEMPLATE_112 + 0.5) * (size / 112.0) - 0.5


# --------------------------------------------------------------------------------------
# The one crop function
# --------------------------------------------------------------------------------------


def load_photo(source: ImageSource) -> np.ndarray:
    """The (H, W, 3) uint8 pixels :func:`align_face` detects on: a large JPEG decoded at reduced scale."""
    return load_rgb(source, max_side=_LOAD_MAX_SIDE)


def _hog_faces(rgb: np.ndarray, tried: list[str]) -> tuple[list[FaceBox], str]:
    """Every HOG pass in turn until one finds a face: (boxes, which pass); each pass tried is named in ``tried``."""
    h, w = rgb.shape[:2]
    for how, upsample, pad in _detection_passes(h, w):
        boxes = _detect(rgb, _DETECT_MAX_SIDE, upsample, pad)
        if boxes:
            return boxes, how
        tried.append(f"upsample={upsample}" + (f" padded {int(pad * 100)}%" if pad else ""))
    return [], ""


def align_face(
    source: ImageSource, *, size: int = 112, assume_cropped: bool = False, try_turns: bool = True
) -> AlignedFace:
    """Detect the largest face, fit the 5 landmarks and warp it onto the template.

    ``source``: anything :func:`arcdemo.inputs.load_rgb` accepts.  ``size``: side of the output
    crop (the template is scaled from 112).  ``assume_cropped=True`` declares the
    input an already-cropped face that fills the frame (the FIW training crops):
    if no pass of the detector finds the face, the landmarks are fitted in the
    average FIW detector box instead of failing.  Never use it for uploads.
    ``try_turns``: when HOG finds no face upright, its passes run again on the image turned by each of
    :data:`TURNS` before the CNN detector is asked (HOG finds upright faces only, so the turn it succeeds at is
    the photo's; the CNN also fires on sideways faces, whose landmarks it cannot place). The result's ``turn``
    says which turn found the face and its ``image`` is the turned photo. Datasets published upright pass False,
    so that their crops do not depend on it.

    Raises :class:`NoFaceError` when no face is found (and not ``assume_cropped``) or the image is too small to
    hold one, :class:`arcdemo.inputs.InputError` (a ValueError, with a sentence) when the source is not an image.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    rgb = load_photo(source)
    h, w = rgb.shape[:2]
    check_face_size(h, w)
    tried: list[str] = []
    boxes, how = _hog_faces(rgb, tried)
    turn = 0
    if not boxes and try_turns and not assume_cropped:
        for turn in TURNS:  # noqa: B007 -- `turn` is read after the loop
            turned = np.ascontiguousarray(np.rot90(rgb, -(turn // 90)))  # rot90 turns anticlockwise
            boxes, how = _hog_faces(turned, [])
            if boxes:
                rgb = turned
                break
        else:
            turn = 0
            tried.append("turned " + ", ".join(f"{t}°" for t in TURNS) + " clockwise")
    if not boxes:
        boxes, how = _detect_cnn(rgb), "cnn"
        tried.append("CNN detector")
    if boxes:
        box, faces_found = boxes[0], len(boxes)
    elif assume_cropped:
        fl, ft, fr, fb = _CROPPED_FRAME_BOX
        box = FaceBox(int(round(fl * w)), int(round(ft * h)), int(round(fr * w)), int(round(fb * h)))
        faces_found, how = 0, "cropped_frame"
    else:
        raise NoFaceError(
            f"no face found in the {w}x{h} image (dlib's HOG detector, passes: {', '.join(tried)}); "
            "use a photo with an upright, roughly frontal face that is not tiny (at least ~1/20 of the long side)"
        )
    shape = fit_shape(rgb, box)
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
        turn=turn,
        _shape=shape,
    )


# --------------------------------------------------------------------------------------
# UI helper
# --------------------------------------------------------------------------------------


def draw_boxes(rgb: np.ndarray, boxes: list[FaceBox], chosen: int = 0) -> np.ndarray:
    """Copy of ``rgb`` with ``boxes`` drawn: the chosen one thick green, the others thin orange."""
    rgb = load_rgb(rgb)
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
