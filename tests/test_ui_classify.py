"""The Classify tab: any image through a CIFAR-10 model, a face photo through the ORL people model."""

from __future__ import annotations

from PIL import Image

from arcdemo.catalog import CIFAR10_CLASSES
from arcdemo.ui.predict import predict
from tests.helpers import TinyWorld, png_bytes


def test_classify_any_image_with_the_cifar_model(tiny_world: TinyWorld) -> None:
    photo = png_bytes(Image.new("CMYK", (640, 480), (0, 80, 200, 10)), format="JPEG")
    prediction = predict(photo, "cifar10-tiny-3d")
    assert set(prediction.probabilities) == set(CIFAR10_CLASSES)
    assert prediction.preview.shape == (160, 160, 3)


def test_a_face_photo_lands_among_orl_people_and_a_faceless_one_gets_a_sentence(tmp_path, monkeypatch) -> None:
    """The shipped ORL sphere: a held-out ORL photo is aligned first and lands in its own person's region."""
    import pytest

    from arcdemo.inputs import InputError
    from tests.conftest import REPO, require_data

    monkeypatch.setenv("ARCDEMO_CHECKPOINTS", str(REPO / "checkpoints"))
    photo = require_data("faces", "orl", "s7", "9.pgm")  # photo 9: held out from training
    prediction = predict(str(photo), "orl-arcface-3d")
    assert prediction.label == "s7" and len(prediction.angles) == 40
    assert prediction.angles[0][0] == "s7"  # the nearest centre is the predicted person's
    assert prediction.preview.shape == (560, 560, 3)  # the aligned 112 px crop the model saw, enlarged
    wall = tmp_path / "wall.png"
    Image.new("RGB", (300, 300), (90, 90, 90)).save(wall)
    with pytest.raises(InputError, match="This model places faces"):
        predict(str(wall), "orl-arcface-3d")
