"""Images the app sends back, written as files that are never rewritten while a browser reads them.

Gradio saves an image returned as an array to ``<cache>/<content hash>/image.webp`` by truncating and rewriting that
file on every call, so two visitors who get the same picture (the same example photo, the same empty crop) race:
one request streams the file while another rewrites it, and the first ends with "Too little data for declared
Content-Length". A file path returned instead is copied into the cache under a temporary name and renamed into
place, once per content. So every image leaves here as a PNG file written the same way: under a temporary name,
then renamed to its content hash, never touched again.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

OUTPUT_DIR = Path(os.environ.get("ARCDEMO_OUTPUT_DIR", Path(tempfile.gettempdir()) / f"arcdemo-outputs-{os.getuid()}"))
KEEP_S = 3600.0  # files older than this are deleted when new ones are written (Gradio keeps its own copy)
_PRUNE_EVERY_S = 300.0
_last_prune = [0.0]


def image_file(image: np.ndarray | None) -> str | None:
    """The array as a PNG file named by its content (written once, atomically); None stays None."""
    if image is None:
        return None
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, "PNG", compress_level=1)
    data = buffer.getvalue()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{hashlib.sha1(data).hexdigest()}.png"
    try:
        os.utime(path)  # in use again: not pruned for another KEEP_S
    except FileNotFoundError:
        fd, staging = tempfile.mkstemp(dir=OUTPUT_DIR, prefix=".", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
    _prune()
    return str(path)


def _prune() -> None:
    now = time.time()
    if now - _last_prune[0] < _PRUNE_EVERY_S:
        return
    _last_prune[0] = now
    for old in OUTPUT_DIR.glob("*.png"):
        try:
            if now - old.stat().st_mtime > KEEP_S:
                old.unlink()
        except OSError:
            pass  # another process pruned it first
