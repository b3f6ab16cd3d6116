import gzip
import time

import pytest
import torch

from arcdemo import data
from arcdemo.data import (
    DatasetMissingError,
    builtin,  # noqa: F401 - data.builtin is patched below
    cutmix,
    load_split,
    mixup,
    random_crop_flip,
    read_idx,
    read_image_folder,
)
from tests.conftest import require_data


def test_mnist_idx_files_load_with_known_labels(mnist_root):
    train = load_split("mnist", "train")
    test = load_split("mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the famous first digits
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.class_names == tuple("0123456789")


def test_read_idx_rejects_truncated_files(tmp_path):
    good = tmp_path / "x-idx1-ubyte.gz"
    with gzip.open(good, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(range(5)))
    assert read_idx(good).tolist() == [0, 1, 2, 3, 4]
    bad = tmp_path / "y-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + bytes(range(5)))
    with pytest.raises(ValueError, match="header says"):
        read_idx(bad)


def test_cifar10_image_folder_in_official_order_and_cached(tmp_path, monkeypatch):
    folder = require_data("cifar10", "test")
    monkeypatch.setenv("ARCDEMO_CACHE_DIR", str(tmp_path))
    first = load_split("cifar10", "test")
    assert first.images.shape == (10000, 3, 32, 32)
    assert first.class_names == data.CIFAR10_CLASSES
    assert torch.bincount(first.labels).tolist() == [1000] * 10
    # the per-channel mean of the test split is the published one to 3 decimals
    mean = first.images.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4942, 0.4851, 0.4504]), atol=2e-3)
    start = time.perf_counter()
    second = load_split("cifar10", "test")
    assert time.perf_counter() - start < 2.0
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    # a corrupt cache is rebuilt, never trusted
    cache_file = next(tmp_path.glob("cifar10-test-*.safetensors"))
    cache_file.write_bytes(b"garbage")
    assert torch.equal(load_split("cifar10", "test").labels, first.labels)
    assert folder.exists()


def test_generic_image_folder_reads_grey_pgm_and_resizes():
    orl = require_data("faces", "orl")
    split = read_image_folder(orl, size=32, channels=1)
    assert split.images.shape == (400, 1, 32, 32)
    assert len(split.class_names) == 40 and torch.bincount(split.labels).tolist() == [10] * 40


def test_missing_dataset_names_the_path_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCDEMO_DATA_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ARCDEMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(data.builtin, "_download_mnist", lambda raw: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DatasetMissingError) as info:
        load_split("mnist", "test")
    assert "nowhere" in str(info.value) and "ARCDEMO_DATA_ROOT" in str(info.value)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_split("imagenet", "test")


def test_random_crop_flip_is_per_sample_and_keeps_content():
    generator = torch.Generator().manual_seed(0)
    images = torch.arange(64 * 3 * 8 * 8, dtype=torch.float32).view(64, 3, 8, 8)
    out = random_crop_flip(images, generator, padding=2, flip=True)
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    seen = set()
    for n in range(64):  # every output is some crop of its own padded input, possibly mirrored
        matches = [
            (dy, dx, f)
            for dy in range(5)
            for dx in range(5)
            for f in (False, True)
            if torch.equal(
                out[n],
                (padded[n, :, dy : dy + 8, dx : dx + 8].flip(2) if f else padded[n, :, dy : dy + 8, dx : dx + 8]),
            )
        ]
        assert matches, f"sample {n} is not a crop of its input"
        seen.add(matches[0])
    assert len(seen) > 10, "crops/flips must differ between samples of one batch"


def test_mixup_and_cutmix_mix_with_partner_labels():
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    x = torch.stack([torch.full((1, 4, 4), float(i)) for i in range(8)])
    y = torch.arange(8)
    mixed, partner, lam = mixup(x, y, generator, alpha=1.0)
    assert 0 <= lam <= 1
    assert torch.allclose(mixed[:, 0, 0, 0], lam * y.float() + (1 - lam) * partner.float())
    mixed, partner, kept = cutmix(x, y, generator, alpha=1.0)
    for n in range(8):
        values = set(mixed[n].unique().tolist())
        assert values <= {float(y[n]), float(partner[n])}
        own_fraction = (mixed[n] == y[n]).float().mean().item() if y[n] != partner[n] else 1.0
        assert own_fraction == pytest.approx(kept) or y[n] == partner[n]


def test_classes_keeps_and_relabels_in_the_given_order():
    import torch

    from arcdemo.data import Split

    split = Split(
        torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1), torch.tensor([0, 1, 2, 1, 0, 2]), ("a", "b", "c")
    )
    kept = split.classes([2, 0])
    assert kept.class_names == ("c", "a")
    assert kept.labels.tolist() == [1, 0, 1, 0] and kept.images.flatten().tolist() == [0, 2, 4, 5]
