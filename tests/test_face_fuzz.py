"""No upload can crash, hang or traceback the face pipeline: tiny, thin, blank, noisy images, in a child process.

dlib's native code trusts its input (its CNN detector aborts the process on an image narrower than its filter
windows), so every case runs where an abort fails the test instead of killing pytest: ``align_face`` in a child
process, the endpoints in a launched ``app.py`` that must still answer afterwards, ``python -m arcdemo verify`` as
a command.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TinyWorld
from tests.test_browser import local_client, running_app

REPO = Path(__file__).resolve().parents[1]
SHORT_SIDES = (1, 2, 3, 5, 8, 12, 19, 20, 21, 32, 48)
ASPECTS = (1, 1.5, 2, 5, 10, 40, 41, 100, 500, 2000)
CONTENTS = ("grey", "noise", "black", "white")


def fuzz_cases() -> list[tuple[int, int, str]]:
    """(height, width, content): every short side × aspect ratio, both orientations; contents take turns."""
    cases = []
    for (short, aspect), tall in itertools.product(itertools.product(SHORT_SIDES, ASPECTS), (False, True)):
        long = max(short, round(short * aspect))
        content = CONTENTS[len(cases) % len(CONTENTS)]
        cases.append((long, short, content) if tall else (short, long, content))
    return cases


def fuzz_image(height: int, width: int, content: str) -> np.ndarray:
    if content == "noise":
        return np.random.default_rng(height * 7919 + width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.full((height, width, 3), {"grey": 128, "black": 0, "white": 255}[content], np.uint8)


_CHILD = """
import json, sys
import numpy as np
from arcdemo.faces import align
from tests.test_face_fuzz import fuzz_cases, fuzz_image

for height, width, content in fuzz_cases():
    print(json.dumps([height, width, content]), flush=True)  # the last case printed is the one that aborted
    try:
        align.align_face(fuzz_image(height, width, content))
        outcome = "face"
    except align.NoFaceError as error:
        outcome = str(error)
    print(json.dumps({"case": [height, width, content], "outcome": outcome}), flush=True)
# the CNN detector on its own, below and at its bound: tiny inputs return no face instead of aborting later
for height, width in [(1, 1), (3, 2), (2, 640), (640, 3), (9, 200), (200, 6), (19, 640), (20, 20), (640, 20)]:
    print(json.dumps({"cnn": [height, width], "boxes": len(align._detect_cnn(np.zeros((height, width, 3), np.uint8)))}))
print("survived")
"""


@pytest.mark.slow
def test_align_face_survives_every_size_aspect_and_content() -> None:
    run = subprocess.run([sys.executable, "-c", _CHILD], cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and lines and lines[-1] == "survived", (
        f"the child process ended with {run.returncode} after {lines[-1:] or 'nothing'}:\n{run.stderr[-2000:]}"
    )
    outcomes = [json.loads(line) for line in lines if line.startswith('{"case"')]
    assert len(outcomes) == len(fuzz_cases()) == 2 * len(SHORT_SIDES) * len(ASPECTS)
    for result in outcomes:
        (height, width, _), outcome = result["case"], result["outcome"]
        assert outcome != "face", result  # nothing here holds a face
        if min(height, width) < 20:
            assert f"the image is {width}×{height} px; a face needs at least 20 px on each side" == outcome
        elif max(height, width) / min(height, width) > 40:
            assert outcome.startswith(f"the image is {width}×{height} px, its long side") and "40:1" in outcome
        else:
            assert outcome.startswith(f"no face found in the {width}x{height} image"), result
    cnn = [json.loads(line) for line in lines if line.startswith('{"cnn"')]
    assert cnn and all(result["boxes"] == 0 for result in cnn), cnn
    assert "Traceback" not in run.stderr


def test_size_check_names_the_size_and_the_bound() -> None:
    from arcdemo.faces.align import MIN_FACE_SIDE, NoFaceError, check_face_size

    with pytest.raises(NoFaceError, match="the image is 3×2 px; a face needs at least 20 px on each side"):
        check_face_size(2, 3)
    with pytest.raises(NoFaceError, match="10000×20 px, its long side 500 times its short side"):
        check_face_size(20, 10000)
    check_face_size(MIN_FACE_SIDE, 40 * MIN_FACE_SIDE)  # 20×800: the detector's copy is 20 px across
    with pytest.raises(NoFaceError, match="at most 40:1"):
        check_face_size(MIN_FACE_SIDE, 40 * MIN_FACE_SIDE + 1)


BAD_UPLOADS = {"3x2.png": (2, 3), "1x1.png": (1, 1), "10000x20.png": (20, 10000), "20x10000.png": (10000, 20),
               "19x19.png": (19, 19), "2000x1.png": (1, 2000), "1001x25.png": (25, 1001)}


@pytest.mark.slow
def test_the_app_answers_every_bad_upload_with_a_sentence_and_stays_up(
    tiny_world: TinyWorld, tmp_path: Path
) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from tests.test_app import _lfw_people

    first, second, _ = _lfw_people()
    paths = {}
    for name, (height, width) in BAD_UPLOADS.items():
        paths[name] = str(tmp_path / name)
        Image.fromarray(fuzz_image(height, width, "noise")).save(paths[name])
    log = tmp_path / "app.log"
    with running_app(tiny_world.env(), log) as url:
        client = local_client(url)
        client.predict("Ben", handle_file(second), api_name="/enrol_face")  # so that identify looks at the photo
        for name, path in paths.items():
            height, width = BAD_UPLOADS[name]
            calls = [((handle_file(path), handle_file(first)), "/verify_faces"),
                     (("Ann", handle_file(path)), "/enrol_face"), ((handle_file(path),), "/identify_face")]
            for arguments, endpoint in calls:
                with pytest.raises(AppError, match=f"the image is {width}×{height} px"):
                    client.predict(*arguments, api_name=endpoint)
        *_, result = client.predict(handle_file(first), handle_file(second), api_name="/verify_faces")
        assert result["same_person"] is True  # still up, and still right
        gallery, _ = client.predict("Ann", handle_file(first), api_name="/enrol_face")
        assert len(gallery) == 2  # Ben, enrolled before the bad uploads, is still there
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.mark.slow
def test_verify_command_refuses_tiny_images_with_a_sentence(tmp_path: Path) -> None:
    from tests.test_app import _lfw_people

    first, _, _ = _lfw_people()
    tiny = tmp_path / "tiny.png"
    Image.fromarray(fuzz_image(2, 3, "white")).save(tiny)
    run = subprocess.run([sys.executable, "-m", "arcdemo", "verify", str(tiny), first, "--model", "reference"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run
    assert f"{tiny}: the image is 3×2 px; a face needs at least 20 px on each side" in run.stderr
    assert "Traceback" not in run.stderr
