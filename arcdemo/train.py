"""The trainer: a generator of events, so a CLI prints them and a UI streams (and stops) them.

Under ``torchrun`` it trains data-parallel with DDP (gloo on CPU, nccl on CUDA): every rank draws the same global
batch indices and augmentation, keeps its slice ``[rank::world]``, gradients are averaged, metrics reduced, and
only rank 0 evaluates, samples and yields the final model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from arcdemo import catalog
from arcdemo.catalog import IMAGE_FOLDER
from arcdemo.checkpoints import (
    TrainingState,
    checkpoint_paths,
    find_checkpoint,
    initialise_from,
    load_training_state,
    save_training_state,
)
from arcdemo.data import (
    Split,
    augmenter,
    channel_statistics,
    cutmix,
    evaluation_split,
    image_folder_layout,
    mixup,
    model_domain,
    read_split,
    resize_images,
)
from arcdemo.distill import centred, relational_loss
from arcdemo.evaluate import Evaluation, evaluate_model, evaluate_verification, sklearn_metrics
from arcdemo.margins import LOSSES, DecisionRule, check_loss_arguments
from arcdemo.model import EmbeddingModel, ModelSpec, tta_view_count


@dataclass(frozen=True)
class TrainConfig:
    """One run's hyper-parameters (airbench's ``hyp``), saved in the checkpoint card."""

    dataset: str = "mnist"
    data_dir: str = ""  # dataset "imagefolder": the folder of class folders (data.image_folder_layout)
    loss: str = "arcface"
    margin: float | None = None  # None = the loss's default (radians for angular margins; see margins.LOSSES)
    scale: float | None = None  # s; None = the loss's default
    dim: int = 3  # embedding dimension
    epochs: int = 3
    batch_size: int = 128  # global batch (split across DDP ranks)
    lr: float | None = None  # peak learning rate; None = 0.1 for SGD, 3e-3 for Adam
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) or "adam"
    weight_decay: float = 5e-4  # L2 on conv/linear weights (not on BN or W of the head)
    schedule: str = "onecycle"  # "onecycle" (linear warm-up 20%, cosine down) or "cosine"
    margin_warmup_steps: int = -1  # margin ramps 0 → m over this many steps; -1 = one epoch if dim ≤ 3, else 0
    m1: float | None = None  # combined loss: multiplicative margin (default 1.0)
    m3: float | None = None  # combined loss: additive cosine margin (default 0.2)
    subcentres: int = 3  # sub-center ArcFace: centres per class
    easy_margin: bool = False  # apply the margin only where cos θ > 0
    backbone: str | None = None  # None = the dataset's default (catalog.DatasetInfo.backbone)
    width: int | None = None  # backbone width; None = the default's
    augment: bool | None = None  # CIFAR-10: crop + flip; MNIST: 2 px shifts; FIW: augment_faces; None = not MNIST
    image_size: int = 0  # input side in px (FIW: from the 112 px crops; imagefolder: 0 = from the data); 0 = as stored
    dropout: float = 0.0  # mobilefacenet: share of GDC features dropped while training, before the embedding layer
    distill: float = 0.0  # weight of the relational loss toward the teacher's pairwise cosines (distill.py); 0 = off
    mixup: float = 0.0  # mixup Beta(α, α); 0 = off
    cutmix: float = 0.0  # CutMix Beta(α, α); 0 = off
    train_subset: int = 0  # use only this many training images (0 = all)
    # a neck on a frozen face network trains on the face embeddings of this many augmented views of each image,
    # computed once (0: the face network runs on every batch's fresh augmentation; benchmarks/neck_views.py)
    neck_views: int = 8
    seed: int = 0
    device: str = "auto"  # "auto" = CUDA when available, else CPU
    amp: bool | None = None  # bfloat16 autocast; None = on CUDA only (on a CPU with AVX512-BF16 steps run ~1.4x faster)
    sample_every: int = 50  # steps between embedding snapshots for live plots (0 = never; faces: never, open-set)
    sample_size: int = 1000  # test images in each snapshot
    flip_tta: bool = False  # evaluate with the mirrored image's embedding added (CIFAR-10)
    shift_tta: bool = False  # evaluate with 1-px shifted views added too (model.tta_views; CIFAR-10)
    init_from: str = ""  # checkpoint (path or shipped name) whose matching weights start this run; "" = scratch

    def resolved(self) -> TrainConfig:
        """Fill every ``None`` with its concrete default and validate; raises ValueError with a clear message."""
        info = catalog.dataset(self.dataset)
        if (self.dataset == IMAGE_FOLDER) != bool(self.data_dir):
            raise ValueError("a data folder (--data-dir) goes with the imagefolder dataset, and only with it")
        if self.data_dir and not Path(self.data_dir).is_dir():
            raise ValueError(f"data folder {self.data_dir} does not exist")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        spec = LOSSES[self.loss]
        margin = spec.margin if self.margin is None else float(self.margin)
        scale = spec.scale if self.scale is None else float(self.scale)
        check_loss_arguments(self.loss, margin, scale)
        if self.m1 is not None and not (math.isfinite(self.m1) and 1.0 <= self.m1 <= 6.0):
            raise ValueError(f"m1 {self.m1!r} is out of range: allowed [1, 6]")
        if self.m3 is not None and not (math.isfinite(self.m3) and 0.0 <= self.m3 <= 1.0):
            raise ValueError(f"m3 {self.m3!r} is out of range: allowed [0, 1]")
        checks = (
            (self.dim >= 2, f"embedding dim must be ≥ 2, got {self.dim}"),
            (self.dim <= 4096, f"embedding dim must be ≤ 4096, got {self.dim}"),
            (1 <= self.epochs <= 1000, f"epochs must be in [1, 1000], got {self.epochs}"),
            (2 <= self.batch_size <= 65536, f"batch size must be in [2, 65536], got {self.batch_size}"),
            (self.optimizer in ("sgd", "adam"), f"optimizer must be sgd or adam, got {self.optimizer!r}"),
            (self.schedule in ("onecycle", "cosine"), f"schedule must be onecycle or cosine, got {self.schedule!r}"),
            (self.lr is None or (math.isfinite(self.lr) and 0 < self.lr <= 10),
             f"lr must be in (0, 10], got {self.lr}"),
            (math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1, "weight decay must be in [0, 1)"),
            (1 <= self.subcentres <= 16, f"subcentres must be in [1, 16], got {self.subcentres}"),
            (self.mixup >= 0 and self.cutmix >= 0, "mixup/cutmix α must be ≥ 0"),
            (self.train_subset >= 0, "train subset must be ≥ 0"),
            (0 <= self.neck_views <= 64, f"neck views must be in [0, 64], got {self.neck_views}"),
            (not (self.shift_tta and info.kind == catalog.FACES), "shift-TTA is for MNIST/CIFAR-10, not faces"),
            (math.isfinite(self.dropout) and 0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (math.isfinite(self.distill) and 0 <= self.distill <= 1e4, f"distill must be in [0, 1e4]: {self.distill}"),
            (self.image_size == 0 or 16 <= self.image_size <= 512,
             f"image size must be 0 or 16-512: {self.image_size}"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"unknown device {self.device!r}"),
            (not self.init_from or checkpoint_paths(find_checkpoint(self.init_from))[1].exists(),
             f"init_from: no checkpoint {self.init_from!r} (a path, or the name of a shipped checkpoint)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        backbone, width = info.backbone
        if self.backbone is not None and self.backbone != backbone:
            width = self.width or 32
        backbone = self.backbone or backbone
        if backbone == "mobilefacenet" and self.image_size % 16:
            raise ValueError(f"mobilefacenet needs an image size divisible by 16, got {self.image_size}")
        if self.dropout and backbone != "mobilefacenet":
            raise ValueError(f"dropout is a mobilefacenet option, not {backbone}'s")
        return replace(
            self,
            margin=margin,
            scale=scale,
            lr=self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 3e-3),
            backbone=backbone,
            width=self.width or width,
            augment=info.augment if self.augment is None else self.augment,
            device=("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device,
            # a neck on a frozen face network freezes the shipped face model unless told otherwise
            init_from=self.init_from or (catalog.FACE_MODEL if backbone == catalog.FACE_NECK else ""),
        )


@dataclass(frozen=True)
class StepEvent:
    step: int  # 1-based, global
    total_steps: int
    epoch: int  # 1-based
    loss: float
    train_accuracy: float  # on this step's batch, margin-free logits
    lr: float
    margin_fraction: float  # 0..1 of the margin in use (warm-up)
    elapsed_s: float
    images_per_s: float
    stuck: str = ""  # a sentence when the run sits at chance with its whole margin on (``stuck_at_chance``)


STUCK_WINDOW = 20  # batches, all with the whole margin on, that a run must sit at chance for to be called stuck


def stuck_at_chance(accuracies: list[float], classes: int, steps_with_full_margin: int) -> bool:
    """Whether the last ``STUCK_WINDOW`` batches, every one with the whole margin on, were right barely more often
    than chance: min(3× chance, chance + 10% of the rest). A collapsed margin loss sits there for good (every
    logit pinned below its target, no gradient that separates classes); a slow start has left it by then."""
    if classes < 2 or steps_with_full_margin < STUCK_WINDOW or len(accuracies) < STUCK_WINDOW:
        return False
    chance = 1.0 / classes
    return _recent(accuracies) <= min(3 * chance, chance + 0.1 * (1 - chance))


def _recent(accuracies: list[float]) -> float:
    return sum(accuracies[-STUCK_WINDOW:]) / len(accuracies[-STUCK_WINDOW:])


def stuck_advice(config: TrainConfig, classes: int, accuracies: list[float]) -> str:
    """What a stuck run is and what to change, in one sentence (``config`` resolved; ``accuracies`` per batch)."""
    accuracy = _recent(accuracies)
    adaptive = math.sqrt(2) * math.log(max(classes - 1, 2))
    what = f"{LOSSES[config.loss].title} at m = {config.margin:g}, s = {config.scale:g}"
    return (f"stuck at chance: with the whole margin on, batches are right {100 * accuracy:.0f}% of the time (chance "
            f"{100 / classes:.0f}%); {what} leaves the classes no room to separate. Lower the margin or the scale "
            f"(s ≈ {adaptive:.1f} suits {classes} classes), lengthen the margin warm-up, or start with Softmax.")


@dataclass(frozen=True)
class SampleEvent:
    """A snapshot of unit embeddings of a fixed test subset, for the live sphere."""

    step: int
    embeddings: np.ndarray  # (N, D), unit norm
    labels: np.ndarray
    rule: DecisionRule  # what the head predicts right now (softmax: at the subset's median embedding norm)
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    test_accuracy: float
    elapsed_s: float


@dataclass(frozen=True)
class ViewsEvent:
    """A frozen-face neck's preparation before its first step: ``done`` of ``total`` augmented views of every one of
    ``photos`` training photos embedded by the face network (seconds to a minute that would otherwise show nothing)."""

    done: int
    total: int
    photos: int
    elapsed_s: float


@dataclass(frozen=True)
class DoneEvent:
    """The end: the model (rank 0 only; None elsewhere) and its test evaluation; ``stopped`` if cancelled."""

    model: EmbeddingModel | None
    evaluation: Evaluation | None
    config: TrainConfig
    stopped: bool
    steps: int
    epochs_done: int
    wall_time_s: float
    train_images: int
    history: dict = field(default_factory=dict)


Event = StepEvent | SampleEvent | EpochEvent | ViewsEvent | DoneEvent


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the message says where and what to change."""


def learning_rate(step: int, total: int, peak: float, schedule: str) -> float:
    """LR at a 0-based step: one-cycle (20% linear warm-up, cosine to 0) or plain cosine. Pure, so resumable."""
    if schedule == "onecycle":
        warmup = max(1, int(0.2 * total))
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
    else:
        progress = step / max(1, total)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_spec(config: TrainConfig, train: Split) -> ModelSpec:
    c = config
    size = train.images.shape[2]
    measured = None
    if c.dataset == IMAGE_FOLDER:  # a neck on a frozen face network takes what that network was trained on
        measured = catalog.FACE_NORMALISATION if c.backbone in catalog.ALIGNED_FACE_BACKBONES else channel_statistics(
            train.images)
    return ModelSpec(
        dataset=model_domain(c.dataset), backbone=c.backbone, width=c.width, embedding_dim=c.dim,
        in_channels=train.images.shape[1], image_size=size, class_names=train.class_names,
        loss=c.loss, margin=c.margin, scale=c.scale, m1=c.m1, m3=c.m3, subcentres=c.subcentres,
        easy_margin=c.easy_margin, extra=_backbone_options(c, size),
        normalisation=measured,
    )


def _backbone_options(config: TrainConfig, size: int) -> dict:
    """The spec's backbone options beyond width; dropout only when used, so cards without it read as before."""
    if config.backbone == catalog.FACE_NECK:
        return {"input_size": size}
    if config.backbone != "mobilefacenet":
        return {}
    return {"input_size": size, **({"dropout": config.dropout} if config.dropout else {})}


def recipe(config: TrainConfig) -> dict:
    """The fields a resumed run must share with the run it continues: all but where it runs."""
    return {k: v for k, v in asdict(config).items() if k != "device"}


def card_data(card: dict, split: str | None = None) -> Split:
    """A split of the data a checkpoint's run used (its evaluation split unless ``split``), as the model takes it:
    for ``eval``, ``embed`` and the app. Cards without a config name their domain in ``model.dataset``."""
    config, spec = card.get("config", {}), card["model"]
    dataset = config.get("dataset", spec["dataset"])
    split = split or evaluation_split(dataset)
    if dataset == IMAGE_FOLDER:
        return image_folder_layout(config["data_dir"], spec["image_size"]).split(split)
    faces = catalog.dataset(dataset).kind == catalog.FACES
    return _resized(read_split(dataset, split), spec["image_size"] if faces else 0)


def _resized(split: Split, size: int) -> Split:
    return split if not size else replace(split, images=resize_images(split.images, size))


def _optimizer(model: EmbeddingModel, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BN or the head's centres fights the normalisation."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim > 1 and not name.startswith("head.") else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)


NECK_DRAW_CHUNK = 32  # photos augmented per random draw for a neck's views (the draws its shipped results rest on)


def frozen_features(model: EmbeddingModel, images: torch.Tensor, augment: Callable | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """A neck model's face embeddings (N, D) of uint8 images (augmented first, given ``augment``, in chunks of
    ``NECK_DRAW_CHUNK``): the frozen face network's part of its work, done once, in the model's ``inference_batch``."""
    chunks = []
    for start in range(0, len(images), NECK_DRAW_CHUNK):
        batch = images[start : start + NECK_DRAW_CHUNK]
        batch = batch if augment is None else augment(batch, generator)
        chunks += [model.backbone.face_embeddings(model.prepare(part)) for part in batch.split(model.inference_batch)]
    return torch.cat(chunks)


def frozen_views(
    model: EmbeddingModel, split: Split, augment: Callable | None, views: int, generator: torch.Generator,
    should_stop: Callable[[], bool], start: float,
) -> Generator[ViewsEvent, None, torch.Tensor | None]:
    """Yields a ``ViewsEvent`` per view, then returns (views, N, D): the face embeddings of ``views`` augmented
    versions of every training image (one, as it is, without augmentation), drawn from in place of a fresh
    augmentation per batch; None when stopped meanwhile."""
    total = views if augment is not None else 1
    drawn = []
    for _ in range(total):
        if should_stop():
            return None
        drawn.append(frozen_features(model, split.images, augment, generator))
        yield ViewsEvent(len(drawn), total, len(split), time.perf_counter() - start)
    return torch.stack(drawn)


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per process: NCCL needs each rank on its own device first
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


@torch.no_grad()
def _snapshot(model: EmbeddingModel, sample: Split, step: int) -> SampleEvent:
    raw = model.embed(sample.images)
    rule = model.head.decision_rule(norm=float(raw.norm(dim=1).median()))
    return SampleEvent(step, F.normalize(raw, dim=1).cpu().numpy(), sample.labels.cpu().numpy(), rule,
                       sample.class_names)


def train(
    config: TrainConfig,
    should_stop: Callable[[], bool] = lambda: False,
    resume_path: Path | None = None,
    data: tuple[Split, Split] | None = None,
) -> Iterator[Event]:
    """Train and yield events; ``should_stop`` is polled every step (the UI's Stop button).

    ``resume_path``: a training-state file written at the end of every epoch and read back when present, so
    an interrupted run continues from its last full epoch. ``data`` overrides (train, test) splits (tests).

    Face datasets (catalog kind FACES) are open-set: the test split is held-out identities, so every
    evaluation is verification (``evaluate_verification``; ``test_accuracy`` is its 10-fold pair accuracy).
    """
    config = config.resolved()
    rank, world = _distributed()
    if config.batch_size % world:
        raise ValueError(f"batch size {config.batch_size} is not divisible by the {world} processes")
    device = torch.device(
        f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if config.device == "cuda" and world > 1 else config.device
    )
    torch.manual_seed(config.seed)
    if data is None:
        splits = "train", evaluation_split(config.dataset)
        if config.dataset == IMAGE_FOLDER:  # one layout, so both splits share the input side and channels
            layout = image_folder_layout(config.data_dir, config.image_size)
            data = layout.split(splits[0]), layout.split(splits[1])
        else:
            data = read_split(config.dataset, splits[0]), read_split(config.dataset, splits[1])
    train_split, test_split = _resized(data[0], config.image_size), _resized(data[1], config.image_size)
    if config.train_subset:
        train_split = train_split.subset(config.train_subset, seed=config.seed)
    faces = catalog.dataset(config.dataset).kind == catalog.FACES
    if config.distill and train_split.teacher is None:
        raise ValueError(f"{config.dataset} has no teacher embeddings to distil from (the face sets have dlib's)")
    teacher = centred(train_split.teacher).to(device) if config.distill else None
    augment = augmenter(config.dataset) if config.augment else None
    evaluate = evaluate_verification if faces else evaluate_model
    sample_every = 0 if faces else config.sample_every  # held-out identities have no head centre to be drawn by
    train_split = train_split.to(device)
    model = EmbeddingModel(build_spec(config, train_split))
    if config.init_from:
        initialise_from(model, config.init_from)
    model = model.to(device)
    # Two slow imports run on a worker thread while the first steps' torch kernels leave the GIL free: torch._dynamo,
    # which building a torch.optim optimiser pulls in (~0.8 s on this CPU), then scikit-learn for the evaluation at
    # the end (~0.8 s; rank 0 alone evaluates). One after the other: side by side they would fight over the GIL and
    # delay the first step. Measured by the race in benchmarks/core_speed.py.
    worker = ThreadPoolExecutor(1, thread_name_prefix="arcdemo-imports")
    optimizer_ready = worker.submit(_optimizer, model, config)
    if rank == 0:
        worker.submit(sklearn_metrics)
    worker.shutdown(wait=False)
    optimizer: torch.optim.Optimizer | None = None
    epochs_done, wall_before = 0, 0.0
    history: dict[str, list[float]] = {"step": [], "loss": [], "train_accuracy": [], "test_step": [],
                                       "test_accuracy": [], "test_views": []}
    if resume_path is not None and Path(resume_path).exists():
        optimizer = optimizer_ready.result()
        resumed = load_training_state(Path(resume_path), model, optimizer, recipe(config))
        epochs_done, wall_before, history = resumed.epochs_done, resumed.wall_time_s, resumed.history or history
        history.setdefault("test_views", [1] * len(history.get("test_accuracy", [])))  # states saved before views
    trainable = model if world == 1 else torch.nn.parallel.DistributedDataParallel(model)

    steps_per_epoch = len(train_split) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_split)} training images are fewer than one batch of {config.batch_size}")
    total_steps = steps_per_epoch * config.epochs
    warmup = (
        config.margin_warmup_steps if config.margin_warmup_steps >= 0 else (steps_per_epoch if config.dim <= 3 else 0)
    )
    use_amp = device.type == "cuda" if config.amp is None else config.amp
    start = time.perf_counter() - wall_before  # a resumed run's clock goes on from where it stopped
    cached_views, test_inputs = None, test_split  # the frozen face network's work is on the clock too
    if config.neck_views and hasattr(model.backbone, "face_embeddings") and not (config.mixup or config.cutmix):
        cached_views = yield from frozen_views(model, train_split, augment, config.neck_views,
                                               torch.Generator(device=device).manual_seed(config.seed), should_stop,
                                               start)
        if cached_views is not None:  # stopped meanwhile: the one evaluation embeds the test photos itself
            test_inputs = replace(test_inputs, images=frozen_features(model, test_inputs.images))
    sample = test_inputs.subset(config.sample_size, seed=config.seed).to(device)  # the live snapshots' points
    step = first_step = epochs_done * steps_per_epoch
    stopped = False
    for epoch in range(epochs_done, config.epochs):
        model.train()
        order_generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(len(train_split), generator=order_generator).to(device)
        augment_generator = torch.Generator(device=device).manual_seed(config.seed * 100_003 + epoch)
        for batch_index in range(steps_per_epoch):
            if should_stop():
                stopped = True
                break
            global_index = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            index = slice(rank, None, world)
            if cached_views is not None:  # one of each image's cached views, drawn per sample
                view = torch.randint(len(cached_views), global_index.shape, generator=augment_generator, device=device)
                x = cached_views[view, global_index][index]
            else:
                images = train_split.images[global_index]
                if augment is not None:
                    images = augment(images, augment_generator)
                x = model.prepare(images[index])
            y = train_split.labels[global_index][index]
            lr = learning_rate(step, total_steps, config.lr, config.schedule)
            model.head.margin_fraction = min(1.0, (step + 1) / warmup) if warmup else 1.0
            partner, lam = None, 1.0
            if config.cutmix > 0:
                x, partner, lam = cutmix(x, y, augment_generator, config.cutmix)
            elif config.mixup > 0:
                x, partner, lam = mixup(x, y, augment_generator, config.mixup)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, embeddings = trainable(x, y)
                if partner is not None:
                    loss = lam * loss + (1 - lam) * model.head(embeddings, partner)
                if teacher is not None:
                    loss = loss + config.distill * relational_loss(embeddings, teacher[global_index][index])
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at step {step + 1} (epoch {epoch + 1}); "
                    f"lower the learning rate (now {lr:.3g}) or the scale (now {config.scale:g})"
                )
            model.zero_grad(set_to_none=True)
            loss.backward()
            optimizer = optimizer or optimizer_ready.result()
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            step += 1
            with torch.no_grad():
                correct = (model.head.logits(embeddings.detach()).argmax(1) == y).float().sum()
                stats = torch.stack(
                    [loss.detach().float() * len(y), correct, torch.tensor(float(len(y)), device=device)]
                )
                if world > 1:
                    dist.all_reduce(stats)
            batch_loss, batch_accuracy = (stats[0] / stats[2]).item(), (stats[1] / stats[2]).item()
            elapsed = time.perf_counter() - start
            history["step"].append(step)
            history["loss"].append(batch_loss)
            history["train_accuracy"].append(batch_accuracy)
            stuck = ""
            if stuck_at_chance(history["train_accuracy"], len(train_split.class_names), step - max(warmup, 0)):
                stuck = stuck_advice(config, len(train_split.class_names), history["train_accuracy"])
            yield StepEvent(
                step, total_steps, epoch + 1, batch_loss, batch_accuracy, lr, model.head.margin_fraction, elapsed,
                (step - first_step) * config.batch_size / max(elapsed - wall_before, 1e-9), stuck,
            )
            if rank == 0 and sample_every and step % sample_every == 0:
                yield _snapshot(model, sample, step)
        if stopped:
            break
        epochs_done = epoch + 1
        if rank == 0:
            accuracy = evaluate(model, test_inputs).metrics["accuracy"] if epoch + 1 < config.epochs else None
            if accuracy is not None:
                history["test_step"].append(step)
                history["test_accuracy"].append(accuracy)
                history["test_views"].append(1)
            if resume_path is not None:
                state = TrainingState(epochs_done, time.perf_counter() - start, history, recipe(config))
                save_training_state(Path(resume_path), model, optimizer, state)
            if accuracy is not None:
                yield EpochEvent(epoch + 1, accuracy, time.perf_counter() - start)
    wall = time.perf_counter() - start
    if rank != 0:
        yield DoneEvent(None, None, config, stopped, step, epochs_done, wall, len(train_split), history)
        return
    model.eval()
    evaluation = evaluate(model, test_split, flip_tta=config.flip_tta, shift_tta=config.shift_tta)
    history["test_step"].append(step)
    history["test_accuracy"].append(evaluation.metrics["accuracy"])
    history["test_views"].append(tta_view_count(config.flip_tta, config.shift_tta))
    if sample_every:
        yield _snapshot(model, sample, step)
    yield DoneEvent(model, evaluation, config, stopped, step, epochs_done, wall, len(train_split), history)


def run_card(done: DoneEvent) -> dict:
    """The card fields a finished run contributes (config, metrics, data, seed, epochs, wall time)."""
    c = done.config
    return {
        "config": asdict(c),
        "metrics": done.evaluation.metrics,
        "data": {"dataset": c.dataset, "train_images": done.train_images,
                 "test_images": done.evaluation.metrics["samples"]},
        "seed": c.seed,
        "epochs": done.epochs_done,
        "steps": done.steps,
        "stopped_early": done.stopped,
        "wall_time_s": round(done.wall_time_s, 1),
    }
