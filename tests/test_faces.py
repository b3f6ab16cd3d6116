"""Tests for arcdemo.faces.align and its neighbours: detection, 5-point alignment, image loading, LFW pairs, dlib's
reference model.

They use the real datasets under $ARCDEMO_DATA_ROOT (default ../shared/data relative to the repo) and
skip when those are missing.  The whole file runs in ~15 s on 2 busy CPU cores.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arcdemo.faces import align as F
from arcdemo.faces.evaluate import lfw_pairs
from arcdemo.faces.reference import ReferenceModel
from arcdemo.inputs import InputError, load_rgb

REPO = Path(__file__).resolve().parents[1]
_root = Path(os.environ.get("ARCDEMO_DATA_ROOT", "../shared/data"))
DATA = (_root if _root.is_absolute() else REPO / _root).resolve()
FACES = DATA / "faces"

needs_data = pytest.mark.skipif(
    not (FACES / "lfw" / "pairs.txt").is_file() or not (FACES / "orl").is_dir() or not (FACES / "fiw").is_dir(),
    reason=f"face datasets not found under {FACES} (set ARCDEMO_DATA_ROOT)",
)

# A few fixed, clearly frontal images from each dataset.
LFW_IMAGES = [
    "Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "Abel_Pacheco/Abel_Pacheco_0001.jpg",
    "Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg",
    "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
]
ORL_IMAGES = ["s1/1.pgm", "s5/1.pgm", "s12/3.pgm", "s27/2.pgm"]
FIW_DIRS = ["F0002_MID1", "F0002_MID2", "F0002_MID3", "F0005_MID1", "F0007_MID2", "F0009_MID1"]


def lfw(rel: str) -> Path:
    return FACES / "lfw" / rel


def orl(rel: str) -> Path:
    return FACES / "orl" / rel


def fiw_files() -> list[Path]:
    out = []
    for d in FIW_DIRS:
        files = sorted((FACES / "fiw" / d).glob("*.jpg"))
        if files:
            out.append(files[0])
    return out


def warped_landmarks(a: F.AlignedFace) -> np.ndarray:
    return a.landmarks @ a.transform[:2, :2].T + a.transform[:, 2]


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# pure geometry / API shape (no data needed)
# ---------------------------------------------------------------------------------------------------------------


def test_import_is_cheap_and_lazy():
    code = (
        "import sys, arcdemo.faces.align, arcdemo.faces.dlib_models as M; assert 'dlib' not in sys.modules; "
        "assert 'torch' not in sys.modules; M.preload(); assert 'dlib' in sys.modules and 'resnet' not in M._models"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_template_is_symmetric_and_ordered():
    t = F.TEMPLATE_112
    assert t.shape == (5, 2) and not t.flags.writeable
    # points 0/1 = eye on the image's right (outer, inner), 2/3 = eye on the image's left (outer, inner), 4 = nose base
    assert t[0, 0] > t[1, 0] > t[4, 0] > t[3, 0] > t[2, 0]
    assert t[4, 1] > t[:4, 1].max() + 25
    # mirror symmetric about x = 55.5, so a horizontal flip of a crop keeps the geometry
    mirrored = np.c_[111 - t[:, 0], t[:, 1]][[2, 3, 0, 1, 4]]
    np.testing.assert_allclose(mirrored, t, atol=1e-6)
    eye_dist = np.linalg.norm(t[:2].mean(0) - t[2:4].mean(0))
    assert 40 < eye_dist < 46  # FIW's own (tighter than insightface's 35 px) layout


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    ang, s, t = np.deg2rad(17.0), 0.63, np.array([12.5, -40.0])
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ r.T + t
    m = F.similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-7)
    # a mirrored target must still give a proper rotation (no reflection), det > 0
    m2 = F.similarity_transform(src, dst * np.array([-1.0, 1.0]))
    assert np.linalg.det(m2[:, :2]) > 0
    with pytest.raises(ValueError):
        F.similarity_transform(np.zeros((5, 2)), dst)


def test_facebox():
    b = F.FaceBox(10, 20, 110, 140)
    assert b.area == 100 * 120 and b.as_tuple() == (10, 20, 110, 140)
    assert F.FaceBox(-5, -5, 50, 300).clipped(40, 100).as_tuple() == (0, 0, 40, 100)


def test_load_rgb_modes_from_arrays_and_pil():
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    out = load_rgb(grey)
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8 and (out[..., 0] == grey).all()
    # I;16: 16-bit values are scaled to 8 bit
    i16 = Image.fromarray(grey.astype(np.uint16) * 257)
    assert i16.mode == "I;16"
    np.testing.assert_array_equal(load_rgb(i16)[..., 1], grey)
    # I (int32) holding 16-bit data, and float in [0, 1]
    np.testing.assert_array_equal(load_rgb(Image.fromarray(grey.astype(np.int32) * 257))[..., 2], grey)
    np.testing.assert_array_equal(load_rgb(grey.astype(np.float32) / 255.0)[..., 0], grey)
    # RGBA: transparent pixels become white, opaque ones keep their colour
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, ..., 3] = 255
    out = load_rgb(Image.fromarray(rgba, "RGBA"))
    assert out[0, 0].tolist() == [200, 0, 0] and out[3, 3].tolist() == [255, 255, 255]
    # LA and P
    assert load_rgb(Image.fromarray(grey).convert("LA")).shape == (12, 10, 3)
    p = Image.fromarray(np.dstack([grey] * 3)).convert("P")
    assert load_rgb(p).shape == (12, 10, 3)
    # CMYK: pure cyan -> (0, 255, 255)
    cmyk = Image.new("CMYK", (3, 3), (255, 0, 0, 0))
    assert load_rgb(cmyk)[1, 1].tolist() == [0, 255, 255]


def test_load_rgb_rejects_non_images_with_a_sentence():
    with pytest.raises(InputError, match="not an image I can read"):
        load_rgb(b"this is not an image at all")
    # a JPEG cut in half is corrupt, not an image with a grey bottom
    half = jpeg_bytes(Image.new("RGB", (64, 64), (10, 200, 30)))[:300]
    with pytest.raises(InputError, match="could not be read as an image"):
        load_rgb(half)
    with pytest.raises(InputError, match="Expected an image array"):
        load_rgb(np.zeros((5, 5, 7)))
    with pytest.raises(InputError, match="does not exist"):
        load_rgb("/nonexistent/face.jpg")
    with pytest.raises(InputError, match="not an image"):  # the face pipeline says the same sentence
        F.align_face(b"%PDF-1.4 not a photo")


def test_no_face_raises_clear_error():
    blank = np.full((160, 160, 3), 128, np.uint8)
    noise = np.random.default_rng(1).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    for img in (blank, noise):
        with pytest.raises(F.NoFaceError, match="no face found"):
            F.align_face(img)
    assert issubclass(F.NoFaceError, ValueError)


def test_draw_boxes_highlights_chosen():
    img = np.zeros((100, 120, 3), np.uint8)
    boxes = [F.FaceBox(10, 10, 60, 60), F.FaceBox(70, 20, 110, 60)]
    out = F.draw_boxes(img, boxes, chosen=1)
    assert out.shape == img.shape and img.max() == 0  # input untouched
    assert out[40, 70].tolist() == [0, 220, 0]  # chosen: green, left edge
    assert out[30, 10].tolist() == [255, 140, 0]  # other: orange


# ---------------------------------------------------------------------------------------------------------------
# alignment on real faces
# ---------------------------------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("path", [lfw(p) for p in LFW_IMAGES] + [orl(p) for p in ORL_IMAGES], ids=lambda p: p.name)
def test_alignment_puts_landmarks_on_template(path):
    a = F.align_face(path)
    assert a.crop.shape == (112, 112, 3) and a.crop.dtype == np.uint8
    assert a.faces_found == 1 and a.detection.startswith("hog")
    h, w = a.image.shape[:2]
    assert 0 <= a.landmarks[:, 0].min() and a.landmarks[:, 0].max() < w and a.landmarks[:, 1].max() < h
    err = np.linalg.norm(warped_landmarks(a) - F.TEMPLATE_112, axis=1)
    assert err.max() < 5.0 and err.mean() < 3.0, err
    eyes = [0, 1, 2, 3]
    assert err[eyes].max() < 4.0, err
    # independent check of the warp itself: landmarks fitted again *on the crop* land on the template
    refit = F.fit_landmarks(a.crop, F.FaceBox(3, 1, 108, 107))
    assert np.linalg.norm(refit - F.TEMPLATE_112, axis=1).mean() < 3.5


@needs_data
def test_fiw_crops_map_to_near_identity():
    files = fiw_files()
    assert len(files) >= 5
    mats, diffs = [], []
    for f in files:
        a = F.align_face(f, assume_cropped=True)
        mats.append(a.transform)
        src = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)
        diffs.append(np.abs(a.crop.astype(np.float32) - src).mean())
    m = np.mean(mats, axis=0)
    np.testing.assert_allclose(m[:, :2], np.eye(2), atol=0.06)
    assert np.abs(m[:, 2]).max() < 4.0, m
    # per image: scale within 12 %, rotation within ~6 degrees
    for mi in mats:
        s = np.sqrt(abs(np.linalg.det(mi[:, :2])))
        assert 0.88 < s < 1.12 and abs(np.arctan2(mi[1, 0], mi[0, 0])) < 0.1
    assert np.mean(diffs) < 25.0  # the crop looks like the input (mean abs diff in grey levels)


@needs_data
def test_assume_cropped_fallback_only_when_declared(monkeypatch):
    f = fiw_files()[0]
    monkeypatch.setattr(F, "_run_detector", lambda img, upsample: [])
    monkeypatch.setattr(F, "_detect_cnn", lambda rgb: [])
    with pytest.raises(F.NoFaceError):
        F.align_face(f)
    a = F.align_face(f, assume_cropped=True)
    assert a.detection == "cropped_frame" and a.faces_found == 0
    assert np.abs(a.transform[:, :2] - np.eye(2)).max() < 0.15 and np.abs(a.transform[:, 2]).max() < 8


@needs_data
def test_cnn_detector_steps_in_only_when_hog_finds_nothing(monkeypatch):
    path = lfw(LFW_IMAGES[0])
    hog = F.align_face(path)
    assert hog.detection.startswith("hog")
    # HOG succeeds: the CNN is never asked
    monkeypatch.setattr(F, "_detect_cnn", lambda rgb: pytest.fail("CNN detector ran although HOG found the face"))
    F.align_face(path)
    monkeypatch.undo()
    # HOG finds nothing: the CNN's box gives the same face, aligned onto the template
    monkeypatch.setattr(F, "_run_detector", lambda img, upsample: [])
    cnn = F.align_face(path)
    assert cnn.detection == "cnn" and cnn.faces_found == 1
    err = np.linalg.norm(warped_landmarks(cnn) - F.TEMPLATE_112, axis=1)
    assert err.mean() < 3.0, err
    assert np.abs(cnn.landmarks - hog.landmarks).max() < 4.0
    # and nothing found at all is still a sentence, naming every pass tried
    monkeypatch.setattr(F, "_detect_cnn", lambda rgb: [])
    with pytest.raises(F.NoFaceError, match="CNN detector"):
        F.align_face(path)


@needs_data
def test_a_photo_turned_sideways_or_upside_down_is_found_and_the_turn_reported(monkeypatch):
    upright = F.align_face(lfw(LFW_IMAGES[0]))
    assert upright.turn == 0
    for clockwise in F.TURNS:
        # np.rot90 turns anticlockwise: the photo as a phone without EXIF orientation might send it
        photo = np.ascontiguousarray(np.rot90(upright.image, clockwise // 90))
        a = F.align_face(photo)
        assert a.turn == clockwise and a.detection.startswith("hog"), (clockwise, a.turn, a.detection)
        assert a.image.shape == upright.image.shape
        assert np.abs(a.crop.astype(int) - upright.crop).mean() < 4.0  # the same face, the same crop
    monkeypatch.setattr(F, "_detect_cnn", lambda rgb: [])
    with pytest.raises(F.NoFaceError, match="upsample=0, upsample=1"):  # datasets: never turned
        F.align_face(photo, try_turns=False)


def test_alignment_key_names_the_geometry_not_the_source_text():
    key = F.ALIGNMENT_KEY
    assert key == F._alignment_key() and len(key) == 10
    # the key moves with what shapes a crop (here the template), not with comments or code layout
    original = F.TEMPLATE_112
    try:
        F.TEMPLATE_112 = original + 1.0
        assert F._alignment_key() != key
    finally:
        F.TEMPLATE_112 = original
    assert F._alignment_key() == key


@needs_data
def test_other_sizes_scale_the_template():
    a = F.align_face(lfw(LFW_IMAGES[0]), size=224)
    assert a.crop.shape == (224, 224, 3)
    t224 = (F.TEMPLATE_112 + 0.5) * 2 - 0.5
    assert np.linalg.norm(warped_landmarks(a) - t224, axis=1).mean() < 6.0


@needs_data
def test_modes_give_the_same_face():
    path = lfw(LFW_IMAGES[1])
    ref = F.align_face(path)
    src = Image.open(path).convert("RGB")
    grey = src.convert("L")
    variants = {
        "L": jpeg_bytes(grey),
        "RGBA": src.convert("RGBA"),
        "CMYK": jpeg_bytes(src.convert("CMYK")),
        "I;16": Image.fromarray(np.asarray(grey).astype(np.uint16) * 257),
        "uint16-array": np.asarray(src).astype(np.uint16) * 257,
    }
    for name, v in variants.items():
        a = F.align_face(v)
        assert a.image.shape == (160, 160, 3) and a.image.dtype == np.uint8, name
        assert np.abs(a.landmarks - ref.landmarks).max() <= 3.0, (name, a.landmarks, ref.landmarks)


@needs_data
def test_exif_orientation_is_applied():
    path = lfw(LFW_IMAGES[2])
    src = Image.open(path).convert("RGB")
    ref = F.align_face(src)
    # store the pixels rotated 90 degrees counter-clockwise and say so in EXIF: Orientation 6 means
    # "rotate 90 degrees clockwise to display", which undoes it
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg_bytes(src.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    raw = np.asarray(Image.open(io.BytesIO(data)))
    assert raw.shape[:2] == (160, 160)
    rgb = load_rgb(data)
    assert np.abs(rgb.astype(int) - np.asarray(src, int)).mean() < 6  # upright again
    a = F.align_face(data)
    assert np.abs(a.landmarks - ref.landmarks).max() <= 3.0
    # the face really is upright in the used image: eyes above the nose, left-to-right order kept
    assert a.landmarks[4, 1] > a.landmarks[:4, 1].max() and a.landmarks[0, 0] > a.landmarks[2, 0]


@needs_data
def test_two_faces_largest_chosen_and_counted():
    small = Image.open(lfw(LFW_IMAGES[0])).convert("RGB")  # face ~105 px
    large = Image.open(lfw(LFW_IMAGES[1])).convert("RGB").resize((240, 240), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (460, 280), (90, 90, 90))
    canvas.paste(small, (20, 60))
    canvas.paste(large, (200, 20))
    a = F.align_face(np.asarray(canvas))
    assert a.faces_found == 2
    cx = (a.box.left + a.box.right) / 2
    assert 200 < cx < 440, a.box  # the large face on the right
    boxes = F.detect_faces(np.asarray(canvas))
    assert len(boxes) == 2 and boxes[0].area > 1.5 * boxes[1].area and boxes[0] == a.box
    assert list(a.boxes) == boxes
    drawn = F.draw_boxes(a.image, list(a.boxes), chosen=0)
    assert drawn[(a.box.top + a.box.bottom) // 2, a.box.left].tolist() == [0, 220, 0]


@needs_data
def test_equal_size_faces_prefer_the_centre():
    # LFW: the subject is the centre face; here a bystander gets a box of (almost) the same size
    a = F.align_face(lfw("Charles_Schumer/Charles_Schumer_0002.jpg"))
    assert a.faces_found == 2
    assert abs(a.boxes[0].area - a.boxes[1].area) < 0.1 * a.boxes[0].area
    centre = [abs((b.left + b.right) / 2 - 80) for b in a.boxes]
    assert a.box == a.boxes[0] and centre[0] < centre[1]
    # a clearly larger face still wins over a central one
    big_off, small_centre = F.FaceBox(0, 0, 100, 100), F.FaceBox(60, 60, 140, 140)
    assert F._largest_first([small_centre, big_off], 200, 200)[0] == big_off


@needs_data
def test_megapixel_photo_box_maps_back_to_full_resolution():
    face = Image.open(lfw(LFW_IMAGES[0])).convert("RGB")
    photo = Image.new("RGB", (1200, 900), (40, 60, 80))
    photo.paste(face.resize((480, 480), Image.Resampling.BICUBIC), (600, 250))
    a = F.align_face(jpeg_bytes(photo))  # detected on an 800 px copy, landmarks on the full image
    assert a.image.shape == (900, 1200, 3)
    ref = F.align_face(face)
    expected = ref.landmarks * 3.0 + 1.0 + np.array([600, 250])  # 160 -> 480 px, pixel-centre convention
    assert np.abs(a.landmarks - expected).max() < 8.0  # within ~2.5 px at the LFW scale
    assert 600 <= a.box.left and a.box.right <= 1080 and 250 <= a.box.top and a.box.bottom <= 730


@needs_data
def test_lfw_pairs():
    pairs = lfw_pairs(DATA)
    assert len(pairs) == 6000
    assert sum(p[2] for p in pairs) == 3000
    assert sorted({p[3] for p in pairs}) == list(range(10))
    for k in range(10):
        fold = [p for p in pairs if p[3] == k]
        assert len(fold) == 600 and sum(p[2] for p in fold) == 300
    a, b, same, fold = pairs[0]
    assert (a.name, b.name, same, fold) == ("Abel_Pacheco_0001.jpg", "Abel_Pacheco_0004.jpg", True, 0)
    a, b, same, fold = pairs[300]
    assert (a.name, b.name, same, fold) == ("Abdel_Madi_Shabneh_0001.jpg", "Dean_Barker_0001.jpg", False, 0)
    assert all(p[0].parent.name == p[0].name.rsplit("_", 1)[0] for p in pairs[:600])
    assert all(p[0].is_file() and p[1].is_file() for p in pairs)
    assert lfw_pairs(FACES / "lfw") == pairs  # the LFW folder itself works too


@needs_data
def test_reference_model_separates_same_from_different():
    pairs = lfw_pairs(DATA)
    fold0 = [p for p in pairs if p[3] == 0]
    subset = fold0[:10] + fold0[300:310]  # 10 matched + 10 mismatched
    model = ReferenceModel()
    cos = {True: [], False: []}
    dist = {True: [], False: []}
    for a_path, b_path, same, _ in subset:
        da = model.descriptor(F.align_face(a_path))
        db = model.descriptor(F.align_face(b_path))
        assert da.shape == (128,)
        ea, eb = da / np.linalg.norm(da), db / np.linalg.norm(db)
        cos[same].append(float(ea @ eb))
        dist[same].append(float(np.linalg.norm(da - db)))
    assert np.mean(cos[True]) > np.mean(cos[False]) + 0.07, cos
    # dlib's own rule: euclidean distance < 0.6 means same person
    correct = sum(d < 0.6 for d in dist[True]) + sum(d >= 0.6 for d in dist[False])
    assert correct >= 17, dist
    # embed() is the L2-normalised descriptor
    e = model.embed(F.align_face(subset[0][0]))
    assert e.shape == (128,) and abs(np.linalg.norm(e) - 1) < 1e-5
