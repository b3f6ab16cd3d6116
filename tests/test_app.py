"""Every API endpoint through gradio_client against a launched app (127.0.0.1, a free port).

Uses the tiny world of ``tests/test_ui.py`` (a small data root and checkpoints folder built once per session).
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TinyWorld, drawn_one, sketch_value
from tests.test_browser import app_cpu_s, local_client, running_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
SETTINGS = dict(
    dataset="mnist", loss="arcface", margin=0.5, scale=30.0, dim=3, epochs=1, lr=0, warmup_steps=-1, optimizer="sgd",
    batch_size=128, seed=0, train_subset=0,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_world: TinyWorld) -> Iterator[str]:
    from arcdemo.ui import build_demo, launch_options

    demo = build_demo()
    port = free_port()
    demo.launch(**launch_options(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def client(app_url: str) -> Client:
    return local_client(app_url)


def save(tmp_path: Path, name: str, image: Image.Image, **options: object) -> str:
    path = tmp_path / name
    image.save(path, **options)
    return str(path)


def sketch(path: str | None) -> dict:
    return {"background": None, "layers": [], "composite": handle_file(path) if path else None}


def plot_json(value: dict) -> dict:
    assert value["type"] == "plotly"
    assert len(value["plot"]) < 2_000_000
    return json.loads(value["plot"])


# ----------------------------------------------------------------------------------------------- explore


def test_explore(client: Client) -> None:
    sphere, summary, confusion, angles, card = client.predict("mnist-tiny-3d", False, api_name="/explore")
    assert "Test accuracy" in summary
    figure = plot_json(sphere)
    assert any(trace.get("name") == "decision boundary" for trace in figure["data"])
    assert plot_json(confusion)["data"][0]["type"] == "heatmap" and plot_json(angles)["data"]
    assert card["model"]["dataset"] == "mnist"


def test_explore_unknown_model_is_a_sentence(client: Client) -> None:
    with pytest.raises(AppError, match="No checkpoint named 'nope'"):
        client.predict("nope", False, api_name="/explore")


# ------------------------------------------------------------------------------------------------- draw


def test_predict_digit(client: Client, tiny_world: TinyWorld, tmp_path: Path, monkeypatch) -> None:
    from arcdemo.ui.predict import predict

    path = save(tmp_path, "one.png", Image.fromarray(drawn_one()))
    probabilities, sphere, angles, preview, summary = client.predict(
        sketch(path), "mnist-tiny-3d", api_name="/predict_digit"
    )
    for key, value in tiny_world.env().items():
        monkeypatch.setenv(key, value)
    direct = predict(sketch_value(drawn_one()), "mnist-tiny-3d")  # the same drawing, no server in between
    assert probabilities["label"] == direct.label
    top = probabilities["confidences"][0]
    assert top["label"] == direct.label and top["confidence"] == pytest.approx(direct.probabilities[direct.label])
    assert len(probabilities["confidences"]) == 3  # top 3
    assert plot_json(sphere)["data"][-1]["marker"]["color"] == "gold"
    assert len(angles["data"]) == 10 and angles["headers"][1].startswith("angle")
    assert Image.open(preview).size == (140, 140) and probabilities["label"] in summary


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: None, "empty"),
        (lambda tmp: save(tmp, "white.png", Image.new("RGBA", (336, 336), "white")), "empty"),
        (lambda tmp: save(tmp, "clear.png", Image.new("RGBA", (336, 336), (0, 0, 0, 0))), "empty"),
        (lambda tmp: (tmp / "notes.png").write_text("hello") and str(tmp / "notes.png"), "not an image"),
    ],
    ids=["no-composite", "white", "transparent", "not-an-image"],
)
def test_predict_digit_bad_input(client: Client, tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(AppError, match=message):
        client.predict(sketch(make(tmp_path)), "mnist-tiny-3d", api_name="/predict_digit")


# --------------------------------------------------------------------------------------------- classify


def _images(tmp: Path) -> dict[str, str]:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 420, 3), dtype=np.uint8))
    deep = (np.arange(126_000) * 7 % 65536).astype(np.uint16).reshape(300, 420)
    images = {
        "grey": save(tmp, "grey.png", rgb.convert("L")),
        "rgba": save(tmp, "rgba.png", rgb.convert("RGBA")),
        "cmyk": save(tmp, "cmyk.jpg", rgb.convert("CMYK"), quality=90),
        "16-bit": save(tmp, "deep.png", Image.fromarray(deep)),
        "palette": save(tmp, "palette.gif", rgb.convert("P")),
        "tiny": save(tmp, "tiny.png", rgb.resize((3, 2))),
    }
    for example in sorted(EXAMPLES.glob("*.webp"))[:1]:
        images["example"] = str(example)
    return images


def test_classify_any_image(client: Client, tmp_path: Path) -> None:
    for name, path in _images(tmp_path).items():
        probabilities, sphere, angles, preview, summary = client.predict(
            handle_file(path), "cifar10-tiny-3d", api_name="/classify_image"
        )
        assert probabilities["label"] in {row[0] for row in angles["data"]}, name
        assert Image.open(preview).size == (160, 160), name
        assert plot_json(sphere)["data"][-1]["type"] == "scatter3d", name


def test_classify_bad_files(client: Client, tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 not really")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 MP, a few hundred kB on disk
    for path, message in ((tmp_path / "report.pdf", "not an image"), (bomb, "limit")):
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(path)), "cifar10-tiny-3d", api_name="/classify_image")


# ------------------------------------------------------------------------------------------------ train


def test_train_streams_and_the_model_joins_the_session(client: Client) -> None:
    job = client.submit(**SETTINGS, api_name="/train")
    statuses, spheres = [], 0
    for status, sphere, _curves, _files in job:
        statuses.append(status)
        spheres += isinstance(sphere, dict) and sphere.get("type") == "plotly"
    final = job.outputs()[-1]
    assert "loading" in statuses[0] and "test accuracy" in final[0], final[0]
    assert spheres >= 1
    paths = [Path(p) for p in final[3]]
    assert sorted(p.suffix for p in paths) == [".json", ".safetensors"]
    card = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert card["format"] == "arcdemo-checkpoint" and card["config"]["loss"] == "arcface"
    # the trained model is usable by this client's session (only), under the key the status names
    key = re.search(r"<code>(session:\d+)</code>", final[0]).group(1)
    assert "Test accuracy" in client.predict(key, False, api_name="/explore")[1]
    probabilities = client.predict(sketch(_one_png()), key, api_name="/predict_digit")[0]
    assert probabilities["label"] in [str(i) for i in range(10)]
    other = local_client(client.src)
    with pytest.raises(AppError, match="another browser session"):
        other.predict(key, False, api_name="/explore")


def test_train_on_your_images_from_a_zip(client: Client, tmp_path: Path) -> None:
    """A zip of six ORL people (grey PGM, 92×112), trained live like MNIST; the model then classifies a photo."""
    from tests.conftest import require_data

    orl = require_data("faces", "orl")
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for person in ("s1", "s2", "s3", "s4", "s5", "s6"):
            for photo in sorted((orl / person).glob("*.pgm")):
                bundle.write(photo, f"people/{person}/{photo.name}")
    settings = {**SETTINGS, "dataset": "imagefolder", "margin": 0.2, "scale": 16.0, "epochs": 8, "batch_size": 16,
                "images_zip": handle_file(str(archive))}
    job = client.submit(**settings, api_name="/train")
    spheres = sum(isinstance(out[1], dict) and out[1].get("type") == "plotly" for out in job)
    final = job.outputs()[-1]
    assert "test accuracy" in final[0] and spheres >= 1, final[0]
    card = json.loads(next(Path(p) for p in final[3] if p.endswith(".json")).read_text())
    assert card["config"]["dataset"] == "imagefolder" and card["model"]["class_names"] == [f"s{i}" for i in range(1, 7)]
    assert card["metrics"]["samples"] == 12  # 2 of each person's 10 held out
    key = re.search(r"<code>(session:\d+)</code>", final[0]).group(1)
    assert "Test accuracy" in client.predict(key, False, api_name="/explore")[1]
    probabilities = client.predict(handle_file(str(orl / "s3" / "1.pgm")), key, api_name="/classify_image")[0]
    assert probabilities["label"] in card["model"]["class_names"]


@pytest.mark.parametrize("content, message", [(None, "Upload a .zip"), (b"not a zip", "is not a zip archive")])
def test_a_bad_zip_is_a_sentence(client: Client, tmp_path: Path, content: bytes | None, message: str) -> None:
    upload = None
    if content is not None:
        (tmp_path / "photos.zip").write_bytes(content)
        upload = handle_file(str(tmp_path / "photos.zip"))
    with pytest.raises(AppError, match=message):
        client.predict(**{**SETTINGS, "dataset": "imagefolder", "images_zip": upload}, api_name="/train")


def _one_png() -> str:
    path = Path(tempfile.mkdtemp()) / "one.png"
    Image.fromarray(drawn_one()).save(path)
    return str(path)


def stop_mid_run(client: Client, start_within_s: float, stop_within_s: float) -> list:
    """Start a 5-epoch training, press Stop once it streams steps; the last outputs once it has ended."""
    job = client.submit(**{**SETTINGS, "epochs": 5}, api_name="/train")
    started = time.perf_counter()
    while not any("step" in (out[0] or "") for out in job.outputs()):
        assert time.perf_counter() - started < start_within_s, "training never started"
        time.sleep(0.2)
    assert client.predict(api_name="/stop_training").startswith("Stopping")
    while not job.done():
        assert time.perf_counter() - started < stop_within_s, "Stop did not stop the training"
        time.sleep(0.2)
    return job.outputs()[-1]


def test_stop_training(client: Client) -> None:
    assert client.predict(api_name="/stop_training").startswith("No training")
    final = stop_mid_run(client, 90, 120)
    assert "stopped early" in final[0] and len(final[3]) == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"margin": 5.0}, "(?i)margin"),
        ({"epochs": 501}, "between 1 and 500"),
        ({"dim": 1}, "between 2 and 512"),
        ({"batch_size": 10**9}, "between 16 and 1024"),
        ({"lr": -3}, "above 0"),
        ({"loss": "magic"}, "magic"),
    ],
)
def test_absurd_settings_via_the_api(client: Client, overrides: dict, message: str) -> None:
    with pytest.raises(AppError, match=message):
        client.predict(**{**SETTINGS, **overrides}, api_name="/train")


def test_compare_two_losses(client: Client) -> None:
    job = client.submit(**{**SETTINGS, "train_subset": 640}, loss_b="softmax", margin_b=0.0, scale_b=1.0,
                        api_name="/compare_losses")
    spheres = [plot_json(out[1]) for out in job if isinstance(out[1], dict) and out[1].get("type") == "plotly"]
    final = job.outputs()[-1]
    assert "ArcFace" in final[0] and "Softmax" in final[0] and "same data and seed" in final[0]
    assert len(final[3]) == 4  # both checkpoints
    assert any("scene2" in figure["layout"] for figure in spheres), "no side-by-side figure was streamed"


# ------------------------------------------------------------------------------------------------ faces


def _lfw_people() -> tuple[str, str, str]:
    """Two photos of one person and one of another, from LFW's same-person pairs."""
    from arcdemo.faces.evaluate import lfw_pairs
    from tests.conftest import DATA_ROOT, require_data

    require_data("faces", "lfw", "pairs.txt")
    same = [(a, b) for a, b, is_same, _ in lfw_pairs(DATA_ROOT / "faces") if is_same]
    return str(same[0][0]), str(same[0][1]), str(same[60][0])


def test_verify_faces(client: Client, tmp_path: Path) -> None:
    first, second, other = _lfw_people()
    boxed_a, boxed_b, crop_a, crop_b, summary, result = client.predict(
        handle_file(first), handle_file(second), api_name="/verify_faces"
    )
    assert result["same_person"] is True and result["faces_found"] == [1, 1]
    assert result["similarity"] > result["threshold"] and "Same person" in summary
    assert Image.open(crop_a).size == (112, 112) and Image.open(boxed_b).size[0] > 0
    *_, result = client.predict(handle_file(first), handle_file(other), api_name="/verify_faces")
    verdicts = {m["model"]: m for m in result["models"]}
    assert verdicts["reference"]["same_person"] is False  # dlib is right; ours, if loaded, errs on it
    blank = save(tmp_path, "wall.png", Image.new("RGB", (400, 300), (200, 190, 180)))
    with pytest.raises(AppError, match="no face found"):
        client.predict(handle_file(first), handle_file(blank), api_name="/verify_faces")
    (tmp_path / "cv.pdf").write_bytes(b"%PDF-1.4 not a photo")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(tmp_path / "cv.pdf")), handle_file(first), api_name="/verify_faces")


def test_enrol_and_identify_in_one_session(client: Client) -> None:
    first, second, other = _lfw_people()
    gallery, note = client.predict("Ann", handle_file(first), api_name="/enrol_face")
    assert "Enrolled **Ann**" in note and len(gallery) == 1
    client.predict("Ben", handle_file(other), api_name="/enrol_face")
    _, summary, table, name = client.predict(handle_file(second), api_name="/identify_face")
    assert name in ("Ann", "Ben", "unknown") and name in summary
    reference = table["headers"].index("similarity (reference)")
    similarity = {row[0]: row[reference] for row in table["data"]}
    assert similarity["Ann"] > similarity["Ben"], table  # the reference (LFW 99%) knows Ann's second photo
    with pytest.raises(AppError, match="name"):
        client.predict("", handle_file(first), api_name="/enrol_face")


# ------------------------------------------------------------------------------------------------ concurrency


def test_concurrent_visitors_with_identical_outputs_all_get_their_files(app_url: str, tmp_path: Path) -> None:
    """8 sessions at once, each asking for the same pictures: every output file arrives whole.

    Gradio rewrites an array output's cache file in place for every call that produces it, so identical outputs
    raced (a download cut short: "peer closed connection without sending complete message body"); the app hands
    Gradio files instead (arcdemo.ui.outputs), which its cache copies once, atomically.
    """
    from concurrent.futures import ThreadPoolExecutor

    first, second, _ = _lfw_people()
    digit = save(tmp_path, "one.png", Image.fromarray(drawn_one()))

    def visitor(number: int) -> list[str]:
        client = local_client(app_url, download_files=str(tmp_path / f"visitor{number}"))
        errors = []
        for call in range(12):
            try:
                if call % 3 == 2:
                    outputs = client.predict(handle_file(first), handle_file(second), api_name="/verify_faces")
                    pictures = outputs[:4]
                else:
                    outputs = client.predict(sketch(digit), "mnist-tiny-3d", api_name="/predict_digit")
                    pictures = [outputs[3]]
                for picture in pictures:
                    Image.open(picture).load()  # the whole file arrived and decodes
            except Exception as error:  # noqa: BLE001 - every failure is counted, whatever it is
                errors.append(f"visitor {number}, call {call}: {type(error).__name__}: {error}")
        return errors

    with ThreadPoolExecutor(8) as pool:
        failures = [e for errors in pool.map(visitor, range(8)) for e in errors]
    assert failures == [], failures


def test_an_idle_app_leaves_the_cpu_to_others(tiny_world: TinyWorld, tmp_path: Path) -> None:
    """A Space sits idle most of the time, and a training shares its CPU: with Gradio's queue polling every 1 ms,
    an idle app.py used 0.11 CPU-s a second here; polling every 10 ms, ~0.03."""
    with running_app(tiny_world.env(), tmp_path / "app.log"):
        time.sleep(2)  # past start-up
        before = app_cpu_s()
        if before is None:
            pytest.skip("needs Linux's /proc")
        time.sleep(5)
        used_per_s = (app_cpu_s() - before) / 5
    assert used_per_s < 0.06, f"an idle app.py used {used_per_s:.3f} CPU-s a second"
