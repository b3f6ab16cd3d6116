"""The session's model store (shipped and session models) and the CPU scheduling of its work."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from arcdemo.ui import store
from arcdemo.ui.store import load_model
from arcdemo.ui.threads import THREADS
from tests.helpers import TinyWorld


def test_checkpoints_are_discovered_and_junk_ignored(tiny_world: TinyWorld) -> None:
    from arcdemo.ui.store import available_models, list_checkpoints

    keys = [entry.key for entry in list_checkpoints()]
    assert keys == ["mnist-tiny-3d", "mnist-random-2d", "mnist-random-8d", "cifar10-tiny-3d"]  # 3-D first
    assert [e.key for e in available_models(dataset="cifar10")] == ["cifar10-tiny-3d"]
    label = next(e.label for e in list_checkpoints() if e.key == "mnist-tiny-3d")
    assert "MNIST" in label and "ArcFace" in label and "3-D" in label and "% test" in label


@pytest.mark.parametrize("key", ["nope", "../checkpoints/mnist-tiny-3d", "session:99", "", None])
def test_unknown_models_are_explained(tiny_world: TinyWorld, key: object) -> None:
    from arcdemo.ui.store import ModelNotFound, load_model

    with pytest.raises(ModelNotFound):
        load_model(key)  # type: ignore[arg-type]


def test_shipped_models_are_cached(tiny_world: TinyWorld) -> None:
    assert load_model("mnist-tiny-3d") is load_model("mnist-tiny-3d")


def test_session_models_are_capped() -> None:
    deleted = []

    class Fake:
        def __init__(self, key: str) -> None:
            self.key = key

        def delete_files(self) -> None:
            deleted.append(self.key)

    session: dict = {}
    for index in range(store.MAX_SESSION_MODELS + 2):
        session = store.add_session_model(session, Fake(f"session:{index}"))  # type: ignore[arg-type]
    assert list(session) == [f"session:{i}" for i in range(2, store.MAX_SESSION_MODELS + 2)]
    assert deleted == ["session:0", "session:1"]  # a dropped model's files go with it


def test_thread_counts_are_per_thread_and_a_trainer_sets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request thread predicts on 1 torch thread and does not hand its 1 to a trainer started after it."""
    import torch


    monkeypatch.setenv("ARCDEMO_TORCH_THREADS", "2")
    seen: dict[str, int] = {}
    predicting, trainer_ready = threading.Event(), threading.Event()

    def request() -> None:
        with THREADS.single():
            seen["request"] = torch.get_num_threads()
            predicting.set()
            trainer_ready.wait(10)

    def trainer() -> None:
        predicting.wait(10)
        seen["new thread starts with"] = torch.get_num_threads()
        THREADS.settle()
        seen["trainer"] = torch.get_num_threads()
        trainer_ready.set()

    threads = [threading.Thread(target=request), threading.Thread(target=trainer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen["request"] == 1 and seen["trainer"] == 2, seen


def _nice_of_threads() -> dict[int, int]:
    """Every thread of this process: OS thread id → its nice value (field 19 of /proc/self/task/<id>/stat)."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended after the listing
            continue
        values[int(task.name)] = int(fields[16])
    return values


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread priorities from Linux's /proc")
def test_a_trainer_yields_the_cpu_to_predictions_with_its_torch_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer thread lowers its own priority before any torch op, so the OpenMP workers it starts inherit it;
    request threads and the threads that were there before keep theirs."""
    import torch


    monkeypatch.setenv("ARCDEMO_TORCH_THREADS", "2")
    monkeypatch.setenv("ARCDEMO_TRAINER_NICE", "7")
    before = _nice_of_threads()
    seen: dict[str, object] = {}

    def trainer() -> None:
        THREADS.yield_to_requests()
        THREADS.settle()
        x = torch.randn(512, 512)
        for _ in range(5):
            x = (x @ x).tanh()  # parallel ops: the workers start now, from this thread
        seen["trainer"] = threading.get_native_id()
        seen["threads"] = _nice_of_threads()

    thread = threading.Thread(target=trainer)
    thread.start()
    thread.join(30)
    after = seen["threads"]
    assert after[seen["trainer"]] == 7
    assert all(after[tid] == nice for tid, nice in before.items() if tid in after)  # the others keep theirs
    started = {tid: nice for tid, nice in after.items() if tid not in before and tid != seen["trainer"]}
    assert started and set(started.values()) == {7}, started  # torch's workers, started by the trainer
    monkeypatch.setenv("ARCDEMO_TRAINER_NICE", "off")
    THREADS.yield_to_requests()  # "off": nothing changes
    assert _nice_of_threads()[threading.get_native_id()] == before[threading.get_native_id()]
