"""The Classify tab: any image through a CIFAR-10 model."""

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
