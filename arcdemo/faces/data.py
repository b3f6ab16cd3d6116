"""Face training data: FIW and CelebA aligned into one geometry, held-out validation identities, LFW exclusions.

Every training face goes through :func:`arcdemo.faces.align.align_face` like LFW and uploads do, so training and
testing share one geometry. Aligning costs ~15 ms a face (more when the CNN detector has to step in), so each
source is aligned once, on every core, and cached under :func:`arcdemo.data.cache_dir` by file path and
:data:`~arcdemo.faces.align.ALIGNMENT_KEY` (a folder added later is the only thing aligned then). The cache also
keeps, per image, how its face was found (for the no-face counts) and, for the first
:data:`REFERENCE_PER_IDENTITY` faces of each identity, dlib's reference descriptor from the same detection: the LFW
overlap check (:mod:`arcdemo.faces.overlap`) reads those.

Sources and their layouts under ``<data root>/faces/``:

- ``fiw/<family>_<member>/*.jpg`` -- FIW's tight 112 px crops (``assume_cropped``: never dropped);
- ``celeba/identity_CelebA.txt`` + any folder of CelebA-numbered ``NNNNNN.jpg`` beside it (the official
  ``img_align_celeba/``, the slices ``assemble.sh`` builds, more CelebA photos beside them); images without a
  face are skipped and counted.

Validation identities, never trained on: every 10th FIW family (whole families, so no relative of a validation
person trains) and every CelebA identity whose number is divisible by 10. Identities with fewer than two usable
faces are dropped: they teach a classifier nothing an open-set verifier can use. Identities that the overlap
check matched to an LFW person (``lfw_excluded.json``) are dropped from both splits.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from arcdemo.data import (
    FACE_DATASETS,
    DatasetMissingError,
    Split,
    cache_dir,
    data_root,
    register_augmenter,
    register_reader,
    stable_key,
)
from arcdemo.faces.augment import augment_faces

SOURCES = ("fiw", "celeba")  # a face training set (data.FACE_DATASETS) is one source or both
VAL_EVERY = 10  # every 10th FIW family / CelebA identity number is a validation identity
REFERENCE_PER_IDENTITY = 3  # reference descriptors kept per identity, for the LFW overlap check
REFERENCE_DIM = 128  # dlib ResNet descriptor
CELEBA_PREFIX = "CelebA-"  # CelebA identity 4321 is class "CelebA-4321"; FIW names stay "F0002_MID1"
IDENTITIES_ENV = "ARCDEMO_FACE_IDENTITIES"  # "N": only the first N identities of each source (smoke runs, tests)
EXCLUDED_FILE = Path(__file__).with_name("lfw_excluded.json")
NO_FACE = -1  # detection code of an image in which no face was found
_CELEBA_NAME = re.compile(r"^\d{6}\.jpg$")


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="img", file=sys.stderr, mininterval=10.0, disable=total < 50)


def faces_root() -> Path:
    return data_root() / "faces"


@dataclass(frozen=True)
class SourceFiles:
    """The image files of one source, each with its identity name, in a fixed order."""

    source: str
    paths: tuple[Path, ...]
    identities: tuple[str, ...]  # per image
    unlabelled: int = 0  # CelebA images found but not in identity_CelebA.txt (skipped)


def fiw_files(folder: Path | None = None) -> SourceFiles:
    folder = folder or faces_root() / "fiw"
    if not folder.is_dir():
        raise DatasetMissingError(f"FIW not found at {folder.resolve()}; point ARCDEMO_DATA_ROOT at the data root")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(path, name) for name in names for path in sorted((folder / name).glob("*.jpg"))]
    if not files:
        raise DatasetMissingError(f"{folder.resolve()} has no <identity>/*.jpg faces")
    return SourceFiles("fiw", tuple(p for p, _ in files), tuple(n for _, n in files))


def celeba_files(folder: Path | None = None) -> SourceFiles:
    """CelebA's images under ``folder`` (default ``<data root>/faces/celeba``), labelled by ``identity_CelebA.txt``.

    Images are the ``NNNNNN.jpg`` files in any sub-folder (``img_align_celeba/`` and others); a number that two
    folders both hold is taken once, from the first folder in sorted order.
    """
    folder = folder or faces_root() / "celeba"
    labels_file = folder / "identity_CelebA.txt"
    if not folder.is_dir():
        raise DatasetMissingError(
            f"CelebA not found at {folder.resolve()}: put identity_CelebA.txt and img_align_celeba/ there "
            "(or run shared/data/faces/celeba/assemble.sh into it)"
        )
    if not labels_file.is_file():
        raise DatasetMissingError(f"{labels_file.resolve()} is missing: CelebA's identity labels are needed")
    identity: dict[str, str] = {}
    for number, line in enumerate(labels_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not _CELEBA_NAME.match(parts[0]) or not parts[1].isdigit():
            raise DatasetMissingError(
                f"{labels_file} is not CelebA's identity file: line {number} is not '<NNNNNN>.jpg <identity>': "
                f"{line[:60]!r}")
        identity[parts[0]] = parts[1]
    seen: dict[str, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(sub.iterdir()):
            if _CELEBA_NAME.match(path.name) and path.name not in seen:
                seen[path.name] = path
    if not seen:
        raise DatasetMissingError(f"{folder.resolve()} has no folder of CelebA images (NNNNNN.jpg)")
    labelled = sorted((identity[name], name) for name in seen if name in identity)
    labelled.sort(key=lambda item: (int(item[0]), item[1]))
    return SourceFiles(
        "celeba",
        tuple(seen[name] for _, name in labelled),
        tuple(CELEBA_PREFIX + ident for ident, _ in labelled),
        unlabelled=len(seen) - len(labelled),
    )


def source_files(source: str) -> SourceFiles:
    if source not in SOURCES:
        raise ValueError(f"unknown face source {source!r}; choose one of {', '.join(SOURCES)}")
    files = fiw_files() if source == "fiw" else celeba_files()
    limit = int(os.environ.get(IDENTITIES_ENV, "0") or 0)
    if limit:
        keep = set(list(dict.fromkeys(files.identities))[:limit])  # the first N in file order
        chosen = [i for i, name in enumerate(files.identities) if name in keep]
        files = SourceFiles(files.source, tuple(files.paths[i] for i in chosen),
                            tuple(files.identities[i] for i in chosen), files.unlabelled)
    return files


# --- aligning a source ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedSource:
    """A source aligned: a crop per image (black where no face), how each was found, reference descriptors.

    ``detection`` holds an index into :data:`arcdemo.faces.align.DETECTIONS`, or :data:`NO_FACE`; ``reference``
    is NaN in rows not computed (only the first :data:`REFERENCE_PER_IDENTITY` faces of an identity).
    """

    source: str
    paths: tuple[str, ...]
    identities: tuple[str, ...]
    crops: torch.Tensor  # (N, 3, 112, 112) uint8
    detection: torch.Tensor  # (N,) int64
    reference: torch.Tensor  # (N, 128) float32
    unlabelled: int = 0

    @property
    def found(self) -> np.ndarray:
        return self.detection.numpy() != NO_FACE

    def counts(self) -> dict:
        """Images, faces found and how, identities: the numbers a card reports about its training data."""
        from arcdemo.faces.align import DETECTIONS

        codes = self.detection.numpy()
        return {
            "images": len(codes),
            "without_face": int((codes == NO_FACE).sum()),
            "found_by": {name: int((codes == i).sum()) for i, name in enumerate(DETECTIONS) if (codes == i).any()},
            "identities": len(set(self.identities)),
            "unlabelled_images": self.unlabelled,
        }


def _align_one(job: tuple[str, bool, bool]) -> tuple[np.ndarray | None, int, np.ndarray | None]:
    """(crop, detection code, reference descriptor or None) of one image; runs in a worker process."""
    from arcdemo.faces.align import DETECTIONS, NoFaceError, align_face
    from arcdemo.faces.reference import ReferenceModel

    path, assume_cropped, with_reference = job
    try:
        face = align_face(path, assume_cropped=assume_cropped, try_turns=False)
    except (NoFaceError, ValueError):
        return None, NO_FACE, None
    descriptor = ReferenceModel().embed(face) if with_reference else None
    return face.crop, DETECTIONS.index(face.detection), descriptor


def _workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), int(os.environ.get("ARCDEMO_ALIGN_WORKERS", "64"))))


def align_source(source: str) -> AlignedSource:
    """Align every image of ``source`` once (all cores) and cache the result by file: images added to a source
    later (another CelebA folder) are the only ones aligned on the next call."""
    files = source_files(source)
    seen: dict[str, int] = {}
    wanted = []  # reference descriptors of each identity's first images
    for name in files.identities:
        wanted.append(seen.get(name, 0) < REFERENCE_PER_IDENTITY)
        seen[name] = seen.get(name, 0) + 1
    folder = (faces_root() / source).resolve()
    aligned = align_images(files.paths, f"faces-{source}-{stable_key(str(folder))}", reference=wanted,
                           assume_cropped=source == "fiw")
    _keep_first_references(aligned.reference, aligned.detection, files.identities)  # rows copied out of the cache
    return AlignedSource(source, aligned.paths, files.identities, aligned.crops, aligned.detection,
                         aligned.reference, files.unlabelled)


def _align_into(jobs: list, rows: Sequence[int], crops: torch.Tensor, detection: torch.Tensor,
                reference: torch.Tensor, description: str) -> None:
    """Run ``_align_one`` over ``jobs`` on every core, writing job k's results into row ``rows[k]``."""
    # spawned, not forked: a fork of a process whose torch threads hold locks can hang in the child
    context = multiprocessing.get_context("spawn")
    with _progress(len(jobs), description) as bar, ProcessPoolExecutor(_workers(), mp_context=context) as pool:
        for i, (crop, code, descriptor) in zip(rows, pool.map(_align_one, jobs, chunksize=16)):
            if crop is not None:
                crops[i] = torch.from_numpy(crop).permute(2, 0, 1)
            detection[i] = code
            if descriptor is not None:
                reference[i] = torch.from_numpy(descriptor)
            bar.update()


def _read_cache(path: Path) -> dict[str, torch.Tensor]:
    if path.exists():
        try:
            return load_file(path)
        except Exception:  # truncated or foreign: rebuilt, never trusted
            path.unlink(missing_ok=True)
    return {}


def _write_cache(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Written atomically; an unwritable cache only costs alignment time next run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, temporary)
        temporary.replace(path)
    except OSError:
        pass


def _keep_first_references(reference: torch.Tensor, detection: torch.Tensor, identities: Sequence[str]) -> None:
    """Keep the descriptors of each identity's first ``REFERENCE_PER_IDENTITY`` found faces, NaN the rest."""
    kept: dict[str, int] = {}
    for i, name in enumerate(identities):
        if detection[i] == NO_FACE or reference[i].isnan().any():
            reference[i] = float("nan")
            continue
        if kept.get(name, 0) >= REFERENCE_PER_IDENTITY:
            reference[i] = float("nan")
        kept[name] = kept.get(name, 0) + 1


def align_images(paths: Sequence[Path], cache_name: str, reference: bool | Sequence[bool] = False,
                 assume_cropped: bool = False) -> AlignedSource:
    """Align photos once, with dlib's reference descriptor where ``reference`` asks (all, or per path), cached by
    path as ``aligned-<cache_name>-<alignment key>``; rows come back in the order asked for, and a later call
    aligns only the paths (and descriptors) the cache lacks.

    Both face models are then scored on exactly the same detections and landmarks.
    """
    from arcdemo.faces.align import ALIGNMENT_KEY

    keys = [str(Path(p).resolve()) for p in paths]
    wants = [reference] * len(keys) if isinstance(reference, bool) else list(reference)
    if len(wants) != len(keys):
        raise ValueError(f"{len(wants)} reference flags for {len(keys)} paths")
    cache = cache_dir() / f"aligned-{cache_name}-{ALIGNMENT_KEY}.safetensors"
    stored = _read_cache(cache)
    names = stored["paths"].numpy().tobytes().decode().split("\n") if stored else []
    row = {name: i for i, name in enumerate(names)}
    crops = stored.get("crops", torch.empty(0, 3, 112, 112, dtype=torch.uint8))
    detection = stored.get("detection", torch.empty(0, dtype=torch.int64))
    descriptors = stored.get("reference", torch.empty(0, REFERENCE_DIM))  # NaN row = not computed yet
    asked = dict(zip(keys, wants))  # a path asked for twice keeps its last flag
    todo = [k for k, want in asked.items() if k not in row
            or (want and detection[row[k]] != NO_FACE and descriptors[row[k]].isnan().any())]
    if todo:
        new = [k for k in todo if k not in row]
        crops = torch.cat([crops, torch.zeros(len(new), 3, 112, 112, dtype=torch.uint8)])
        detection = torch.cat([detection, torch.full((len(new),), NO_FACE, dtype=torch.int64)])
        descriptors = torch.cat([descriptors, torch.full((len(new), REFERENCE_DIM), float("nan"))])
        for k in new:
            row[k] = len(names)
            names.append(k)
        _align_into([(k, assume_cropped, asked[k]) for k in todo], [row[k] for k in todo], crops, detection,
                    descriptors, f"aligning {cache_name}")
        encoded = torch.frombuffer(bytearray("\n".join(names).encode()), dtype=torch.uint8)
        _write_cache(cache, {"paths": encoded, "crops": crops, "detection": detection, "reference": descriptors})
    index = torch.tensor([row[k] for k in keys], dtype=torch.int64)
    return AlignedSource(cache_name, tuple(keys), tuple(Path(k).parent.name for k in keys), crops[index],
                         detection[index], descriptors[index])


# --- splits ----------------------------------------------------------------------------------------------------------


def family(identity: str) -> str:
    """FIW identity ``F0002_MID1`` belongs to family ``F0002``; a CelebA identity is its own family."""
    return identity if identity.startswith(CELEBA_PREFIX) else identity.split("_", 1)[0]


def validation_identities(identities: Sequence[str]) -> set[str]:
    """Every 10th FIW family in sorted order (the first, the 11th, …) and every CelebA number divisible by 10."""
    families = sorted({family(n) for n in identities if not n.startswith(CELEBA_PREFIX)})
    held_out = set(families[::VAL_EVERY])
    return {n for n in identities
            if (int(n[len(CELEBA_PREFIX):]) % VAL_EVERY == 0 if n.startswith(CELEBA_PREFIX) else family(n) in held_out)}


def excluded_identities() -> dict[str, list[str]]:
    """Training identities the LFW overlap check matched to an LFW person, per source (committed file)."""
    if not EXCLUDED_FILE.exists():
        return {}
    return json.loads(EXCLUDED_FILE.read_text())["excluded"]


def split_identities(aligned: AlignedSource, split: str, excluded: Sequence[str] = ()) -> list[str]:
    """The identities of "train" or "val": ≥ 2 faces found, not ``excluded``; FIW grouped by family."""
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r}; face sets have train and val")
    counts: dict[str, int] = {}
    for name, ok in zip(aligned.identities, aligned.found):
        counts[name] = counts.get(name, 0) + int(ok)
    held_out, drop = validation_identities(list(counts)), set(excluded)
    return sorted((n for n, c in counts.items() if c >= 2 and n not in drop and (n in held_out) == (split == "val")),
                  key=lambda n: (family(n), n))


def source_split(aligned: AlignedSource, split: str, excluded: Sequence[str] = ()) -> Split:
    """"train" or "val" of one aligned source (:func:`split_identities`): every found face of those identities,
    with the reference descriptors the cache holds as the split's teacher (NaN rows for the faces without one)."""
    names = split_identities(aligned, split, excluded)
    label = {n: i for i, n in enumerate(names)}
    rows = [i for i, (n, ok) in enumerate(zip(aligned.identities, aligned.found)) if ok and n in label]
    labels = torch.tensor([label[aligned.identities[i]] for i in rows], dtype=torch.int64)
    index = torch.tensor(rows, dtype=torch.int64)
    return Split(aligned.crops[index], labels, tuple(names), teacher=aligned.reference[index])


def validation_references(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(reference descriptors, identity labels) of a face set's validation identities: what the reference model is
    calibrated on, the same people our model is."""
    excluded = excluded_identities()
    vectors, labels, offset = [], [], 0
    for source in dataset.split("+"):
        aligned = align_source(source)
        names = {n: i for i, n in enumerate(split_identities(aligned, "val", excluded.get(source, ())))}
        rows = [i for i, n in enumerate(aligned.identities)
                if n in names and aligned.found[i] and not aligned.reference[i].isnan().any()]
        vectors.append(aligned.reference[rows].numpy())
        labels.append(np.array([names[aligned.identities[i]] for i in rows], dtype=np.int64) + offset)
        offset += len(names)
    return np.concatenate(vectors), np.concatenate(labels)


def concatenate(splits: Sequence[Split]) -> Split:
    """Several splits as one, labels offset so classes stay apart."""
    offsets = np.cumsum([0] + [len(s.class_names) for s in splits[:-1]])
    teachers = [s.teacher for s in splits]
    return Split(torch.cat([s.images for s in splits]), torch.cat([s.labels + int(o) for s, o in zip(splits, offsets)]),
                 tuple(name for s in splits for name in s.class_names),
                 None if any(t is None for t in teachers) else torch.cat(teachers))


def face_split(dataset: str, split: str) -> Split:
    """The "train" or "val" identities of a face training set: ``fiw``, ``celeba`` or ``fiw+celeba``."""
    if dataset not in FACE_DATASETS:
        raise ValueError(f"unknown face dataset {dataset!r}; choose one of {', '.join(FACE_DATASETS)}")
    excluded = excluded_identities()
    return concatenate([source_split(align_source(s), split, excluded.get(s, ())) for s in dataset.split("+")])


for _name in FACE_DATASETS:  # the catalog's face sets: read by face_split, augmented by augment_faces (data imports
    register_reader(_name)(lambda split, *, _dataset=_name, **_: face_split(_dataset, split))  # this module on use)
    register_augmenter(_name)(augment_faces)


def face_data_card(dataset: str) -> dict:
    """What a face model's card says about its training data: per source, counts and the LFW exclusions."""
    excluded = excluded_identities()
    card = {}
    for source in dataset.split("+"):
        aligned = align_source(source)
        train, val = (source_split(aligned, s, excluded.get(source, ())) for s in ("train", "val"))
        card[source] = {**aligned.counts(), "train_identities": len(train.class_names), "train_images": len(train),
                        "val_identities": len(val.class_names), "val_images": len(val),
                        "lfw_excluded_identities": len(excluded.get(source, ()))}
    return card
