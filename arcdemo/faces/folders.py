"""A user's folder of face photos, aligned: every photo through the face pipeline, saved as 112 px crops in a
folder of the same classes, so the folder trains like any other (on a neck over the frozen face model)."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from arcdemo.data import IMAGE_SUFFIXES
from arcdemo.faces.align import ALIGNMENT_KEY, NoFaceError, align_face

MANIFEST = "aligned.json"  # beside the crops: which photos had no face (not an image, so never read as one)


@dataclass(frozen=True)
class AlignedFolder:
    root: Path  # <class>/<photo>.png crops (or train/ and test/ folders of them, as the source was laid out)
    photos: int  # photos read
    without_face: tuple[str, ...]  # photos (paths relative to the source) in which no face was found: left out


def align_image_folder(source: str | Path) -> AlignedFolder:
    """Align every photo under ``source`` once into ``<source>-aligned-<alignment key>`` beside it (reused when it
    is there); a photo without a face is listed in the result, not fatal."""
    source = Path(source)
    target = source.with_name(f"{source.name}-aligned-{ALIGNMENT_KEY}")
    if not (target / MANIFEST).is_file():
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=source.parent))
        try:
            photos, missing = _align_into(source, staging)
            (staging / MANIFEST).write_text(json.dumps({"photos": photos, "without_face": missing}, indent=1))
            staging.replace(target)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if not (isinstance(error, OSError) and (target / MANIFEST).is_file()):
                raise  # else another request aligned the same photos first: theirs is used
    manifest = json.loads((target / MANIFEST).read_text())
    return AlignedFolder(target, manifest["photos"], tuple(manifest["without_face"]))


def _align_into(source: Path, target: Path) -> tuple[int, list[str]]:
    paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(source).parts))
    missing = []
    for path in paths:
        relative = path.relative_to(source)
        try:
            crop = align_face(path).crop
        except (NoFaceError, ValueError):  # no face, or not an image at all: listed, the rest still trains
            missing.append(relative.as_posix())
            continue
        out = target / relative.with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(out)
    return len(paths), missing


def aligned_note(folder: str | Path) -> str:
    """One sentence on an aligned folder's photos without a face ("" for any other folder)."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return ""
    data = json.loads(manifest.read_text())
    missing = data["without_face"]
    if not missing:
        return f"all {data['photos']} photos aligned"
    listed = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return f"{data['photos'] - len(missing)} of {data['photos']} photos aligned; no face found in {listed} (left out)"
