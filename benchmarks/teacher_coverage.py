"""Does the reference teach more when every training face has its descriptor? The distilled candidate, retrained
with dlib's descriptor for all training faces instead of the first three per person the alignment cache keeps.

    python benchmarks/teacher_coverage.py       # ~14 min of descriptors (cached in runs/), then ~27 min of training
    python benchmarks/face_cohort.py --checkpoint runs/faces-arcface-distilled-full     # its validation table

The run is ``--preset faces-arcface-distilled`` through the command line's own ``train`` (calibration, LFW and ORL
included), with one change: the training split's teacher rows. Descriptors are computed as the alignment cache's
are (the same detection and 5-point fit on the original photo, dlib's own 150 px chip); a sample of the rows the
cache already holds is recomputed first and must agree, so the two kinds of rows are one teacher.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tqdm import tqdm  # noqa: E402

from arcdemo import cli  # noqa: E402
from arcdemo.data import Split  # noqa: E402
from arcdemo.faces import data as face_data  # noqa: E402

DATASET = "fiw+celeba"
OUT = REPO / "runs" / "faces-arcface-distilled-full"
AGREEMENT_SAMPLE = 24  # rows with a cached descriptor recomputed as a check


def descriptor(job: tuple[str, bool]) -> np.ndarray:
    """dlib's unit descriptor of one training photo (NaN when no face is found); runs in a worker process."""
    from arcdemo.faces.align import NoFaceError, align_face
    from arcdemo.faces.reference import ReferenceModel

    path, assume_cropped = job
    try:
        return ReferenceModel().embed(align_face(path, assume_cropped=assume_cropped, try_turns=False))
    except (NoFaceError, ValueError):
        return np.full(128, np.nan, dtype=np.float32)


def _descriptors(jobs: list[tuple[str, bool]], description: str) -> torch.Tensor:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(os.sched_getaffinity(0)), mp_context=context) as pool:
        found = list(tqdm(pool.map(descriptor, jobs, chunksize=16), total=len(jobs), desc=description))
    return torch.from_numpy(np.stack(found)) if found else torch.empty(0, 128)


def source_teacher(source: str) -> torch.Tensor:
    """The training split's teacher for ``source`` with every row filled, in ``source_split``'s row order."""
    cache = REPO / "runs" / f"teacher-full-{source}.safetensors"
    aligned = face_data.align_source(source)
    names = set(face_data.split_identities(aligned, "train", face_data.excluded_identities().get(source, ())))
    rows = [i for i, (n, ok) in enumerate(zip(aligned.identities, aligned.found)) if ok and n in names]
    if cache.exists():
        teacher = load_file(cache)["teacher"]
        if len(teacher) == len(rows):
            return teacher
    teacher = aligned.reference[rows].clone()
    missing = [k for k in range(len(rows)) if teacher[k].isnan().any()]
    present = [k for k in range(len(rows)) if not teacher[k].isnan().any()]
    held = present[:: max(1, len(present) // AGREEMENT_SAMPLE)][:AGREEMENT_SAMPLE]
    check = _descriptors([(aligned.paths[rows[k]], source == "fiw") for k in held], f"{source}: agreement check")
    gap = float((check - teacher[held]).abs().max())
    if not gap < 1e-4:
        sys.exit(f"{source}: recomputed descriptors differ from the cached ones by up to {gap:.2e}; not one teacher")
    print(f"{source}: {len(held)} cached descriptors recomputed, max difference {gap:.1e}", file=sys.stderr)
    teacher[missing] = _descriptors([(aligned.paths[rows[k]], source == "fiw") for k in missing],
                                    f"{source}: {len(missing):,} descriptors")
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"teacher": teacher.contiguous()}, cache)
    return teacher


def main() -> None:
    teacher = torch.cat([source_teacher(source) for source in DATASET.split("+")])
    covered = int(teacher.isfinite().all(dim=1).sum())
    print(f"teacher: {covered:,} of {len(teacher):,} training faces", file=sys.stderr)
    read = face_data.face_split

    def widened(dataset: str, split: str):  # noqa: ANN202 - a Split
        result = read(dataset, split)
        if dataset == DATASET and split == "train":
            assert len(result) == len(teacher), (len(result), len(teacher))
            result = Split(result.images, result.labels, result.class_names, teacher)
        return result

    face_data.face_split = widened  # the registered reader looks the name up at each call
    sys.exit(cli.main(["train", "--preset", "faces-arcface-distilled", "--out", str(OUT)]))


if __name__ == "__main__":
    main()
