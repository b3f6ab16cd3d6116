"""Take a model home: ONNX graphs of a checkpoint's embedding and logits, with the card's preprocessing inside.

Each graph takes what the app's models take, uint8 images (N, C, H, W) with N free, and does the normalisation
itself, so a consumer needs no constant from this project; the ONNX metadata still names them (mean, std, input
size, channel order, class names, loss, test-time views) for anyone who feeds floats or wants to know. The
embedding graph returns the raw embedding (the cosine of two L2-normalised ones is the similarity the app scores);
the logits graph returns the head's margin-free logits, whose argmax is the model's prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from arcdemo.model import EmbeddingModel

OPSET = 18


class _Normalised(nn.Module):
    """uint8 images → the model's normalised float input → its backbone (and head)."""

    def __init__(self, model: EmbeddingModel, logits: bool) -> None:
        super().__init__()
        mean, std = model.spec.mean_std
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255.0)
        self.backbone, self.head, self.logits = model.backbone, model.head, logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        embeddings = self.backbone((images.float() - self.mean) / self.std)
        return self.head.logits(embeddings) if self.logits else embeddings


def metadata(model: EmbeddingModel, card: dict, output: str) -> dict[str, str]:
    """What the graph's consumer must know, as ONNX metadata (strings)."""
    spec = model.spec
    mean, std = spec.mean_std
    config = card.get("config", {})
    return {
        "arcdemo.output": output,
        "arcdemo.input": f"uint8 images (N, {spec.in_channels}, {spec.image_size}, {spec.image_size}), "
                         f"{'grey' if spec.in_channels == 1 else 'RGB'}; normalised inside the graph",
        "arcdemo.mean": json.dumps(mean), "arcdemo.std": json.dumps(std),
        "arcdemo.image_size": str(spec.image_size),
        "arcdemo.class_names": json.dumps(list(spec.class_names)) if output == "logits" else "[]",
        "arcdemo.model_spec": json.dumps({k: v for k, v in spec.to_json().items() if k != "class_names"}),
        "arcdemo.test_time_views": json.dumps({"flip": bool(config.get("flip_tta")),
                                               "shift": bool(config.get("shift_tta"))}),
        "arcdemo.preset": str(card.get("preset")),
    }


def export_onnx(model: EmbeddingModel, card: dict, out: Path) -> list[Path]:
    """Write ``<out>.embedding.onnx`` and ``<out>.logits.onnx``; returns their paths."""
    import onnx  # the onnx extra (with onnxscript, which torch's exporter uses)

    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    spec = model.spec
    example = torch.zeros(2, spec.in_channels, spec.image_size, spec.image_size, dtype=torch.uint8)
    written = []
    for output in ("embedding", "logits"):
        path = out.with_name(f"{out.name}.{output}.onnx")
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.onnx.export(
            _Normalised(model, logits=output == "logits").eval(), (example,), str(path), input_names=["images"],
            output_names=[output], dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=OPSET,
            dynamo=True, external_data=False, verbose=False,
        )
        graph = onnx.load(str(path))
        for key, value in metadata(model, card, output).items():
            graph.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(graph)
        onnx.save(graph, str(path))
        written.append(path)
    return written


def export_embeddings(model: EmbeddingModel, images: torch.Tensor, labels: torch.Tensor, class_names: tuple[str, ...],
                      out: Path, tta: dict[str, bool]) -> list[Path]:
    """A split's embeddings out: ``embeddings.safetensors`` (unit embeddings, labels, predictions), and the
    ``vectors.tsv`` + ``metadata.tsv`` pair TensorBoard's projector loads (a header row, then one line a point).
    Predictions are -1 where the split's classes are not the model's (a face model's held-out identities)."""
    from safetensors.torch import save_file

    probabilities, unit = model.predict(images, flip_tta=tta.get("flip", False), shift_tta=tta.get("shift", False))
    known = tuple(model.spec.class_names) == tuple(class_names)
    predictions = probabilities.argmax(1) if known else torch.full_like(labels, -1)
    out.mkdir(parents=True, exist_ok=True)
    tensors = out / "embeddings.safetensors"
    save_file({"embeddings": unit.float().contiguous(), "labels": labels.cpu(), "predictions": predictions.cpu()},
              str(tensors), metadata={"class_names": json.dumps(list(class_names))})
    vectors, meta = out / "vectors.tsv", out / "metadata.tsv"
    vectors.write_text("\n".join("\t".join(f"{v:.6f}" for v in row) for row in unit.tolist()) + "\n")
    names = lambda index: class_names[index] if 0 <= index < len(class_names) else "-"  # noqa: E731
    meta.write_text("label\tprediction\n" + "".join(
        f"{names(int(y))}\t{names(int(p))}\n" for y, p in zip(labels.tolist(), predictions.tolist())))
    return [tensors, vectors, meta]
