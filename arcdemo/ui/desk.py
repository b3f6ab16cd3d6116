"""The training desk: one training at a time per server, and Stop for the session that asked. No gradio here."""

from __future__ import annotations

import threading


class TrainingDesk:
    """One training at a time per server, and Stop for the session that asked.

    ``announce`` (the UI calls it before queueing) registers a pending run that Stop can cancel while it waits;
    ``begin``/``end`` bracket the run itself; ``stop`` sets the running run's flag, which the trainer polls every
    step. The concurrency limit of the events does the queueing; this only keeps track of who to stop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}
        self._running: dict[str, threading.Event] = {}

    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    def announce(self, session: str) -> bool:
        """Register a pending run; True when a training is running already (so this one waits in the queue)."""
        with self._lock:
            self._pending[session] = threading.Event()
            return bool(self._running)

    def begin(self, session: str) -> threading.Event | None:
        """The run's stop flag, or None when Stop was pressed while it waited in the queue."""
        with self._lock:
            pending = self._pending.pop(session, None)
            if pending is not None and pending.is_set():
                return None
            flag = self._running[session] = threading.Event()
            return flag

    def end(self, session: str) -> None:
        with self._lock:
            self._running.pop(session, None)

    def stop(self, session: str) -> str:
        """Ask this session's running and/or queued training to stop; the answer says what happened."""
        with self._lock:
            running, pending = self._running.get(session), self._pending.get(session)
            for flag in (running, pending):
                if flag is not None:
                    flag.set()
        if running is not None:
            return "Stopping: the current step finishes, then the model is evaluated once and kept."
        if pending is not None:
            return "Cancelled: the queued training will not start."
        return "No training is running in this session."
