"""Command line: ``python -m arcdemo train|eval|verify|calibrate|export|embed|points``. Progress on stderr,
one JSON object on the last stdout line.

Bad input gets one clear line on stderr and exit code 2 (1 for a run that failed); the traceback only with
``--debug`` or ``ARCDEMO_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import traceback
from dataclasses import fields
from pathlib import Path

from arcdemo.margins import LOSSES

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

    train = commands.add_parser("train", help="train a model and write OUT.safetensors + OUT.json")
    option = functools.partial(train.add_argument, default=argparse.SUPPRESS)  # only what is given overrides
    option("--preset", help="a named recipe from arcdemo.presets (writes runs/<preset> by default)")
    option("--dataset", help="mnist, cifar10, imagefolder (your class folders: --data-dir), or a face set: fiw, "
                             "celeba, fiw+celeba (required without --preset)")
    option("--data-dir", help="imagefolder: a folder of class folders, or train/ and test/ folders of them")
    option("--loss", help=", ".join(LOSSES) + " (default arcface)")
    option("--margin", type=_finite_float, help="the loss's margin (radians for angular margins)")
    option("--scale", type=_finite_float, help="scale s (SupCon: 1/temperature)")
    option("--dim", type=int, help="embedding dimension, ≥ 2 (default 3)")
    option("--epochs", type=int, help="default 3")
    option("--seed", type=int, help="default 0")
    option("--out", help="output path without suffix (default: runs/<dataset>-<loss>-<dim>d)")
    option("--batch-size", type=int, help="global batch (default 128)")
    option("--lr", type=_finite_float, help="peak learning rate (default 0.1 SGD, 3e-3 Adam)")
    option("--optimizer", help="sgd or adam (default sgd)")
    option("--schedule", help="onecycle or cosine (default onecycle)")
    option("--weight-decay", type=_finite_float)
    option("--margin-warmup-steps", type=int, help="-1: one epoch for dim ≤ 3, else 0")
    option("--m1", type=_finite_float, help="combined loss: multiplicative margin")
    option("--m3", type=_finite_float, help="combined loss: additive cosine margin")
    option("--subcentres", type=int)
    option("--easy-margin", action="store_true")
    option("--backbone", help="mnist_cnn, cifar_net or mobilefacenet")
    option("--width", type=int)
    option("--augment", choices=("on", "off"), help="default: on for cifar10, off for mnist")
    option("--mixup", type=_finite_float)
    option("--cutmix", type=_finite_float)
    option("--train-subset", type=int)
    option("--image-size", type=int, help="input side in px, resized from the stored images (default: as stored; "
                                          "imagefolder: the median shorter side within 16-64)")
    option("--dropout", type=_finite_float, help="mobilefacenet: share of features dropped before the embedding")
    option("--distill", type=_finite_float, help="face sets: weight of the pull toward dlib's pairwise cosines")
    option("--flip-tta", action="store_true")
    option("--shift-tta", action="store_true", help="also evaluate 1-px shifted views (with --flip-tta: 6 views)")
    option("--init-from", help="start from this checkpoint's matching weights (same backbone and width)")
    option("--device", help="auto, cpu or cuda")
    option("--amp", choices=("on", "off"), help="bfloat16 autocast (default: on CUDA only)")
    train.add_argument("--resume", action="store_true", help="continue from OUT.resume.safetensors if present")
    train.add_argument("--overwrite-shipped", action="store_true",
                       help="allow --out to replace a shipped checkpoint (checkpoints/NAME)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint on its dataset's test split (faces: LFW + ORL)")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--flip-tta", action="store_true", help="mirrored-image embedding added (faces: always)")
    evaluate.add_argument("--shift-tta", action="store_true", help="1-px shifted views added (not for faces)")
    evaluate.add_argument("--folds", type=int, nargs="+", help="faces: only these LFW folds (0-9; default all)")
    evaluate.add_argument("--pairs-per-fold", type=int, help="faces: only the first N pairs of each fold (quick look)")
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")

    verify = commands.add_parser("verify", help="are two face photos the same person? (one JSON line)")
    verify.add_argument("images", nargs=2, metavar="IMAGE")
    verify.add_argument("--model", choices=("arcface", "reference"), default="arcface",
                        help="arcface: ours (the shipped face model); reference: dlib's ResNet")
    verify.add_argument("--checkpoint", help="our face model (default: the shipped one)")
    verify.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")

    calibrate = commands.add_parser(
        "calibrate", help="face model: threshold, band and gallery rule on validation identities, then LFW + ORL")
    calibrate.add_argument("--checkpoint", required=True)
    calibrate.add_argument("--dataset", help="whose validation identities (default: the one it was trained on)")
    calibrate.add_argument("--cohort-size", type=int, default=None,
                           help="score pairs against each face's N nearest training identities (default: "
                                "arcdemo.faces.verify.COHORT_SIZE; 0: plain cosine)")
    export = commands.add_parser("export", help="a checkpoint's embedding and logits as ONNX graphs (uint8 input)")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--out", help="path without suffix (default: beside the checkpoint): OUT.embedding.onnx, "
                                      "OUT.logits.onnx")
    embed = commands.add_parser("embed", help="a split's embeddings, labels and predictions (+ TensorBoard TSVs)")
    embed.add_argument("--checkpoint", required=True)
    embed.add_argument("--split", help="test or train (MNIST/CIFAR-10); val for face models (default: test / val)")
    embed.add_argument("--out", required=True, help="folder for embeddings.safetensors, vectors.tsv, metadata.tsv")
    embed.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    points = commands.add_parser(
        "points", help="the test points Explore and Draw show, written beside each checkpoint (no dataset needed then)")
    points.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                        help="paths or shipped names (default: every shipped MNIST/CIFAR-10 checkpoint)")
    for sub in (train, evaluate, verify, calibrate, export, embed, points):
        sub.add_argument("--debug", action="store_true", help="show the traceback of an error (or ARCDEMO_DEBUG=1)")
    return parser


def _config_from(args: argparse.Namespace):
    """The preset (if any) with every explicitly given option on top, resolved and validated."""
    from arcdemo import catalog
    from arcdemo.presets import preset
    from arcdemo.small_data import folder_defaults, small_data_defaults
    from arcdemo.train import TrainConfig

    given = {k: v for k, v in vars(args).items() if k in {f.name for f in fields(TrainConfig)}}
    given["sample_every"] = 0  # embedding snapshots feed the app's live sphere; the CLI draws none (~1 s an epoch)
    for switch in ("augment", "amp"):
        if switch in given:
            given[switch] = given[switch] == "on"
    if "preset" in args:
        return preset(args.preset, **given).resolved()
    if "dataset" not in given:
        raise UsageError("the following arguments are required: --dataset (or --preset)")
    info = catalog.DATASETS.get(given["dataset"])
    loss = given.get("loss", "arcface")
    if given.get("data_dir"):  # the card keeps it, so eval and the app find the folder from anywhere
        given["data_dir"] = str(Path(given["data_dir"]).expanduser().resolve())
        if Path(given["data_dir"]).is_dir():  # options not given follow the folder's size
            given = {**folder_defaults(given["data_dir"], loss), **given}
    elif info is not None and info.train_images:  # a small built-in set: the same rule
        chosen = small_data_defaults(info.train_images, len(info.classes or ()), loss, info.frozen_features)
        given = {**chosen, **given}
    return TrainConfig(**given).resolved()


def _device(name: str) -> str:
    """``--device`` as a torch device string; asking for CUDA where there is none is a UsageError, not a crash."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if not name.startswith("cuda"):
        raise UsageError(f"unknown device {name!r}: auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {name}: this machine has no CUDA device (torch {torch.__version__})")
    return name


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

    from arcdemo.checkpoints import save_checkpoint, shipped_dir
    from arcdemo.data import FACE_DATASETS, IMAGE_FOLDER, image_folder_layout
    from arcdemo.train import DoneEvent, EpochEvent, StepEvent, ViewsEvent, run_card, train

    try:
        config = _config_from(args)
        if config.dataset == IMAGE_FOLDER:  # a folder that cannot be trained on fails now, not after loading
            image_folder_layout(config.data_dir, config.image_size)
    except ValueError as error:
        raise UsageError(str(error)) from None
    default_out = f"runs/{args.preset}" if "preset" in args else f"runs/{config.dataset}-{config.loss}-{config.dim}d"
    stem = Path(getattr(args, "out", default_out))
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    _writable(stem)
    if stem.resolve().parent == shipped_dir().resolve() and not args.overwrite_shipped:
        raise UsageError(f"{stem} is where a shipped checkpoint lives: pass --overwrite-shipped to replace it")
    resume = stem.with_name(stem.name + ".resume.safetensors")
    rank = int(os.environ.get("RANK", "0"))
    done: DoneEvent | None = None
    measure = "val pair accuracy (held-out identities)" if config.dataset in FACE_DATASETS else "test accuracy"
    # closed before any error propagates, so the bar never prints after main's one-line error
    said_stuck = False
    with tqdm(total=None, disable=args.quiet or rank != 0, file=sys.stderr, unit="step", mininterval=1.0) as bar:
        for event in train(config, resume_path=resume if args.resume else None):
            if isinstance(event, StepEvent):
                bar.total = event.total_steps
                bar.n = event.step
                bar.set_postfix(
                    epoch=event.epoch, loss=f"{event.loss:.3f}", acc=f"{event.train_accuracy:.3f}",
                    **({"note": "STUCK AT CHANCE"} if event.stuck else {}), refresh=False,
                )
                bar.refresh()
                if event.stuck and not said_stuck and rank == 0:  # once, in full; the bar keeps the short form
                    bar.write(f"step {event.step}: {event.stuck}", file=sys.stderr)
                    said_stuck = True
            elif isinstance(event, ViewsEvent) and event.done == event.total:
                bar.write(f"the frozen face network embedded {event.total} view(s) of {event.photos:,} training photos "
                          f"({event.elapsed_s:.0f} s)", file=sys.stderr)
            elif isinstance(event, EpochEvent):
                bar.write(
                    f"epoch {event.epoch}: {measure} {event.test_accuracy:.4f} ({event.elapsed_s:.0f} s)",
                    file=sys.stderr,
                )
            elif isinstance(event, DoneEvent):
                done = event
    if done is None or done.model is None:  # a non-zero DDP rank
        return {}
    card = {"preset": getattr(args, "preset", None), **run_card(done)}
    faces = config.dataset in FACE_DATASETS
    if faces:
        from arcdemo.faces.data import face_data_card

        card["metrics"] = {f"val_{k}": v for k, v in card["metrics"].items()}
        card["data"].update(sources=face_data_card(config.dataset), terms=FACE_TERMS)
    _, card_path = save_checkpoint(stem, done.model, card)  # saved before any evaluation that may fail
    resume.unlink(missing_ok=True)
    result = {"checkpoint": str(stem), "dataset": config.dataset, "loss": config.loss, "dim": config.dim,
              "epochs": done.epochs_done, "wall_time_s": round(done.wall_time_s, 1)}
    if faces:
        try:
            card = _calibrate_card(stem, config.dataset)
        except (FileNotFoundError, ValueError) as error:
            print(f"warning: {stem} is saved, but its calibration or LFW/ORL test failed ({error}); run "
                  f"`python -m arcdemo calibrate --checkpoint {stem}` once the data is there", file=sys.stderr)
            card = json.loads(card_path.read_text())
    return {**result, **_summary(card["metrics"])}


FACE_TERMS = ("FIW (Families In the Wild) and CelebA: non-commercial research use only; "
              "so is any model trained on them")


def _calibrate_card(stem: Path, dataset: str | None = None, cohort_size: int | None = None) -> dict:
    """Calibrate a face checkpoint on validation identities, test it on LFW + ORL at that threshold (both scored
    with ``cohort_size`` cohort offsets, default ``COHORT_SIZE``), rewrite its card."""
    from arcdemo.checkpoints import load_checkpoint, write_card
    from arcdemo.faces.evaluate import calibrate_model, evaluate_faces
    from arcdemo.faces.verify import COHORT_SIZE

    model, card = load_checkpoint(stem)
    cohort_size = min(COHORT_SIZE, model.spec.num_classes) if cohort_size is None else cohort_size
    calibration = calibrate_model(model, dataset or card["config"]["dataset"], cohort_size)
    card["metrics"] = {**{k: v for k, v in card["metrics"].items() if k.startswith("val_")}, "calibration": calibration}
    write_card(stem, card)  # kept even if the test sets below are missing
    card["metrics"].update(evaluate_faces(model, threshold=calibration["threshold"], cohort_size=cohort_size))
    write_card(stem, card)
    return card


def command_calibrate(args: argparse.Namespace) -> dict:
    from arcdemo.checkpoints import CheckpointError, find_checkpoint, read_card

    stem = find_checkpoint(args.checkpoint)
    try:
        card = read_card(stem)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    if card["model"].get("dataset") != "faces":
        raise UsageError(f"{args.checkpoint} is not a face model: calibration is for face verification")
    if args.cohort_size is not None and args.cohort_size < 0:
        raise UsageError(f"--cohort-size must be 0 (plain cosine) or more, got {args.cohort_size}")
    try:
        card = _calibrate_card(stem, args.dataset, args.cohort_size)
    except ValueError as error:  # more nearest identities than the model was trained on
        raise UsageError(str(error)) from None
    return {"checkpoint": str(stem), **_summary(card["metrics"])}


def _summary(metrics: dict) -> dict:
    """Metrics for the one-line JSON: the arrays behind the figures stay in the card."""
    hidden = ("confusion_matrix", "lfw_roc", "impostor_quantiles")
    return {k: _summary(v) if isinstance(v, dict) else v for k, v in metrics.items() if k not in hidden}


def command_eval(args: argparse.Namespace) -> dict:
    from arcdemo.checkpoints import CheckpointError, load_checkpoint
    from arcdemo.evaluate import evaluate_model, pair_eer
    from arcdemo.train import card_data

    try:
        model, card = load_checkpoint(args.checkpoint, _device(args.device))
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    dataset = model.spec.dataset
    if dataset == "faces":
        from arcdemo.faces.evaluate import evaluate_faces

        if args.shift_tta:
            raise UsageError("--shift-tta is for MNIST/CIFAR-10 checkpoints; face evaluation always uses flip-TTA")
        calibration = card.get("metrics", {}).get("calibration", {})
        try:
            metrics = evaluate_faces(model, calibration.get("threshold"), folds=args.folds,
                                     pairs_per_fold=args.pairs_per_fold, cohort_size=calibration.get("cohort_size", 0))
        except ValueError as error:  # an LFW fold that does not exist
            raise UsageError(str(error)) from None
        return {"checkpoint": str(args.checkpoint), "dataset": dataset, "loss": model.spec.loss,
                "dim": model.spec.embedding_dim, **metrics}
    if args.folds is not None or args.pairs_per_fold is not None:
        raise UsageError("--folds and --pairs-per-fold apply to face checkpoints only")
    split = card_data(card)
    if split.class_names != model.spec.class_names:
        raise UsageError(f"checkpoint classes {model.spec.class_names} do not match its test split's")
    evaluation = evaluate_model(model, split, flip_tta=args.flip_tta, shift_tta=args.shift_tta)
    metrics = _summary(evaluation.metrics)
    metrics["pair_eer"] = pair_eer(evaluation.embeddings, evaluation.labels)
    return {"checkpoint": str(args.checkpoint), "dataset": dataset, "loss": model.spec.loss,
            "dim": model.spec.embedding_dim, **metrics}


def command_verify(args: argparse.Namespace) -> dict:
    from arcdemo.checkpoints import CheckpointError
    from arcdemo.faces.align import NoFaceError, align_face
    from arcdemo.faces.verify import load_verifier

    if args.model == "reference" and args.checkpoint:
        raise UsageError("--checkpoint is for --model arcface; the reference model is dlib's own")
    try:
        verifier = load_verifier(args.model, args.checkpoint, _device(args.device))
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    faces = []
    for path in args.images:
        try:
            faces.append(align_face(path))
        except NoFaceError as error:
            raise UsageError(f"{path}: {error}") from None
        except (FileNotFoundError, ValueError) as error:  # missing or not an image: the message names the file
            raise UsageError(str(error)) from None
    return {**verifier.compare(*faces), "images": list(args.images), "turns_clockwise": [f.turn for f in faces],
            "source": verifier.source}


def _load_model(name: str, device: str = "cpu"):
    """(path, model, card) of a checkpoint given as a path or a shipped name; a bad one is a UsageError."""
    from arcdemo.checkpoints import CheckpointError, find_checkpoint, load_checkpoint

    stem = find_checkpoint(name)
    try:
        return (stem, *load_checkpoint(stem, device))
    except CheckpointError as error:
        raise UsageError(str(error)) from None


def command_export(args: argparse.Namespace) -> dict:
    import importlib.util

    from arcdemo.export import export_onnx

    stem, model, card = _load_model(args.checkpoint)
    if not all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript")):
        raise UsageError("ONNX export needs the onnx extra: pip install -e '.[onnx]'")
    out = Path(args.out) if args.out else Path(stem)
    _writable(out)
    paths = export_onnx(model, card, out)
    return {"checkpoint": str(stem), "format": args.format, "files": [str(p) for p in paths],
            "input": f"uint8 (N, {model.spec.in_channels}, {model.spec.image_size}, {model.spec.image_size})"}


def command_embed(args: argparse.Namespace) -> dict:
    from arcdemo import catalog
    from arcdemo.export import export_embeddings
    from arcdemo.train import card_data

    stem, model, card = _load_model(args.checkpoint, _device(args.device))
    dataset = card.get("config", {}).get("dataset", model.spec.dataset)
    splits = catalog.dataset(dataset).splits
    split = args.split or splits[1]
    if split not in splits:
        raise UsageError(f"{dataset} has the splits {', '.join(splits)}, not {split!r}")
    data = card_data(card, split)
    config = card.get("config", {})
    tta = {"flip": bool(config.get("flip_tta")), "shift": bool(config.get("shift_tta"))}
    out = Path(args.out)
    _writable(out / "embeddings")
    files = export_embeddings(model, data.images, data.labels, data.class_names, out, tta)
    return {"checkpoint": str(stem), "split": f"{dataset} {split}", "points": len(data),
            "files": [str(f) for f in files]}


def command_points(args: argparse.Namespace) -> dict:
    from arcdemo import catalog
    from arcdemo.checkpoints import shipped_dir
    from arcdemo.data import load_split
    from arcdemo.evaluate import card_tta, drawn_points, evaluate_model
    from arcdemo.points import save_points

    names = args.checkpoints or [
        path.stem for path in sorted(shipped_dir().glob("*.json"))
        if json.loads(path.read_text()).get("model", {}).get("dataset") in catalog.listed_in("explore")
    ]
    written = {}
    for name in names:
        stem, model, card = _load_model(name)
        if model.spec.dataset not in catalog.listed_in("explore"):
            raise UsageError(f"{name}: test points are for MNIST/CIFAR-10 models (faces have their own tab)")
        split = load_split(model.spec.dataset, "test")
        evaluation = evaluate_model(model, split, **card_tta(card.get("config", {})))
        card_accuracy = card.get("metrics", {}).get("accuracy")
        if card_accuracy is not None and abs(evaluation.metrics["accuracy"] - card_accuracy) > 1e-3:
            raise UsageError(f"{name}: test accuracy {evaluation.metrics['accuracy']:.4f} is not its card's "
                             f"{card_accuracy:.4f}; re-evaluate the card before shipping its points")
        path = save_points(stem, drawn_points(model, split, evaluation))
        written[str(path)] = {"accuracy": evaluation.metrics["accuracy"], "bytes": path.stat().st_size}
    return {"points": written}


def _leave_process_group(finished: bool) -> None:
    """DDP teardown: after a finished run, wait for every rank before destroying the group.

    Rank 1 finishes first (rank 0 alone evaluates and writes); tearing its gloo group down while rank 0 still
    holds a connection sometimes aborted rank 1 at exit ("terminate called without an active exception").
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if finished:  # after an error the other ranks may never arrive: torchrun stops them instead
            dist.barrier()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    from arcdemo.data import DatasetMissingError

    result = None
    debug = os.environ.get("ARCDEMO_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        commands = {"train": command_train, "eval": command_eval, "verify": command_verify,
                    "calibrate": command_calibrate, "export": command_export, "embed": command_embed,
                    "points": command_points}
        result = commands[args.command](args)
    except UsageError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DatasetMissingError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # the last line of defence: one line, never a traceback
        from arcdemo.train import TrainingDiverged

        if debug:
            traceback.print_exc()
        kind = "training diverged" if isinstance(error, TrainingDiverged) else type(error).__name__
        print(f"error: {kind}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        _leave_process_group(finished=result is not None)
    if result:
        print(json.dumps(result))
    return 0
