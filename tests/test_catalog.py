"""The catalog is the one place a dataset or a loss is added: each addition here is what a contributor writes, and
the app and the trainer pick it up with nothing else changed."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from arcdemo import catalog
from tests.conftest import REPO


def _components(label: str) -> list:
    from arcdemo.ui import build_demo

    return [block for block in build_demo().blocks.values() if getattr(block, "label", None) == label]


@pytest.fixture
def toy_dataset(monkeypatch: pytest.MonkeyPatch) -> str:
    """One catalog entry and one reader: two classes of 32×32 squares, bright or dark."""
    from arcdemo.data import READERS, Split, register_reader

    monkeypatch.setitem(catalog.DATASETS, "toy", catalog.DatasetInfo(
        "toy", "Toy squares", classes=("dark", "bright"), normalisation=((0.5,), (0.25,)), tabs=("train",),
    ))

    def read_toy(split: str, **_: object) -> Split:
        generator = torch.Generator().manual_seed(0 if split == "train" else 1)
        labels = torch.arange(64) % 2
        images = (labels.view(-1, 1, 1, 1) * 160 + torch.randint(0, 90, (64, 1, 32, 32), generator=generator))
        return Split(images.to(torch.uint8), labels, ("dark", "bright"))

    monkeypatch.setitem(READERS, "toy", READERS.get("toy"))  # restored (removed) after the test
    register_reader("toy")(read_toy)
    return "toy"


def test_a_new_dataset_is_one_catalog_entry_and_one_reader(toy_dataset: str) -> None:
    from arcdemo.train import DoneEvent, TrainConfig, train
    from arcdemo.ui.tabs import train as train_tab

    assert ("Toy squares", "toy") in train_tab.dataset_choices()
    (dataset,) = _components("Dataset")
    assert ("Toy squares", "toy") in dataset.choices  # the built Train tab offers it
    config = TrainConfig(dataset="toy", dim=2, epochs=1, batch_size=16, sample_every=0, device="cpu")
    done = [event for event in train(config) if isinstance(event, DoneEvent)][-1]
    assert done.model.spec.dataset == "toy" and done.model.spec.class_names == ("dark", "bright")
    assert done.model.spec.backbone == "cifar_net"  # the catalog's default backbone


def test_a_new_loss_that_fits_psi_is_one_catalog_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from arcdemo.heads import build_head
    from arcdemo.ui.tabs import train as train_tab

    monkeypatch.setitem(catalog.LOSSES, "arcface-lite", catalog.LossInfo(
        "arcface-lite", "ArcFace lite", 0.1, 16.0, (0.0, 0.5), (1.0, 64.0), "additive angular margin m2 (θ + m2)",
        margin_unit="rad", psi="m2",
    ))
    assert ("ArcFace lite", "arcface-lite") in train_tab.loss_choices()
    loss, second = _components("Loss")[0], _components("Second loss")[0]
    assert ("ArcFace lite", "arcface-lite") in loss.choices and ("ArcFace lite", "arcface-lite") in second.choices
    head = build_head("arcface-lite", 3, 10)
    assert (head.m1, head.m2, head.m3, head.scale) == (1.0, 0.1, 0.0, 16.0)
    margin, scale = train_tab.loss_controls("arcface-lite")
    assert (margin["value"], margin["maximum"], scale["value"]) == (0.1, 0.5, 16.0)
    config = train_tab.training_config(train_tab.TrainSettings(loss="arcface-lite")).resolved()
    assert (config.margin, config.scale) == (0.1, 16.0)


def test_the_catalog_imports_nothing_heavy() -> None:
    code = "import sys, arcdemo.catalog; assert not {'torch', 'numpy', 'gradio'} & set(sys.modules), sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_dataset_and_loss_is_complete() -> None:
    from arcdemo.backbones import BACKBONES

    for info in catalog.DATASETS.values():
        assert info.backbone[0] in BACKBONES and len(info.splits) == 2, info.name
        assert info.normalisation is not None or info.kind == catalog.FOLDER, info.name
    for info in catalog.LOSSES.values():
        assert info.head in ("cosine", "linear", "feature") and info.psi in (None, "m1", "m2", "m3"), info.name
        low, high = info.margin_range
        assert low <= info.margin <= high, info.name
