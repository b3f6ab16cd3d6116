"""ZeroGPU as a Space runs it, with a stand-in ``spaces`` package (tests/spaces_stand_in) that runs the decorated
compute in another process: the training runs there, Stop reaches it from the app's process, the model comes back
into the session, and the GPU lease follows the server's training limit."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.conftest import REPO, require_data
from tests.test_app import SETTINGS, stop_mid_run
from tests.test_browser import local_client, running_app

STAND_IN = REPO / "tests" / "spaces_stand_in"


def test_training_runs_in_the_gpu_process_and_stop_reaches_it(tmp_path: Path) -> None:
    require_data("MNIST", "raw")
    log = tmp_path / "gpu-calls.log"
    env = {"PYTHONPATH": os.pathsep.join([str(STAND_IN), os.environ.get("PYTHONPATH", "")]),
           "SPACES_STAND_IN_LOG": str(log), "ARCDEMO_MAX_TRAIN_S": "300", "ARCDEMO_OUTPUT_DIR": str(tmp_path)}
    with running_app(env, tmp_path / "app.log") as url:
        client = local_client(url)
        final = client.predict(**{**SETTINGS, "train_subset": 2560}, api_name="/train")
        assert "test accuracy" in final[0], final[0]
        key = re.search(r"<code>(session:\d+)</code>", final[0]).group(1)
        assert "Test accuracy" in client.predict(key, False, api_name="/explore")[1]  # the model came back

        assert "stopped early" in stop_mid_run(client, 120, 180)[0]  # Stop reached the GPU process
        server_log = (tmp_path / "app.log").read_text()
    calls = [line.split() for line in log.read_text().splitlines()]
    assert len(calls) == 2, calls  # the two trainings, nothing else: predictions stay on the CPU
    assert all(int(pid) != os.getpid() for pid, _ in calls) and len({pid for pid, _ in calls}) == 2
    assert all(int(duration) == 300 + 120 for _, duration in calls)  # the limit, plus the final evaluation
    assert "Traceback" not in server_log
