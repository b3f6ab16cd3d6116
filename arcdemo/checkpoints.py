"""Checkpoints: ``<name>.safetensors`` (weights) + ``<name>.json`` (the card). Nothing is ever unpickled.

The card carries the ``ModelSpec`` that rebuilds the modules, plus the training config, metrics, data, seed, wall
time and hardware, so a number quoted from a card can be traced to the run that made it.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from arcdemo import __version__
from arcdemo.catalog import FACE_NECK, checkpoints_dir
from arcdemo.model import EmbeddingModel, ModelSpec

CARD_FORMAT = "arcdemo-checkpoint"
CARD_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed or does not match its card."""


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, card) for a path given with or without its ``.safetensors``/``.json`` suffix."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


shipped_dir = checkpoints_dir  # where shipped checkpoints live (catalog.checkpoints_dir)


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    """What the numbers in a card were measured on."""
    info = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save_checkpoint(path: str | os.PathLike, model: EmbeddingModel, card: dict) -> tuple[Path, Path]:
    """Write weights and card; ``card`` adds to the spec/format/version/hardware fields filled in here."""
    weights_path, card_path = checkpoint_paths(path)
    full_card = {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "project_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(),
        **card,
        "model": model.spec.to_json(),
    }
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(weights_path, lambda temporary: save_file(state, str(temporary), metadata={"format": CARD_FORMAT}))
    write_card(card_path, full_card)
    return weights_path, card_path


def write_card(path: str | os.PathLike, card: dict) -> None:
    """Write a checkpoint's card atomically (e.g. again, once a face model's test metrics are in)."""
    _, card_path = checkpoint_paths(path)
    text = json.dumps(card, indent=2, default=float) + "\n"
    _atomic_write(card_path, lambda temporary: temporary.write_text(text))


def read_card(path: str | os.PathLike) -> dict:
    """The JSON card of a checkpoint, checked for format and a rebuildable model spec."""
    _, card_path = checkpoint_paths(path)
    if not card_path.exists():
        raise CheckpointError(f"checkpoint card {card_path} not found")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{card_path} is not a valid JSON card: {error}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or "model" not in card:
        raise CheckpointError(f"{card_path} is not an arcdemo checkpoint card")
    try:
        ModelSpec.from_json(card["model"])
    except TypeError as error:
        raise CheckpointError(f"{card_path}: model spec is malformed ({error})") from None
    return card


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[EmbeddingModel, dict]:
    """Rebuild the model from the card and load the weights strictly: any missing/extra/mis-shaped key fails."""
    weights_path, _ = checkpoint_paths(path)
    card = read_card(path)
    if not weights_path.exists():
        raise CheckpointError(f"checkpoint weights {weights_path} not found")
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file: {error}") from None
    try:
        model = EmbeddingModel(ModelSpec.from_json(card["model"]))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{weights_path}: card describes an unbuildable model ({error})") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path} does not match its card: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{weights_path} does not match its card: {key} has shape {tuple(tensor.shape)}, "
                f"the card's model needs {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state)
    return model.to(device).eval(), card


def find_checkpoint(name: str | os.PathLike) -> Path:
    """A checkpoint path as given, or else a bare name looked up among the shipped checkpoints."""
    path = Path(name)
    if checkpoint_paths(path)[1].exists() or path.parent != Path("."):
        return path
    return shipped_dir() / path


# backbones that hold another backbone whole: name → (the inner backbone, where its weights go)
WRAPPED_BACKBONES = {FACE_NECK: ("mobilefacenet", "backbone.face.")}


def initialise_from(model: EmbeddingModel, path: str | os.PathLike) -> list[str]:
    """Copy every weight of checkpoint ``path`` whose name and shape match ``model`` (a global depthwise kernel is
    resampled when the input size changed); returns the names copied.

    For two-stage recipes: features learned at high dimension, then a new low-D embedding layer and head (e.g. a
    3-D CIFAR-10 sphere, where a cosine head trained from scratch stalls), and for a face model continued on another
    list of people: the head's rows are then matched by class name. Fails unless the backbones match.
    """
    source, _ = load_checkpoint(find_checkpoint(path))
    inner = WRAPPED_BACKBONES.get(model.spec.backbone)
    wraps = inner is not None and source.spec.backbone == inner[0]
    if (source.spec.backbone != model.spec.backbone and not wraps) or source.spec.width != model.spec.width:
        raise CheckpointError(
            f"{path} holds a {source.spec.backbone} of width {source.spec.width}; this run builds a "
            f"{model.spec.backbone} of width {model.spec.width}"
        )
    target, weights = model.state_dict(), source.state_dict()
    if wraps:  # its whole backbone becomes the wrapped network (a frozen face model under a neck)
        weights = {k.replace("backbone.", inner[1], 1): v for k, v in weights.items() if k.startswith("backbone.")}
    matching = {k: v for k, v in weights.items() if k in target and target[k].shape == v.shape}
    matching |= {k: resample_kernel(v, target[k].shape[-2:]) for k, v in weights.items()
                 if k in target and k not in matching and _same_but_side(v.shape, target[k].shape)}
    if not wraps:
        matching |= {k: _rows_by_class(v, target[k], source.spec.class_names, model.spec.class_names)
                     for k, v in weights.items() if k.startswith("head.") and k in target and k not in matching
                     and _per_class(v.shape, target[k].shape, source.spec.num_classes, model.spec.num_classes)}
    model.load_state_dict(matching, strict=False)
    return list(matching)


def _per_class(source: torch.Size, target: torch.Size, source_classes: int, target_classes: int) -> bool:
    """A head tensor with the same rows per class (sub-centres) in both models, for other class lists."""
    return (len(source) == len(target) and source[1:] == target[1:] and source[0] % source_classes == 0
            and target[0] % target_classes == 0 and source[0] // source_classes == target[0] // target_classes)


def _rows_by_class(source: torch.Tensor, target: torch.Tensor, source_names: Sequence[str],
                   target_names: Sequence[str]) -> torch.Tensor:
    """``target`` with the rows of every class that ``source`` also has copied over by class name: a face model
    continued on more photos keeps the centres of the people it knew; new people keep their fresh rows."""
    per = source.shape[0] // len(source_names)
    row = {name: i for i, name in enumerate(source_names)}
    out = target.clone()
    for j, name in enumerate(target_names):
        if name in row:
            out[j * per:(j + 1) * per] = source[row[name] * per:(row[name] + 1) * per]
    return out


def _same_but_side(source: torch.Size, target: torch.Size) -> bool:
    """A depthwise conv kernel that differs only in its spatial side: MobileFaceNet's global depthwise conv, whose
    side is the input's / 16, when a run changes the input size."""
    return len(source) == len(target) == 4 and source[:2] == target[:2] and source[1] == 1 and min(source[-2:]) > 1


def resample_kernel(kernel: torch.Tensor, side: torch.Size) -> torch.Tensor:
    """A kernel spanning the whole feature map, resampled to another map side: bilinear between cell centres (the
    same place on the face at either input size), scaled by old cells / new cells and shifted so that each channel
    keeps its sum (a map of equal activations gives the same output at either size)."""
    cells = side[0] * side[1]
    resized = torch.nn.functional.interpolate(kernel.double(), size=tuple(side), mode="bilinear", align_corners=False)
    resized = resized * (kernel.shape[-2] * kernel.shape[-1]) / cells
    resized += (kernel.double().sum((-2, -1), keepdim=True) - resized.sum((-2, -1), keepdim=True)) / cells
    return resized.to(kernel.dtype)


@dataclass(frozen=True)
class TrainingState:
    """What resuming needs besides the weights: epochs done, the wall time and history so far, and the config the
    run was started with (a resume under another config would silently train something else)."""

    epochs_done: int
    wall_time_s: float = 0.0
    history: dict | None = None
    config: dict | None = None


def _atomic_write(path: Path, write) -> None:
    """``write(temporary)`` then rename over ``path``: a crash mid-write leaves the old file intact."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def save_training_state(
    path: Path, model: EmbeddingModel, optimizer: torch.optim.Optimizer, state: TrainingState
) -> None:
    """Weights + optimiser state in one safetensors file; everything else goes in its JSON metadata."""
    optim = optimizer.state_dict()
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    scalars: dict[str, dict] = {}
    for index, entry in optim["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    metadata = {"param_groups": json.dumps(optim["param_groups"]), "scalars": json.dumps(scalars),
                "epochs_done": str(state.epochs_done), "wall_time_s": repr(float(state.wall_time_s)),
                "history": json.dumps(state.history or {}), "config": json.dumps(state.config or {})}
    _atomic_write(Path(path), lambda temporary: save_file(tensors, str(temporary), metadata=metadata))


def load_training_state(path: Path, model: EmbeddingModel, optimizer: torch.optim.Optimizer,
                        config: dict | None = None) -> TrainingState:
    """Restore weights and optimiser from ``save_training_state``.

    ``config``: the config of the run resuming; a state saved under a different one is refused with the fields
    that differ (CheckpointError), because continuing it would mix two recipes in one model.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        param_groups = json.loads(metadata["param_groups"])
        scalars = json.loads(metadata["scalars"])
        saved = TrainingState(int(metadata["epochs_done"]), float(metadata.get("wall_time_s", 0.0)),
                              json.loads(metadata.get("history", "{}")), json.loads(metadata.get("config", "{}")))
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path} is not a usable resume state: {error}") from None
    if config is not None:
        saved_config = saved.config or {}
        changed = sorted(  # a field added since the state was saved is not a difference: such states stay resumable
            k for k in set(config) | set(saved_config) if k in saved_config and saved_config[k] != config.get(k)
        )
        if changed:
            was = ", ".join(f"{k} {saved_config.get(k)!r} → {config.get(k)!r}" for k in changed[:4])
            raise CheckpointError(
                f"{path} was saved by a run with another config ({was}); resume with the same options, "
                "or delete the file to start over"
            )
    model.load_state_dict({k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entry in scalars.items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    return saved
