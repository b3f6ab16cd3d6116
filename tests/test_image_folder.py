"""Your own images: class folders of any size and mode → splits, a trained model (CLI, ORL as an ImageFolder),
and the Train tab's zip with its sentences for bad archives."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arcdemo.catalog import IMAGE_FOLDER
from arcdemo.data import HELD_OUT_FRACTION, ImageFolderError, channel_statistics, image_folder_layout
from arcdemo.inputs import InputError, model_input, unpack_image_zip
from tests.conftest import require_data
from tests.test_cli import run_cli


def _image(path: Path, size: tuple[int, int], mode: str, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode in ("L", "P") else (value, 255 - value, 40)
    Image.new(mode, size, colour).save(path)
    return path


def _folder(root: Path, classes: dict[str, int], mode: str = "RGB", sizes=((40, 30), (64, 64), (90, 50))) -> Path:
    for name, count in classes.items():
        for i in range(count):
            _image(root / name / f"{name}_{i}.png", sizes[i % len(sizes)], mode, 20 + 20 * i)
    return root


def test_class_folders_split_reproducibly_at_the_median_side(tmp_path: Path) -> None:
    root = _folder(tmp_path / "set", {"cat": 10, "dog": 5})
    (root / "cat" / "notes.txt").write_text("not an image, not counted")
    (root / "README").write_text("beside the classes")
    layout = image_folder_layout(root)
    assert layout.class_names == ("cat", "dog") and layout.channels == 3
    assert layout.image_size == 50  # shorter sides 30, 64, 50 → median 50, within 16-64
    per_class = {c: [sum(1 for _, label in layout.files[s] if label == i) for s in ("train", "test")]
                 for i, c in enumerate(layout.class_names)}
    assert per_class == {"cat": [8, 2], "dog": [4, 1]}  # HELD_OUT_FRACTION of each class, at least one
    assert HELD_OUT_FRACTION == 0.2
    again = image_folder_layout(root)
    assert again.files == layout.files  # the same files held out every time
    _image(root / "cat" / "cat_new.png", (64, 64), "RGB", 7)
    grown = image_folder_layout(root)
    old_test = {p for p, _ in layout.files["test"]}
    assert old_test - {p for p, _ in grown.files["test"]} <= {p for p, _ in layout.files["test"] if "cat" in p.name}
    train = layout.split("train")
    assert train.images.shape == (12, 3, 50, 50) and train.images.dtype == torch.uint8
    mean, std = channel_statistics(train.images)
    assert len(mean) == 3 and all(0 < m < 1 for m in mean) and all(s > 0 for s in std)


def test_train_and_test_folders_and_channels_from_the_modes(tmp_path: Path) -> None:
    root = tmp_path / "set"
    _folder(root / "train", {"a": 3, "b": 3}, mode="L")
    _folder(root / "test", {"a": 1, "b": 1}, mode="L")
    layout = image_folder_layout(root, image_size=24)
    assert layout.channels == 1 and layout.image_size == 24 and "test/" in layout.held_out
    assert [len(layout.files[s]) for s in ("train", "test")] == [6, 2]
    assert layout.split("test").images.shape == (2, 1, 24, 24)
    _image(root / "train" / "a" / "colour.png", (32, 32), "RGB", 100)
    assert image_folder_layout(root).channels == 3  # one colour image makes the set RGB


def test_a_centred_square_is_what_training_and_an_upload_both_see(tmp_path: Path) -> None:
    """A wide image: the training reader and the app's upload path crop and resize it the same way."""
    array = np.zeros((40, 120, 3), np.uint8)
    array[:, 40:80] = 200  # only the centre square is bright
    root = tmp_path / "set"
    for name in ("a", "b"):
        for i in range(2):
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / name / f"{i}.png")
    layout = image_folder_layout(root, image_size=32)
    trained_on = layout.split("train").images[0]
    uploaded = model_input(str(root / "a" / "0.png"), IMAGE_FOLDER, 3, 32)[0]
    assert int(trained_on.float().mean()) > 190  # the dark sides were cropped away, not squeezed in
    assert (trained_on.int() - uploaded.int()).abs().max() <= 1


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda root: _folder(root, {"only": 4}), "at least 2 class folders"),
        (lambda root: _folder(root, {"a": 4, "b": 1}), "class 'b' has 1 image"),
        (lambda root: (_folder(root, {"a": 4, "b": 3}), (root / "b" / "bad.jpg").write_bytes(b"text")),
         "b/bad.jpg is not an image"),
        (lambda root: (_folder(root / "train", {"a": 2, "b": 2}), _folder(root / "test", {"a": 1, "c": 1})),
         "must hold the same classes"),
        (lambda root: (_folder(root, {"a": 3}), (root / "b").mkdir()), "class 'b' has 0 images"),
    ],
)
def test_folders_that_cannot_be_trained_on_say_why(tmp_path: Path, build, message: str) -> None:  # noqa: ANN001
    root = tmp_path / "set"
    root.mkdir()
    build(root)
    with pytest.raises(ImageFolderError, match=message):
        image_folder_layout(root)


def _zip(path: Path, folder: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + str(file.relative_to(folder)))
        archive.writestr("__MACOSX/._junk", b"resource fork")
    return path


def test_a_zip_unpacks_once_and_steps_into_its_top_folder(tmp_path: Path) -> None:
    source = _folder(tmp_path / "set", {"cat": 3, "dog": 3})
    archive = _zip(tmp_path / "mine.zip", source, prefix="my pets/")
    root = unpack_image_zip(archive, tmp_path / "uploads")
    assert root.name == "my pets" and image_folder_layout(root).class_names == ("cat", "dog")
    assert unpack_image_zip(archive, tmp_path / "uploads") == root  # same archive, same folder
    assert len(list((tmp_path / "uploads").iterdir())) == 1
    _zip(archive, _folder(tmp_path / "more", {"cat": 3, "dog": 3, "owl": 3}), prefix="my pets/")  # same name
    assert image_folder_layout(unpack_image_zip(archive, tmp_path / "uploads")).class_names == ("cat", "dog", "owl")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda tmp: tmp / "absent.zip", "Upload a .zip"),
        (lambda tmp: (tmp / "x.zip").write_bytes(b"not a zip") and tmp / "x.zip", "x.zip is not a zip archive"),
        (lambda tmp: _zip(tmp / "one.zip", _folder(tmp / "one", {"cat": 3})), "one.zip: .*at least 2 class folders"),
        (lambda tmp: _evil(tmp / "evil.zip"), "outside its folder"),
    ],
)
def test_bad_zips_are_sentences(tmp_path: Path, build, message: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=message):
        unpack_image_zip(build(tmp_path), tmp_path / "uploads")


def _evil(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../escape/a.png", b"x")
    return path


def test_orl_as_an_image_folder_trains_evaluates_and_classifies(tmp_path: Path) -> None:
    """The CLI end to end on ORL (40 people, grey 92×112 PGM): 8 photos each to train on, 2 held out."""
    orl = require_data("faces", "orl")
    out = tmp_path / "orl"
    result = run_cli("train", "--dataset", "imagefolder", "--data-dir", str(orl), "--loss", "arcface",
                     "--margin", "0.2", "--scale", "16", "--dim", "32", "--epochs", "30", "--batch-size", "32",
                     "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["samples"] == 80 and summary["accuracy"] >= 0.85, summary  # chance is 2.5%; measured 96%
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["model"]["in_channels"] == 1 and card["model"]["image_size"] == 64
    assert card["model"]["normalisation"] is not None and card["config"]["data_dir"] == str(orl.resolve())
    evaluated = json.loads(run_cli("eval", "--checkpoint", str(out)).stdout)
    assert evaluated["accuracy"] == pytest.approx(summary["accuracy"])
    from arcdemo.checkpoints import load_checkpoint

    model, _ = load_checkpoint(out)
    photo = sorted((orl / "s7").glob("*.pgm"))
    probabilities, _ = model.predict(torch.cat([model_input(str(p), IMAGE_FOLDER, 1, 64) for p in photo]))
    assert (probabilities.argmax(1) == model.spec.class_names.index("s7")).float().mean() >= 0.8
