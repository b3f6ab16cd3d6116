"""Uploads and drawings become model inputs: MNIST-style digits, any image mode, sentences for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REAL_DATA, drawn_one, png_bytes, sketch_value


def test_sketch_becomes_an_mnist_digit() -> None:
    from arcdemo.inputs import mnist_like

    field = mnist_like(sketch_value(drawn_one()))
    assert field.shape == (28, 28) and field.dtype == np.uint8 and field.max() == 255
    rows, cols = np.nonzero(field)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20  # fits the 20×20 box
    assert rows.max() - rows.min() + 1 == 20  # the long side fills it
    weights = field.astype(float)
    centre = [(weights.sum(axis=axis) * np.arange(28)).sum() / weights.sum() for axis in (1, 0)]
    assert np.allclose(centre, 14.0, atol=0.75)  # centred by centre of mass, at (14, 14) as in MNIST
    assert field[0].max() == 0 and field[:, 0].max() == 0  # a border of background remains


def test_mnist_preparation_reproduces_mnist_digits() -> None:
    """An MNIST digit drawn big and dark-on-white (as on the Sketchpad) comes back close to the original."""
    from arcdemo.data import read_idx
    from arcdemo.inputs import mnist_like

    images = read_idx(REAL_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:20]
    correlations = []
    for digit in images:
        drawing = 255 - np.kron(digit, np.ones((12, 12), np.uint8))  # 336×336, black ink on white
        rebuilt = mnist_like(drawing).astype(float)
        correlations.append(np.corrcoef(rebuilt.ravel(), digit.astype(float).ravel())[0, 1])
    assert np.median(correlations) > 0.85, correlations


def test_either_polarity_and_transparent_ink_are_read() -> None:
    from arcdemo.inputs import mnist_like

    white_on_black = 255 - drawn_one()[..., :3]
    transparent = np.zeros((200, 200, 4), np.uint8)
    transparent[40:160, 90:110, 3] = 255  # black ink (RGB 0) only where alpha is opaque
    reference = mnist_like(sketch_value(drawn_one(200)))
    assert np.abs(mnist_like(white_on_black).astype(int) - mnist_like(drawn_one()).astype(int)).max() == 0
    assert mnist_like({"composite": transparent}).max() == 255
    assert reference.max() == 255


@pytest.mark.parametrize(
    "value",
    [None, sketch_value(None), {"background": None, "layers": [], "composite": None},
     sketch_value(np.full((336, 336, 4), 255, np.uint8)), sketch_value(np.full((336, 336, 4), 128, np.uint8)),
     np.zeros((50, 50), np.uint8)],
    ids=["none", "composite-none", "all-none", "white", "grey", "black"],
)
def test_empty_or_blank_sketch_says_so(value: object) -> None:
    from arcdemo.inputs import InputError, mnist_like

    with pytest.raises(InputError, match="empty"):
        mnist_like(value)


def _mode_image(mode: str) -> Image.Image:
    rgb = Image.new("RGB", (64, 48), (200, 30, 30))
    if mode == "I;16":
        return Image.fromarray(np.full((48, 64), 65535, np.uint16))
    if mode == "P-transparent":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image
    if mode in ("LAB", "HSV"):
        return Image.new(mode, (64, 48))
    return rgb.convert(mode)


@pytest.mark.parametrize(
    "mode", ["L", "1", "P", "P-transparent", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]
)
def test_any_image_mode_becomes_rgb_32(mode: str) -> None:
    from arcdemo.inputs import square_image

    tensor = square_image(_mode_image(mode), 32)
    assert tuple(tensor.shape) == (3, 32, 32) and str(tensor.dtype) == "torch.uint8"


def test_sixteen_bit_and_transparency_are_scaled_and_flattened() -> None:
    from arcdemo.inputs import square_image

    white16 = Image.fromarray(np.full((40, 40), 65535, np.uint16))
    assert white16.mode.startswith("I;16")
    assert int(square_image(white16, 32).min()) == 255  # 16-bit full scale is white, not clipped noise
    clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert int(square_image(clear, 32).min()) == 255  # transparent is paper, not black
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red
    red = square_image(cmyk, 32)
    assert int(red[0].min()) > 200 and int(red[1].max()) < 60
    for mode in ("1", "P", "LA", "RGBA", "CMYK"):  # big images take the reduce-first path, whatever the mode
        big = Image.new("RGB", (1800, 1300), (10, 200, 30)).convert(mode)
        assert abs(float(square_image(big, 32)[1].float().mean()) - (200 if mode in ("P", "RGBA", "CMYK") else 124)) < 3
    wide = Image.new("RGB", (3000, 10), (0, 0, 255))
    assert tuple(square_image(wide, 32).shape) == (3, 32, 32)  # extreme aspect ratio: centre square


def test_bad_files_get_sentences(tmp_path: Path) -> None:
    from arcdemo.inputs import InputError, check_image_file, open_image, square_image

    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(Image.new("RGB", (300, 300), "red"))[:200])
    bomb = png_bytes(Image.new("1", (20000, 20000)))  # 400 MP in a few hundred kB
    cases = {
        str(text): "not an image", str(empty): "empty", str(truncated): "damaged|truncated|could not be read",
        str(tmp_path / "missing.png"): "does not exist", bomb: "limit",
    }
    for source, message in cases.items():
        with pytest.raises(InputError, match=message):
            square_image(source, 32)
    with pytest.raises(InputError, match="not an image"):
        check_image_file(text)
    assert check_image_file(truncated) == (300, 300)  # the header is enough to admit it; decoding reports damage
    with pytest.raises(InputError, match="shape"):
        open_image(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(InputError):
        open_image(12345)


def test_model_input_shapes() -> None:
    from arcdemo.inputs import model_input

    assert tuple(model_input(drawn_one(), "mnist", 1, 28).shape) == (1, 1, 28, 28)
    assert tuple(model_input(drawn_one(), "cifar10", 3, 32).shape) == (1, 3, 32, 32)
