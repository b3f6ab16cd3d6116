"""The facts every layer reads, in plain Python (no torch, numpy or gradio): datasets, losses, where checkpoints live.

A dataset is one ``DatasetInfo`` (what it is, how it is read, how it is normalised, what a model of it defaults
to, which tabs list it) plus one reader registered in ``arcdemo.data`` under the same name; a loss that fits
ψ(θ) = cos(m1·θ + m2) − m3 is one ``LossInfo``. The core (``data``, ``model``, ``train``, ``heads``) and the app
(``ui``) both look things up here, so the first page can list datasets and losses without importing torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkpoints_dir() -> Path:
    """Where shipped checkpoints live: ``$ARCDEMO_CHECKPOINTS`` or ``<repo>/checkpoints``."""
    return Path(os.environ.get("ARCDEMO_CHECKPOINTS", REPO / "checkpoints")).expanduser()


FACE_MODEL = "faces-arcface"  # the shipped face model: the Faces tab's, `verify`'s, the ORL neck's


# ------------------------------------------------------------------------------------------------------- datasets

CLOSED, FACES, FOLDER = "closed", "faces", "folder"  # kinds: a fixed class list, open-set faces, a user's folder
IMAGE_FOLDER = "imagefolder"  # the dataset name of a user's own class folders

Statistics = tuple[tuple[float, ...], tuple[float, ...]]  # per-channel (mean, std) in [0, 1] units
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm", ".ppm", ".gif", ".tif", ".tiff")
FACE_NORMALISATION: Statistics = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # insightface's, for every aligned-face model
FACE_NECK = "face_neck"  # a small trainable neck on the frozen shipped face model (backbones.FaceNeck)
ALIGNED_FACE_BACKBONES = (FACE_NECK,)  # backbones whose inputs go through the face pipeline's alignment first
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: what the app and the trainer need to know before reading a byte of it."""

    name: str  # what configs, cards and the API call it
    title: str  # what people read
    kind: str = CLOSED  # CLOSED (classify a fixed class list), FACES (open-set, judged by verification) or FOLDER
    classes: tuple[str, ...] | None = None  # None: known only once read (digits are named "0".."9")
    reader: str = "arcdemo.data.builtin"  # the module that registers its reader in arcdemo.data (imported on use)
    splits: tuple[str, str] = ("train", "test")  # the split trained on, then the one a run is evaluated on
    domain: str = ""  # ModelSpec.dataset of its models (normalisation, default backbone); "" = the name
    normalisation: Statistics | None = None  # None: measured on the training images (a user's folder)
    backbone: tuple[str, int] = ("cifar_net", 16)  # default backbone and width
    augment: bool = True  # default augmentation (crop + flip for images, ``augment_faces`` for faces)
    flip: bool = True  # whether augmentation mirrors (digits must not be)
    loss_settings: dict[str, tuple[float, float]] = field(default_factory=dict)  # loss → (m, s) the sliders start at
    tabs: tuple[str, ...] = ()  # tabs that list it or its models: "train", "explore", "draw", "classify"
    train_images: int = 0  # a small set's training-split size: its defaults follow it (train.small_data_defaults)

    @property
    def frozen_features(self) -> bool:
        """Whether its models are a neck on a frozen face network (their inputs are aligned faces)."""
        return self.backbone[0] in ALIGNED_FACE_BACKBONES

    @property
    def model_domain(self) -> str:
        return self.domain or self.name


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add (or replace) a dataset; its reader registers in ``arcdemo.data`` under the same name."""
    DATASETS[info.name] = info
    return info


def dataset(name: str) -> DatasetInfo:
    """The catalog entry of a dataset; ValueError naming the known ones for anything else."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def title(name: str | None) -> str:
    """A dataset's (or a model domain's) title; the name itself when unknown."""
    if name in DATASETS:
        return DATASETS[name].title
    return "faces" if name == FACES else str(name)


def listed_in(tab: str) -> tuple[str, ...]:
    """The datasets a tab lists (in catalog order)."""
    return tuple(info.name for info in DATASETS.values() if tab in info.tabs)


def face_datasets() -> tuple[str, ...]:
    return tuple(info.name for info in DATASETS.values() if info.kind == FACES)


def normalisation(domain: str) -> Statistics:
    """The (mean, std) inputs of a model domain (``ModelSpec.dataset``) are normalised with."""
    found = next((info.normalisation for info in DATASETS.values() if info.model_domain == domain), None)
    if found is None:
        raise KeyError(f"{domain!r} has no fixed normalisation (a model of a user's folder carries its own)")
    return found


_ARCFACE_HARD = {"arcface": (0.2, 16.0)}  # at s = 30 ArcFace collapses to chance on these; m = 0.2, s = 16 trains

for _info in (
    DatasetInfo("mnist", "MNIST", classes=tuple(str(i) for i in range(10)), backbone=("mnist_cnn", 16),
                normalisation=((0.1307,), (0.3081,)), augment=False, flip=False, tabs=("train", "explore", "draw")),
    DatasetInfo("cifar10", "CIFAR-10", classes=CIFAR10_CLASSES, loss_settings=_ARCFACE_HARD,
                normalisation=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # the published train statistics
                tabs=("train", "explore", "classify")),
    DatasetInfo(IMAGE_FOLDER, "your images", kind=FOLDER, loss_settings=_ARCFACE_HARD, tabs=("train", "classify")),
    # ORL's 40 people (photos 1-7 train, 8-10 test) on a sphere: a neck on the frozen face model, aligned inputs
    DatasetInfo("orl", "ORL faces (40 people)", classes=tuple(f"s{i}" for i in range(1, 41)),
                reader="arcdemo.faces.orl", normalisation=FACE_NORMALISATION, backbone=(FACE_NECK, 32),
                train_images=280, tabs=("train", "explore", "classify")),
    *(DatasetInfo(name, title_, kind=FACES, reader="arcdemo.faces.data", splits=("train", "val"), domain=FACES,
                  backbone=("mobilefacenet", 32), normalisation=FACE_NORMALISATION)
      for name, title_ in (("fiw", "FIW"), ("celeba", "CelebA"), ("fiw+celeba", "FIW + CelebA"))),
):
    register_dataset(_info)


# --------------------------------------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class LossInfo:
    """What a loss name means: its title, defaults, the ranges a user may choose from, and how its margin enters ψ.

    ``psi`` names the parameter of ψ(θ) = cos(m1·θ + m2) − m3 the margin sets ("m1", "m2", "m3"; None: no margin);
    ``psi_defaults`` the others it also uses, with their defaults. ``head``: "cosine" (a normalised margin head),
    "linear" (softmax's W·x + b) or "feature" (a loss on embeddings, with class means as centres).
    """

    name: str
    title: str
    margin: float  # default margin, in ``margin_unit``
    scale: float  # default scale s (for SupCon: 1/temperature)
    margin_range: tuple[float, float]  # inclusive
    scale_range: tuple[float, float]  # inclusive
    margin_meaning: str
    uses_scale: bool = True
    margin_unit: str = ""  # "rad" for angular margins (also shown in degrees), "" for cosine or chord units
    psi: str | None = None
    psi_defaults: dict[str, float] = field(default_factory=dict)
    head: str = "cosine"
    subcentres: bool = False


LOSSES: dict[str, LossInfo] = {}


def register_loss(info: LossInfo) -> LossInfo:
    """Add (or replace) a loss; a margin head trains it from its ``psi`` alone."""
    LOSSES[info.name] = info
    return info


def loss_title(name: str) -> str:
    return LOSSES[name].title if name in LOSSES else name


for _loss in (
    LossInfo("softmax", "Softmax", 0.0, 1.0, (0.0, 0.0), (1.0, 1.0), "none (plain linear layer + bias)",
             uses_scale=False, head="linear"),
    LossInfo("normface", "NormFace", 0.0, 16.0, (0.0, 0.0), (1.0, 128.0), "none (normalised softmax)"),
    LossInfo("sphereface", "SphereFace", 1.5, 30.0, (1.0, 6.0), (1.0, 128.0),
             "multiplicative angle margin m1 (θ → m1·θ)", psi="m1"),
    LossInfo("cosface", "CosFace", 0.35, 30.0, (0.0, 1.0), (1.0, 128.0), "additive cosine margin m3 (cos θ − m3)",
             psi="m3"),
    LossInfo("arcface", "ArcFace", 0.5, 30.0, (0.0, 1.5), (1.0, 128.0),
             "additive angular margin m2 in radians (θ + m2)", margin_unit="rad", psi="m2"),
    LossInfo("combined", "Combined margin", 0.3, 30.0, (0.0, 1.5), (1.0, 128.0),
             "m2 of cos(m1·θ + m2) − m3 (m1, m3 separate)", margin_unit="rad", psi="m2",
             psi_defaults={"m1": 1.0, "m3": 0.2}),
    LossInfo("subcenter", "Sub-center ArcFace", 0.5, 30.0, (0.0, 1.5), (1.0, 128.0),
             "additive angular margin m2, k sub-centres", margin_unit="rad", psi="m2", subcentres=True),
    LossInfo("triplet", "Triplet", 0.2, 16.0, (0.0, 2.0), (1.0, 128.0), "triplet margin on the chord distance ‖a−b‖",
             head="feature"),
    LossInfo("supcon", "SupCon", 0.0, 10.0, (0.0, 0.0), (1.0, 100.0), "none (scale = 1/temperature)", head="feature"),
):
    register_loss(_loss)
