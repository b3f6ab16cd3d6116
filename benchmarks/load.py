"""Concurrent visitors: N sessions calling Draw, Classify and Faces through gradio_client, idle and while a ninth
session trains with the Train tab's defaults; and that training alone, for comparison.

    .venv/bin/python benchmarks/load.py [--sessions 8] [--calls 12]

Reports p50/p95 seconds per endpoint idle and under load, every failure with its message, the training's
time and test accuracy alone and under load, and the CPU seconds the server spent on each phase (what the
visitors cost is CPU the training cannot have on a CPU they share). Targets: 0 failures of sessions × calls; Draw's
p95 under load ≤ 3× idle; the training within ±20% of its time alone. Uses ``$ARCDEMO_DATA_ROOT`` (MNIST for the
training, LFW photos for Faces). Writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from benchmarks.app_latency import drawing, machine  # noqa: E402
from tests.test_browser import running_app  # noqa: E402

ENDPOINTS = ("/predict_digit", "/classify_image", "/verify_faces")


def inputs(folder: Path) -> dict[str, tuple]:
    """One input per endpoint, as files (what a browser uploads)."""
    from gradio_client import handle_file
    from PIL import Image

    from arcdemo.data import data_root
    from arcdemo.faces.evaluate import lfw_pairs

    sketch = folder / "digit.png"
    Image.fromarray(drawing(np.random.default_rng(0))["composite"]).save(sketch)
    photo = folder / "photo.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(photo)
    first, second, _, _ = next(p for p in lfw_pairs(data_root() / "faces") if p[2])
    drawn = {"background": None, "layers": [], "composite": handle_file(str(sketch))}
    return {
        "/predict_digit": (drawn, "mnist-arcface-3d"),
        "/classify_image": (handle_file(str(photo)), "cifar10-arcface-3d"),
        "/verify_faces": (handle_file(str(first)), handle_file(str(second))),
    }


def server_cpu_s() -> float | None:
    """CPU seconds (user + system) the app server (this process's child running app.py) has used so far, from
    Linux's /proc; None elsewhere."""
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return None
    for pid in (pid for task in tasks for pid in (task / "children").read_text().split()):
        try:
            if b"app.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a short-lived child that has gone
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return None


def cpu_between(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 1)


def visitors(url: str, sessions: int, calls: int, arguments: dict[str, tuple]) -> dict:
    """``sessions`` clients at once, each making ``calls`` calls cycling through the endpoints."""
    from gradio_client import Client

    times: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    failures: list[str] = []
    lock = threading.Lock()

    def visit(index: int) -> None:
        client = Client(url, verbose=False)
        for call in range(calls):
            name = ENDPOINTS[(index + call) % len(ENDPOINTS)]
            started = time.perf_counter()
            try:
                client.predict(*arguments[name], api_name=name)
            except Exception as error:  # noqa: BLE001 - every failure is counted and named
                with lock:
                    failures.append(f"{name}: {type(error).__name__}: {str(error)[:200]}")
                continue
            with lock:
                times[name].append(time.perf_counter() - started)

    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(visit, range(sessions)))
    summary = {
        name: {"calls": len(values), "p50_s": round(statistics.median(values), 3),
               "p95_s": round(float(np.percentile(values, 95)), 3)}
        for name, values in times.items() if values
    }
    return {"endpoints": summary, "failures": failures, "calls": sessions * calls}


def training(url: str) -> tuple[threading.Thread, dict]:
    """Start the Train tab's defaults in their own session; the dict fills in when it finishes."""
    from gradio_client import Client

    from arcdemo.ui.callbacks import TRAIN_DEFAULTS

    result: dict = {}

    def run() -> None:
        client = Client(url, verbose=False)
        started = time.perf_counter()
        outputs = client.predict(**TRAIN_DEFAULTS, api_name="/train")
        result["press_to_done_s"] = round(time.perf_counter() - started, 1)
        found = [part for part in outputs[0].split("<b>") if "%</b>" in part]
        result["test_accuracy_percent"] = float(found[0].split("%")[0]) if found else None

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, running_app({}, Path(scratch) / "app.log") as url:
        arguments = inputs(Path(scratch))
        visitors(url, 2, len(ENDPOINTS), arguments)  # warm: models loaded, figures cached
        cpu = [server_cpu_s()]
        idle = visitors(url, args.sessions, args.calls, arguments)
        cpu.append(server_cpu_s())
        thread, alone = training(url)
        thread.join()
        cpu.append(server_cpu_s())
        thread, loaded = training(url)
        time.sleep(5)  # the training is past loading and into its steps
        under_load = visitors(url, args.sessions, args.calls, arguments)
        thread.join()
        cpu.append(server_cpu_s())
    idle["server_cpu_s"] = cpu_between(cpu[0], cpu[1])
    alone["server_cpu_s"] = cpu_between(cpu[1], cpu[2])
    loaded["server_cpu_s_with_the_visitors"] = cpu_between(cpu[2], cpu[3])
    draw_ratio = under_load["endpoints"]["/predict_digit"]["p95_s"] / idle["endpoints"]["/predict_digit"]["p95_s"]
    result = {
        "sessions": args.sessions, "calls_per_session": args.calls, "idle": idle, "under_load": under_load,
        "training_alone": alone, "training_under_load": loaded,
        "draw_p95_ratio_load_to_idle": round(draw_ratio, 2),
        "training_time_ratio": round(loaded["press_to_done_s"] / alone["press_to_done_s"], 2),
        "machine": machine(), "command": "python benchmarks/load.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    (REPO / "benchmarks" / "results" / "load.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
