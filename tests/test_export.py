"""ONNX export through the CLI: onnxruntime gives PyTorch's embeddings and predictions on real test images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from arcdemo.checkpoints import load_checkpoint
from arcdemo.cli import main
from arcdemo.data import load_split, resize_images
from arcdemo.faces.verify import FACE_MODEL
from tests.conftest import REPO, require_data

ort = pytest.importorskip("onnxruntime")


def real_images(dataset: str, count: int = 64) -> torch.Tensor:
    if dataset == "faces":
        from arcdemo.faces.align import align_face

        lfw = require_data("faces", "lfw")
        photos = sorted(lfw.glob("*/*.jpg"))[:count]
        return torch.stack([torch.tensor(align_face(p).crop).permute(2, 0, 1) for p in photos])  # crops are read-only
    require_data({"mnist": "MNIST", "cifar10": "cifar10"}[dataset])
    return load_split(dataset, "test").subset(count, seed=0).images


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-arcface-128d", "cifar10-arcface-512d", FACE_MODEL])
def test_onnx_runs_what_pytorch_runs(name, tmp_path, capsys):
    code = main(["export", "--checkpoint", name, "--out", str(tmp_path / name)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    embedding, logits = (ort.InferenceSession(path) for path in result["files"])
    model, card = load_checkpoint(REPO / "checkpoints" / name)
    images = real_images(model.spec.dataset)
    if model.spec.dataset == "faces":
        images = resize_images(images, model.spec.image_size)
    with torch.no_grad():
        expected = model.embed(images).numpy()
        expected_logits = model.head.logits(model.embed(images)).numpy()
    got = embedding.run(None, {"images": images.numpy()})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.9999
    got_logits = logits.run(None, {"images": images[:7].numpy()})[0]  # another batch size: the axis is free
    assert (got_logits.argmax(1) == expected_logits[:7].argmax(1)).all()
    meta = embedding.get_modelmeta().custom_metadata_map
    assert json.loads(meta["arcdemo.mean"]) and meta["arcdemo.image_size"] == str(model.spec.image_size)
    assert json.loads(logits.get_modelmeta().custom_metadata_map["arcdemo.class_names"]) == list(model.spec.class_names)


def test_export_of_a_bad_checkpoint_is_a_sentence(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["export", "--checkpoint", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid JSON card" in err


def test_embed_writes_what_the_projector_reads(tmp_path, capsys):
    require_data("MNIST")
    out = tmp_path / "points"
    assert main(["embed", "--checkpoint", "mnist-arcface-3d", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["points"] == 10_000 and result["split"] == "mnist test"
    from safetensors import safe_open

    with safe_open(str(out / "embeddings.safetensors"), framework="pt") as f:
        embeddings, labels, predictions = (f.get_tensor(k) for k in ("embeddings", "labels", "predictions"))
        names = json.loads(f.metadata()["class_names"])
    assert embeddings.shape == (10_000, 3) and torch.allclose(embeddings.norm(dim=1), torch.ones(10_000), atol=1e-5)
    card = json.loads((REPO / "checkpoints" / "mnist-arcface-3d.json").read_text())
    assert (predictions == labels).float().mean().item() == pytest.approx(card["metrics"]["accuracy"], abs=1e-4)
    vectors = (out / "vectors.tsv").read_text().splitlines()
    meta = (out / "metadata.tsv").read_text().splitlines()
    assert len(vectors) == 10_000 and len(meta) == 10_001 and meta[0] == "label\tprediction"
    assert meta[1].split("\t")[0] == names[int(labels[0])] and len(vectors[0].split("\t")) == 3
    assert main(["embed", "--checkpoint", "mnist-arcface-3d", "--split", "val", "--out", str(out)]) == 2
