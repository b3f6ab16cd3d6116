"""Command line: ``python -m arcdemo train|eval``. Progress on stderr, one JSON object on the last stdout line.

Bad input gets one clear line on stderr and exit code 2 (1 for a run that failed), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import fields
from pathlib import Path

from arcdemo.heads import LOSSES

EXIT_USAGE, EXIT_FAILED = 2, 1


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + exits; we want one line
        raise UsageError(message)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m arcdemo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model and write PATH.safetensors + PATH.json")
    train.add_argument("--dataset", required=True, help="mnist or cifar10")
    train.add_argument("--loss", default="arcface", help=", ".join(LOSSES))
    train.add_argument("--margin", type=_finite_float, help="the loss's margin (radians for angular margins)")
    train.add_argument("--scale", type=_finite_float, help="scale s (SupCon: 1/temperature)")
    train.add_argument("--dim", type=int, default=3, help="embedding dimension (≥ 2)")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="output path without suffix (default: runs/<dataset>-<loss>-<dim>d)")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=_finite_float)
    train.add_argument("--optimizer", default="sgd", help="sgd or adam")
    train.add_argument("--schedule", default="onecycle", help="onecycle or cosine")
    train.add_argument("--weight-decay", type=_finite_float, default=5e-4)
    train.add_argument("--margin-warmup-steps", type=int, default=-1, help="-1: one epoch for dim ≤ 3, else 0")
    train.add_argument("--m1", type=_finite_float, help="combined loss: multiplicative margin")
    train.add_argument("--m3", type=_finite_float, help="combined loss: additive cosine margin")
    train.add_argument("--subcentres", type=int, default=3)
    train.add_argument("--easy-margin", action="store_true")
    train.add_argument("--backbone", help="mnist_cnn, cifar_net or mobilefacenet")
    train.add_argument("--width", type=int)
    train.add_argument("--augment", choices=("on", "off"), help="default: on for cifar10, off for mnist")
    train.add_argument("--mixup", type=_finite_float, default=0.0)
    train.add_argument("--cutmix", type=_finite_float, default=0.0)
    train.add_argument("--train-subset", type=int, default=0)
    train.add_argument("--flip-tta", action="store_true")
    train.add_argument("--device", default="auto")
    train.add_argument("--resume", action="store_true", help="continue from OUT.resume.safetensors if present")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint on its dataset's test split")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--flip-tta", action="store_true")
    return parser


def _config_from(args: argparse.Namespace):
    from arcdemo.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["augment"] = None if args.augment is None else args.augment == "on"
    return TrainConfig(**values).resolved()


def _writable(stem: Path) -> None:
    """Fail before training, not after: the output folder must exist or be creatable, and be writable."""
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create output folder {stem.parent}: {error.strerror}") from None
    if not os.access(stem.parent, os.W_OK):
        raise UsageError(f"output folder {stem.parent} is not writable")
    for suffix in (".safetensors", ".json"):
        target = stem.with_name(stem.name + suffix)
        if target.is_dir():
            raise UsageError(f"output path {target} is a directory")


def command_train(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    from arcdemo.checkpoints import save_checkpoint
    from arcdemo.train import DoneEvent, EpochEvent, StepEvent, run_card, train

    try:
        config = _config_from(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    stem = Path(args.out or f"runs/{config.dataset}-{config.loss}-{config.dim}d")
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    _writable(stem)
    resume = stem.with_name(stem.name + ".resume.safetensors")
    rank = int(os.environ.get("RANK", "0"))
    bar = tqdm(total=None, disable=args.quiet or rank != 0, file=sys.stderr, unit="step", mininterval=1.0)
    done: DoneEvent | None = None
    for event in train(config, resume_path=resume if args.resume else None):
        if isinstance(event, StepEvent):
            bar.total = event.total_steps
            bar.n = event.step
            bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.3f}", acc=f"{event.train_accuracy:.3f}", refresh=False)
            bar.refresh()
        elif isinstance(event, EpochEvent):
            bar.write(f"epoch {event.epoch}: test accuracy {event.test_accuracy:.4f} ({event.elapsed_s:.0f} s)")
        elif isinstance(event, DoneEvent):
            done = event
    bar.close()
    if done is None or done.model is None:  # a non-zero DDP rank
        return {}
    save_checkpoint(stem, done.model, run_card(done))
    resume.unlink(missing_ok=True)
    metrics = {k: v for k, v in done.evaluation.metrics.items() if k != "confusion_matrix"}
    return {"checkpoint": str(stem), "dataset": config.dataset, "loss": config.loss, "dim": config.dim,
            "epochs": done.epochs_done, "wall_time_s": round(done.wall_time_s, 1), **metrics}


def command_eval(args: argparse.Namespace) -> dict:
    from arcdemo.checkpoints import CheckpointError, load_checkpoint
    from arcdemo.data import load_split
    from arcdemo.evaluate import evaluate_model, pair_eer

    try:
        model, card = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    dataset = model.spec.dataset
    split = load_split(dataset, "test")
    if split.class_names != model.spec.class_names:
        raise UsageError(f"checkpoint classes {model.spec.class_names} do not match the {dataset} test split")
    evaluation = evaluate_model(model, split, flip_tta=args.flip_tta)
    metrics = {k: v for k, v in evaluation.metrics.items() if k != "confusion_matrix"}
    metrics["pair_eer"] = pair_eer(evaluation.embeddings, evaluation.labels)
    return {"checkpoint": str(args.checkpoint), "dataset": dataset, "loss": model.spec.loss,
            "dim": model.spec.embedding_dim, **metrics}


def main(argv: list[str] | None = None) -> int:
    from arcdemo.data import DatasetMissingError

    try:
        args = build_parser().parse_args(argv)
        result = {"train": command_train, "eval": command_eval}[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DatasetMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # the last line of defence: one line, never a traceback
        from arcdemo.train import TrainingDiverged

        kind = "training diverged" if isinstance(error, TrainingDiverged) else type(error).__name__
        print(f"error: {kind}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if result:
        print(json.dumps(result))
    return 0
