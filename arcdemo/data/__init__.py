"""Datasets as whole-split uint8 tensors: readers registered by name, a tensor cache, batched augmentation.

``core`` (splits, data root, the reader registry), ``builtin`` (MNIST, CIFAR-10), ``folders`` (a user's class
folders), ``cache`` (decoded splits as safetensors), ``augment`` (crops, flips, mixup, normalisation). What a
dataset *is* lives in ``arcdemo.catalog``; face sets register their reader from ``arcdemo.faces.data``.
"""

from __future__ import annotations

from arcdemo import catalog
from arcdemo.catalog import CIFAR10_CLASSES, IMAGE_FOLDER
from arcdemo.data.augment import (
    augmenter,
    centre_square,
    cutmix,
    mixup,
    normalise,
    random_crop_flip,
    register_augmenter,
    resize_images,
)
from arcdemo.data.builtin import read_idx
from arcdemo.data.cache import read_cached_split, stable_key, write_cached_split
from arcdemo.data.core import (
    READERS,
    DatasetMissingError,
    Split,
    cache_dir,
    data_root,
    evaluation_split,
    model_domain,
    read_split,
    register_reader,
)
from arcdemo.data.folders import (
    FOLDER_IMAGE_SIDES,
    HELD_OUT_FRACTION,
    IMAGE_SUFFIXES,
    FolderLayout,
    ImageFolderError,
    channel_statistics,
    decode_image_file,
    image_folder_layout,
    read_image_folder,
)

FACE_DATASETS = catalog.face_datasets()  # the face training sets (arcdemo.faces.data reads them)


def load_split(dataset: str, split: str) -> Split:
    """A split of a closed-set dataset (MNIST, CIFAR-10, …) as uint8 tensors, decoded once and cached.

    Face sets are aligned face by face (``arcdemo.faces.data.face_split``); a user's folder has no fixed place
    (``image_folder_layout``); ``read_split`` reads either.
    """
    info = catalog.dataset(dataset)
    if split not in info.splits:
        raise ValueError(f"unknown split {split!r} of {dataset}; choose one of {', '.join(info.splits)}")
    if info.kind == catalog.FACES:
        raise ValueError(f"{dataset} is a face set: read it with arcdemo.faces.data.face_split")
    if info.kind == catalog.FOLDER:
        raise ValueError("a user's image folder has no fixed place: read it with image_folder_layout(directory)")
    return read_split(dataset, split)


__all__ = [
    "CIFAR10_CLASSES", "augmenter", "register_augmenter", "FACE_DATASETS", "FOLDER_IMAGE_SIDES", "HELD_OUT_FRACTION",
    "IMAGE_FOLDER", "IMAGE_SUFFIXES",
    "READERS", "DatasetMissingError", "FolderLayout", "ImageFolderError", "Split", "cache_dir",
    "centre_square", "channel_statistics", "cutmix", "data_root", "decode_image_file", "evaluation_split",
    "image_folder_layout", "load_split", "mixup", "model_domain", "normalise", "random_crop_flip", "read_cached_split",
    "read_idx", "read_image_folder", "read_split", "register_reader", "resize_images", "stable_key",
    "write_cached_split",
]
