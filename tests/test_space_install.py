"""The app as a Hugging Face Space gets it: the repository's files, a fresh virtual environment with exactly what a
Space installs (``requirements.txt`` and the front matter's ``gradio==sdk_version``), ``python app.py`` with no
dataset at all, and every tab used through gradio_client. Catches a dependency that only the test extras bring, a
file the app needs that is not tracked, and a tab that needs a dataset to open."""

from __future__ import annotations

import json
import re
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import REPO, require_data
from tests.helpers import drawn_one
from tests.test_app import EXAMPLES, SETTINGS, _lfw_people, sketch
from tests.test_browser import local_client, running_app

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def sdk_version() -> str:
    front_matter = REPO.joinpath("README.md").read_text().split("---")[1]
    return re.search(r"^sdk_version:\s*(\S+)", front_matter, re.M).group(1)


def space_checkout(folder: Path) -> Path:
    """The tracked files as they are in the working tree: what a Space clones, nothing built or downloaded."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes((REPO / name).read_bytes())
    return folder


def test_a_fresh_space_install_serves_every_tab_without_data(tmp_path: Path) -> None:
    space = space_checkout(tmp_path / "space")
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # the same files as a Space's install; --no-compile leaves bytecode to the first import (~40 s less here)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
         "-r", "requirements.txt", f"gradio=={sdk_version()}"], cwd=space, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    assert subprocess.run([str(python), "-c", "import pytest"], capture_output=True).returncode != 0  # no test extras

    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {"ARCDEMO_DATA_ROOT": str(empty), "ARCDEMO_CACHE_DIR": str(tmp_path / "cache"),
           "ARCDEMO_OUTPUT_DIR": str(tmp_path / "runs"), "ARCDEMO_REQUIRE_DATA": ""}
    log = tmp_path / "app.log"
    with running_app(env, log, python=str(python), cwd=space) as url:
        client = local_client(url)
        # Explore and Draw: the shipped points and checkpoints, no MNIST anywhere
        summary = client.predict("mnist-arcface-3d", False, api_name="/explore")[1]
        assert "Test accuracy" in summary
        drawing = tmp_path / "one.png"
        Image.fromarray(drawn_one()).save(drawing)
        digit = client.predict(sketch(str(drawing)), "mnist-arcface-3d", api_name="/predict_digit")[0]
        assert digit["label"] == "1", digit
        # Classify: a photo of a ship with a shipped CIFAR-10 model
        ship = client.predict(handle_file(str(EXAMPLES / "ship.webp")), "cifar10-arcface-512d",
                              api_name="/classify_image")[0]
        assert ship["label"] == "ship", ship
        # Faces: two photos of one person and one of another, uploaded as a visitor would
        first, second, other = _lfw_people()
        same = client.predict(handle_file(first), handle_file(second), api_name="/verify_faces")[-1]
        different = client.predict(handle_file(first), handle_file(other), api_name="/verify_faces")[-1]
        scores = [{m["model"]: m for m in result["models"]} for result in (same, different)]
        assert scores[0]["reference"]["same_person"] is True and scores[1]["reference"]["same_person"] is False
        assert scores[0]["arcface"]["similarity"] > scores[1]["arcface"]["similarity"], (same, different)
        # Train: MNIST is not on a fresh Space (a sentence), a zip of your own images is
        with pytest.raises(AppError, match="MNIST"):
            client.predict(**SETTINGS, api_name="/train")
        archive = tmp_path / "people.zip"
        orl = require_data("faces", "orl")
        with zipfile.ZipFile(archive, "w") as bundle:
            for person in ("s1", "s2", "s3"):
                for photo in sorted((orl / person).glob("*.pgm")):
                    bundle.write(photo, f"people/{person}/{photo.name}")
        settings = {**SETTINGS, "dataset": "imagefolder", "margin": 0.2, "scale": 16.0, "epochs": 3,
                    "batch_size": 16, "images_zip": handle_file(str(archive))}
        final = client.predict(**settings, api_name="/train")
        assert "test accuracy" in final[0], final[0]
        card = json.loads(next(Path(p) for p in final[3] if p.endswith(".json")).read_text())
        assert card["model"]["class_names"] == ["s1", "s2", "s3"]
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]
