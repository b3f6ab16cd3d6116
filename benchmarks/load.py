"""Concurrent visitors: N sessions calling Draw, Classify and Faces through gradio_client, idle and while a ninth
session trains with the Train tab's defaults; and that training alone, for comparison.

    .venv/bin/python benchmarks/load.py [--sessions 8] [--calls 12] [--rounds 3] [--photos same|distinct]

Reports p50/p95 seconds per endpoint idle and under load, every failure with its message, the training's time and
test accuracy alone and under load, and the CPU seconds the server and this process (the visitors' clients: HTTP,
JSON, polling) spent on each phase, over ``--rounds`` rounds (medians of the ratios). Clients and server share this
machine's cores, which a Space's visitors do not: ``cpu_bound_s`` is the least time the loaded training could take
here, everything that ran beside it spread perfectly over the cores. Targets: 0 failures of sessions × calls;
Draw's p95 under load ≤ 3× idle; the training within ±20% of its time alone. Uses ``$ARCDEMO_DATA_ROOT`` (MNIST for
the training, LFW photos for Faces). ``--photos same`` (the default): every visitor uploads the same two photos,
as visitors who click a Space's example photos do, so the server's memory of recent photos answers all but the
first; ``--photos distinct``: every Faces call sends two LFW photos no call sent before, so each pays detection and
both networks. Writes benchmarks/results/load.json (load-distinct-photos.json for distinct photos).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
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
from tests.test_browser import app_cpu_s, local_client, running_app  # noqa: E402

ENDPOINTS = ("/predict_digit", "/classify_image", "/verify_faces")


def inputs(folder: Path, distinct_photos: bool) -> dict[str, list[tuple]]:
    """Inputs per endpoint, as files (what a browser uploads), taken in turn: one each, or for Faces with
    ``distinct_photos`` 400 LFW pairs in which no photo comes twice."""
    from gradio_client import handle_file
    from PIL import Image

    from arcdemo.data import data_root
    from arcdemo.faces.evaluate import lfw_pairs

    sketch = folder / "digit.png"
    Image.fromarray(drawing(np.random.default_rng(0))["composite"]).save(sketch)
    photo = folder / "photo.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(photo)
    pairs, used = [], set()
    for first, second, _, _ in lfw_pairs(data_root() / "faces"):
        if first not in used and second not in used:
            pairs.append((handle_file(str(first)), handle_file(str(second))))
            used |= {first, second}
    drawn = {"background": None, "layers": [], "composite": handle_file(str(sketch))}
    return {
        "/predict_digit": [(drawn, "mnist-arcface-3d")],
        "/classify_image": [(handle_file(str(photo)), "cifar10-arcface-3d")],
        "/verify_faces": pairs[:400] if distinct_photos else pairs[:1],
    }


def client_cpu_s() -> float:
    """CPU seconds (user + system) this process, the visitors' clients, has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_between(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 1)


_TURNS = {name: itertools.count() for name in ENDPOINTS}  # which of an endpoint's inputs a call sends


def visitors(url: str, sessions: int, calls: int, arguments: dict[str, list[tuple]]) -> dict:
    """``sessions`` clients at once, each making ``calls`` calls cycling through the endpoints."""

    times: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    failures: list[str] = []
    lock = threading.Lock()

    def visit(index: int) -> None:
        client = local_client(url)
        for call in range(calls):
            name = ENDPOINTS[(index + call) % len(ENDPOINTS)]
            with lock:
                sent = arguments[name][next(_TURNS[name]) % len(arguments[name])]
            started = time.perf_counter()
            try:
                client.predict(*sent, api_name=name)
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

    from arcdemo.ui.tabs.train import page_values

    result: dict = {}

    def run() -> None:
        client = local_client(url)
        started = time.perf_counter()
        outputs = client.predict(**page_values(), api_name="/train")
        result["press_to_done_s"] = round(time.perf_counter() - started, 1)
        found = [part for part in outputs[0].split("<b>") if "%</b>" in part]
        result["test_accuracy_percent"] = float(found[0].split("%")[0]) if found else None

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def one_round(url: str, sessions: int, calls: int, arguments: dict[str, list[tuple]]) -> dict:
    """Visitors idle, the training alone, then the training with the visitors beside it."""
    cpu, clients = [app_cpu_s()], [client_cpu_s()]

    def mark() -> None:
        cpu.append(app_cpu_s())
        clients.append(client_cpu_s())

    idle = visitors(url, sessions, calls, arguments)
    mark()
    thread, alone = training(url)
    thread.join()
    mark()
    thread, loaded = training(url)
    time.sleep(5)  # the training is past loading and into its steps
    under_load = visitors(url, sessions, calls, arguments)
    thread.join()
    mark()
    for phase, part in enumerate((idle, alone, loaded)):
        part["server_cpu_s"] = cpu_between(cpu[phase], cpu[phase + 1])
        part["client_cpu_s"] = round(clients[phase + 1] - clients[phase], 1)
    if loaded["server_cpu_s"] is not None:
        loaded["cpu_bound_s"] = round((loaded["server_cpu_s"] + loaded["client_cpu_s"]) / (os.cpu_count() or 1), 1)
    draw_ratio = under_load["endpoints"]["/predict_digit"]["p95_s"] / idle["endpoints"]["/predict_digit"]["p95_s"]
    return {
        "idle": idle, "under_load": under_load, "training_alone": alone, "training_under_load": loaded,
        "draw_p95_ratio_load_to_idle": round(draw_ratio, 2),
        "training_time_ratio": round(loaded["press_to_done_s"] / alone["press_to_done_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="repeat the three phases; medians are reported")
    parser.add_argument("--photos", choices=("same", "distinct"), default="same",
                        help="every Faces call the same two photos, or two no call sent before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, running_app({}, Path(scratch) / "app.log") as url:
        arguments = inputs(Path(scratch), args.photos == "distinct")
        visitors(url, 2, len(ENDPOINTS), arguments)  # warm: models loaded, figures cached
        rounds = [one_round(url, args.sessions, args.calls, arguments) for _ in range(args.rounds)]
    result = {
        "sessions": args.sessions, "calls_per_session": args.calls, "photos": args.photos,
        "failures": sum(len(r[phase]["failures"]) for r in rounds for phase in ("idle", "under_load")),
        "calls": sum(r[phase]["calls"] for r in rounds for phase in ("idle", "under_load")),
        **{f"{key}_median": statistics.median(r[key] for r in rounds)
           for key in ("draw_p95_ratio_load_to_idle", "training_time_ratio")},
        "rounds": rounds, "machine": machine(), "command": "python benchmarks/load.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    name = "load.json" if args.photos == "same" else "load-distinct-photos.json"
    (REPO / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
