"""App latency: Draw → prediction + figure (server side), ``python app.py`` → first page and, in chromium with an
empty data root, → first Explore figure; figure JSON sizes.

    .venv/bin/python benchmarks/app_latency.py [--checkpoint NAME] [--draws 50] [--starts 3] [--train]

Targets: a drawing's prediction with its updated sphere ≤ 50 ms server-side on a 2-core CPU (the sphere and test
points are cached per model); first page ≤ 5 s after ``python app.py`` and, with no dataset on the machine, the
first Explore figure ≤ 3 s after the page loads; every figure ≤ 2 MB of JSON; with ``--train``, a live training
with the Train tab's defaults should reach ≥ 99% test accuracy within 60 s of pressing Train.
The machine's load average is printed with the numbers: on a CPU shared with other jobs they move a lot.
Writes benchmarks/results/app_latency.json. Uses the checkpoints in ``$ARCDEMO_CHECKPOINTS`` (default ``checkpoints/``)
and the data in ``$ARCDEMO_DATA_ROOT``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (1/5/15 min)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_first_page() -> float:
    """Seconds from starting ``python app.py`` to the first successful GET of its page."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, **quiet)
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("app.py did not serve its page") from None
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait()


def cold_start_in_browser() -> dict:
    """``python app.py`` with an empty data root and cache, opened in headless chromium: seconds to the first page
    served, and from the page's load event to the first Explore sphere on screen (the still picture drawn by the
    server) and to the interactive WebGL sphere replacing it, with its decision boundaries (both from the
    checkpoint's shipped test points: no dataset, no evaluation)."""
    import tempfile

    from playwright.sync_api import expect

    from tests.test_browser import browser_page, running_app

    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "data"
        empty.mkdir()
        env = {"ARCDEMO_DATA_ROOT": str(empty), "ARCDEMO_CACHE_DIR": str(Path(scratch) / "cache")}
        started = time.perf_counter()
        with running_app(env, Path(scratch) / "app.log") as url:
            first_page = time.perf_counter() - started
            with browser_page({"width": 1400, "height": 1000}) as (page, errors, _):
                page.goto(url, wait_until="load")
                sphere = page.locator("#explore-sphere")
                expect(sphere).to_contain_text("decision boundary", timeout=60_000)
                expect(page.locator("#explore-sphere .gl-container canvas").first).to_be_visible(timeout=60_000)
                expect(sphere).to_have_css("background-image", "none", timeout=30_000)
                # the page notes on its own clock (ms) when the picture was painted and when the sphere replaced it
                load, picture, interactive = page.evaluate(
                    "[performance.getEntriesByType('navigation')[0].loadEventEnd, window.arcPosterShown,"
                    " window.arcSphereDrawn]")
                picture, interactive = (picture - load) / 1000, (interactive - load) / 1000
                if errors:
                    raise RuntimeError(f"console errors: {errors}")
    return {"first_page_s": round(first_page, 2), "first_explore_picture_after_load_s": round(picture, 2),
            "interactive_explore_sphere_after_load_s": round(interactive, 2)}


def drawing(rng: np.random.Generator) -> dict:
    """A Sketchpad value: a random thick stroke path on a white 336×336 RGBA canvas."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (336, 336), "white")
    points = [tuple(int(v) for v in rng.integers(60, 276, 2)) for _ in range(4)]
    ImageDraw.Draw(canvas).line(points, fill="black", width=28, joint="curve")
    return {"background": None, "layers": [], "composite": np.asarray(canvas)}


def draw_latency(key: str, count: int) -> dict:
    """Server-side time of the Draw callback (preprocessing, model, angles, figure with the new point)."""
    from arcdemo.ui.tabs.draw import predict_digit

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    predict_digit(drawing(rng), key, {})  # loads the model and builds the cached base figure
    first = time.perf_counter() - started
    times = []
    for _ in range(count):
        value = drawing(rng)
        started = time.perf_counter()
        outputs = predict_digit(value, key, {})
        times.append(time.perf_counter() - started)
    figure_bytes = len(outputs[1].plot)
    return {
        "checkpoint": key, "first_call_s": round(first, 2), "calls": count,
        "median_ms": round(1000 * statistics.median(times), 1),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 1), "max_ms": round(1000 * max(times), 1),
        "figure_json_bytes": figure_bytes,
    }


def figure_sizes(keys: list[str]) -> dict:
    """JSON size of every figure the app sends, per checkpoint (bytes)."""
    from arcdemo import viz
    from arcdemo.ui.store import load_model
    from arcdemo.ui.tabs.explore import explore

    sizes: dict[str, int] = {}
    for key in keys:
        view = explore(key, False)
        sizes[f"{key}: explore sphere"] = len(view.sphere.to_json())
        sizes[f"{key}: explore sphere, painted"] = len(explore(key, True).sphere.to_json())
        sizes[f"{key}: confusion"] = len(view.confusion.to_json())
        sizes[f"{key}: angle histogram"] = len(view.angles.to_json())
        model = load_model(key)
        points = model.drawn_points()
        live = viz.sphere_figure(
            points.embeddings[:1000], points.labels[:1000], model.decision_rule(), model.class_names,
        )
        sizes[f"{key}: live training sphere (1,000 points)"] = len(live.to_json())
        sizes[f"{key}: side by side"] = len(viz.comparison_figure(live, view.sphere, "a", "b").to_json())
    history = {"step": list(range(1, 2341)), "loss": list(np.linspace(20, 1, 2340)), "train_accuracy": [0.9] * 2340}
    sizes["training curves (2,340 steps)"] = len(viz.curves_figure(history).to_json())
    return sizes


def live_training(seed: int) -> dict:
    """The Train tab's defaults (``TrainSettings()`` with ``seed``) through the callback of its button."""
    import dataclasses

    from arcdemo.ui.desk import TrainingDesk
    from arcdemo.ui.tabs.train import DEFAULTS, Runs, page_values

    runs = Runs(TrainingDesk())

    started = time.perf_counter()
    first_sphere = None
    final = None
    for outputs in runs.train(**page_values(dataclasses.replace(DEFAULTS, seed=seed)), session={}, request=None):
        if first_sphere is None and not isinstance(outputs[1], dict):
            first_sphere = time.perf_counter() - started
        final = outputs
    wall = time.perf_counter() - started
    accuracy = float(re.search(r"test accuracy <b>([\d.]+)%", final[0]).group(1))
    return {"press_to_done_s": round(wall, 1), "first_live_sphere_s": round(first_sphere or float("nan"), 1),
            "test_accuracy_percent": accuracy}


def main() -> None:
    from arcdemo.ui.store import list_checkpoints

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="MNIST checkpoint for the Draw timing (default: the first 3-D one)")
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time a live training with the Train tab defaults")
    parser.add_argument("--train-runs", type=int, default=3, help="live trainings, seeds 0, 1, …; medians reported")
    args = parser.parse_args()
    entries = list_checkpoints()
    mnist = [e.key for e in entries if e.dataset == "mnist"]
    if not mnist:
        sys.exit("no MNIST checkpoint found: set ARCDEMO_CHECKPOINTS")
    key = args.checkpoint or mnist[0]

    print(f"machine: {machine()}")
    starts = [time_to_first_page() for _ in range(args.starts)]
    listed = ", ".join(f"{s:.2f}" for s in starts)
    print(f"python app.py → first page: {listed} s (median {statistics.median(starts):.2f} s; target ≤ 5 s)")
    print(f"machine: {machine()}")
    results = {"first_page_s": [round(s, 2) for s in starts]}
    cold = [cold_start_in_browser() for _ in range(args.starts)]
    for field, what, target in (
        ("first_explore_picture_after_load_s", "first Explore sphere (the still picture)", "; target ≤ 3 s"),
        ("interactive_explore_sphere_after_load_s", "interactive 3-D sphere in its place", ""),
    ):
        times = [run[field] for run in cold]
        print(f"empty data root, chromium: page load → {what} {', '.join(f'{s:.2f}' for s in times)} s "
              f"(median {statistics.median(times):.2f} s{target})")
    print(f"first page served {statistics.median(run['first_page_s'] for run in cold):.2f} s (median)")
    print(f"machine: {machine()}")
    results["cold_start_empty_data_root"] = cold
    for name in dict.fromkeys([key, *mnist]):
        draw = draw_latency(name, args.draws)
        print(
            f"Draw → prediction + figure, {name}: median {draw['median_ms']} ms, p90 {draw['p90_ms']} ms, max "
            f"{draw['max_ms']} ms over {draw['calls']} drawings (first call {draw['first_call_s']} s, cold caches); "
            f"figure {draw['figure_json_bytes'] / 1000:.0f} kB; target ≤ 50 ms"
        )
        results.setdefault("draw", []).append(draw)
    sizes = figure_sizes([e.key for e in entries])
    for name, size in sizes.items():
        print(f"figure JSON {name}: {size / 1000:.0f} kB")
    print(f"largest figure: {max(sizes.values()) / 1e6:.2f} MB (limit 2 MB)")
    results["figure_json_bytes"] = sizes
    if args.train:
        from arcdemo.ui.tabs.train import DEFAULTS, page_values

        print(f"machine: {machine()}")
        runs = []
        for seed in range(args.train_runs):
            runs.append({"seed": seed, **live_training(seed)})
            run = runs[-1]
            print(
                f"Train (defaults: MNIST, ArcFace, 3-D, {DEFAULTS.epochs} epoch(s)): "
                f"{run['test_accuracy_percent']}% test accuracy, {run['press_to_done_s']} s from pressing Train to "
                f"the final result (first live sphere after {run['first_live_sphere_s']} s)"
            )
        walls = [run["press_to_done_s"] for run in runs]
        accuracies = [run["test_accuracy_percent"] for run in runs]
        print(f"Train defaults, {len(runs)} runs: median {statistics.median(accuracies)}% in "
              f"{statistics.median(walls)} s; target ≥ 99% within 60 s")
        print(f"machine: {machine()}")
        results["train"] = {"runs": runs, "median_accuracy_percent": statistics.median(accuracies),
                            "median_press_to_done_s": statistics.median(walls), "defaults": page_values()}
    results["machine"] = machine()
    results["command"] = "python benchmarks/app_latency.py " + " ".join(sys.argv[1:])
    out = REPO / "benchmarks" / "results" / "app_latency.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
