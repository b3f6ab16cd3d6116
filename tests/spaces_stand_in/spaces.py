"""A stand-in for Hugging Face's ``spaces`` package, as ZeroGPU behaves: ``GPU(duration=…)`` runs the decorated
function in another process (spawned: it imports the function by name) and streams a generator's yields back as
plain pickles (bytes: no shared-memory handles that die with the process); an exception there is raised here.
Every call appends "pid duration" to ``$SPACES_STAND_IN_LOG``."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import queue
from collections.abc import Callable, Iterator
from typing import Any

_DONE = "__stand_in_done__"


def _child(module: str, name: str, args: tuple, kwargs: dict, duration: int, out: Any) -> None:
    with open(os.environ["SPACES_STAND_IN_LOG"], "a") as log:
        log.write(f"{os.getpid()} {duration}\n")
    try:
        for item in getattr(importlib.import_module(module), name)(*args, **kwargs):
            out.put(("item", pickle.dumps(item)))
    except BaseException as error:  # noqa: BLE001 - sent to the caller, as ZeroGPU does
        out.put(("error", pickle.dumps(error)))
    out.put((_DONE, None))


def GPU(fn: Callable | None = None, *, duration: int = 60) -> Callable:  # noqa: N802 - the real package's name
    def decorate(function: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            context = multiprocessing.get_context("spawn")
            out = context.Queue()
            target = (function.__module__, function.__qualname__, args, kwargs, duration, out)
            process = context.Process(target=_child, args=target, daemon=True)
            process.start()
            try:
                while True:
                    try:
                        kind, value = out.get(timeout=1)
                    except queue.Empty:
                        if not process.is_alive():
                            raise RuntimeError("the GPU process died") from None
                        continue
                    if kind == _DONE:
                        return
                    if kind == "error":
                        raise pickle.loads(value)
                    yield pickle.loads(value)
            finally:
                process.join(timeout=30)

        return call

    return decorate(fn) if fn is not None else decorate
