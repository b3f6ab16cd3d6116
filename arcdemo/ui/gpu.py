"""ZeroGPU: on a Hugging Face ZeroGPU Space, a training's compute runs under ``spaces.GPU``, which runs it in a
process of its own on a borrowed GPU. Only that compute goes there; the training desk, Stop and the session stay in
the app's process, so Stop reaches the run through a file both processes see, and the final model comes back on the
CPU. Single-image predictions take milliseconds on the CPU and never wait for a GPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def on_gpu(duration: int) -> Callable[[F], F]:
    """``spaces.GPU(duration=…)`` where the ``spaces`` package imports (a ZeroGPU Space); unchanged elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


class StopFile:
    """A stop flag another process can read: ``set`` creates a file, ``is_set`` looks for it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="arcdemo-stop-"))
        self.path = str(self.folder / "stop")

    def set(self) -> None:
        Path(self.path).touch()

    def is_set(self) -> bool:
        return os.path.exists(self.path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
