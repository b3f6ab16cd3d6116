"""CPU scheduling: how many torch threads each kind of work runs on, and the trainer's lower priority."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ThreadPolicy:
    """Single-image inference runs torch on one thread; training and evaluation on ``training_threads``.

    Several OpenMP threads on a busy small CPU make one prediction wait at every op, so a request predicts on one
    thread. Torch's thread count is per OS thread, and a thread started later begins with whatever count was last
    set anywhere: so every path sets its own on entry (the trainer thread when it starts, a request thread before it
    predicts or evaluates) and no thread's setting reaches another. Training and evaluation use
    ``$ARCDEMO_TORCH_THREADS`` threads, by default one per core this process may use; set 1 on a CPU shared with
    other jobs (README, "The app", has the measurements).
    """

    @staticmethod
    def training_threads() -> int:
        configured = os.environ.get("ARCDEMO_TORCH_THREADS", "")
        if configured.isdigit() and int(configured) > 0:
            return int(configured)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def settle(self) -> None:
        """This thread trains or evaluates next: give it the training thread count."""
        import torch

        torch.set_num_threads(self.training_threads())

    @staticmethod
    def yield_to_requests() -> None:
        """This thread trains: lower its scheduling priority (``$ARCDEMO_TRAINER_NICE``, default 10; "off" keeps
        it) so that a visitor's prediction gets a core the moment it needs one, while the training keeps every
        cycle nobody else wants. Linux keeps a nice value per thread and a new thread inherits its creator's, so
        the OpenMP workers this thread starts with its first parallel op inherit it too: call it before any torch
        op on this thread."""
        configured = os.environ.get("ARCDEMO_TRAINER_NICE", "10")
        if not configured.isdigit() or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(configured))
        except OSError:  # a platform that will not: the trainer keeps the default priority
            pass

    @contextmanager
    def single(self) -> Iterator[None]:
        """This thread predicts one image: one torch thread (the next path on this thread sets its own again)."""
        import torch

        torch.set_num_threads(1)
        yield


THREADS = ThreadPolicy()
