"""The CLI contract: train → checkpoint → eval agree; bad input is one line on stderr;
torchrun DDP matches 1 process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from arcdemo.checkpoints import CheckpointError, load_checkpoint, read_card, save_checkpoint
from arcdemo.cli import main
from arcdemo.evaluate import equal_error_rate, kfold_accuracy, pair_eer, tar_at_far
from tests.conftest import REPO, require_data

TINY = ["--dataset", "mnist", "--dim", "3", "--epochs", "2", "--train-subset", "2560", "--optimizer", "adam"]


def run_cli(*args: str, env: dict | None = None, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    command = (launcher or [sys.executable, "-m"]) + ["arcdemo", *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    require_data("MNIST", "raw")
    out = tmp_path_factory.mktemp("run") / "tiny"
    result = run_cli("train", *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1, "stdout carries only the final JSON; progress is on stderr"
    assert "epoch 1: test accuracy" in result.stderr
    return out, json.loads(result.stdout)


def test_train_writes_checkpoint_and_eval_reproduces_its_numbers(trained):
    out, metrics = trained
    assert out.with_suffix(".safetensors").exists() and out.with_suffix(".json").exists()
    card = read_card(out)
    for key in ("config", "metrics", "data", "seed", "epochs", "wall_time_s", "hardware", "project_version", "model"):
        assert key in card, key
    assert card["config"]["loss"] == "arcface" and card["model"]["embedding_dim"] == 3
    assert card["data"]["train_images"] == 2560 and card["data"]["test_images"] == 10000
    result = run_cli("eval", "--checkpoint", str(out))
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("dataset", "accuracy", "precision", "recall", "f1", "mean_intra_angle_deg", "min_centre_angle_deg"):
        assert key in evaluated, key
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-9)
    assert evaluated["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-9)
    assert evaluated["accuracy"] > 0.6  # 2 epochs on 2,560 digits, 3-D
    assert 0 < evaluated["mean_intra_angle_deg"] < 90 and 0 < evaluated["min_centre_angle_deg"] < 180


def test_checkpoint_round_trip_and_malformed_files(trained, tmp_path):
    out, _ = trained
    model, card = load_checkpoint(out)
    digits = torch.randint(0, 255, (4, 1, 28, 28), dtype=torch.uint8)
    probabilities, _ = model.predict(digits)
    copy = tmp_path / "copy"
    save_checkpoint(copy, model, {k: v for k, v in card.items() if k != "model"})
    again, _ = load_checkpoint(copy.with_suffix(".safetensors"))
    assert torch.allclose(again.predict(digits)[0], probabilities)

    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.safetensors").write_bytes(out.with_suffix(".safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="not a valid JSON card"):
        load_checkpoint(tmp_path / "bad")
    (tmp_path / "bad.json").write_text(out.with_suffix(".json").read_text())
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "bad")
    mismatched = json.loads(out.with_suffix(".json").read_text())
    mismatched["model"]["embedding_dim"] = 16
    (tmp_path / "bad.json").write_text(json.dumps(mismatched))
    (tmp_path / "bad.safetensors").write_bytes(out.with_suffix(".safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="does not match its card"):
        load_checkpoint(tmp_path / "bad")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["train", "--dataset", "mnist", "--loss", "hinge"], "unknown loss 'hinge'"),
        (["train", "--dataset", "mnist", "--margin", "-0.2"], "allowed [0, 1.5]"),
        (["train", "--dataset", "mnist", "--loss", "cosface", "--margin", "3"], "allowed [0, 1]"),
        (["train", "--dataset", "mnist", "--margin", "nan"], "not a finite number"),
        (["train", "--dataset", "mnist", "--scale", "-5"], "scale -5.0 is out of range"),
        (["train", "--dataset", "mnist", "--dim", "1"], "dim must be ≥ 2"),
        (["train", "--dataset", "mnist", "--out", "/proc/forbidden/x"], "cannot create output folder"),
        (["train"], "required: --dataset"),
        (["train", "--preset", "nope"], "unknown preset"),
        (["train", "--dataset", "mnist", "--init-from", "no-such-model"], "init_from: no checkpoint 'no-such-model'"),
        (["eval", "--checkpoint", "/nonexistent/model"], "not found"),
    ],
)
def test_bad_input_is_one_clear_line(args, needle, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_writing_over_a_shipped_checkpoint_needs_the_flag(capsys):
    from arcdemo.checkpoints import shipped_dir

    shipped = shipped_dir() / "mnist-arcface-3d.safetensors"
    before = shipped.stat().st_mtime_ns
    assert main(["train", "--preset", "mnist-arcface-3d", "--out", str(shipped_dir() / "mnist-arcface-3d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite-shipped" in err  # refused before any training
    assert shipped.stat().st_mtime_ns == before


def test_default_output_of_a_preset_is_runs(tmp_path, monkeypatch):
    from arcdemo import cli

    monkeypatch.chdir(tmp_path)
    recorded = {}
    monkeypatch.setattr(cli, "_writable", lambda stem: recorded.setdefault("stem", stem))
    monkeypatch.setattr("arcdemo.train.train", lambda config, resume_path=None: iter(()))
    assert main(["train", "--preset", "mnist-arcface-3d", "--quiet"]) == 0
    assert recorded["stem"] == Path("runs/mnist-arcface-3d")


def test_an_interrupted_save_leaves_the_old_checkpoint_loadable(trained, tmp_path, monkeypatch):
    import arcdemo.checkpoints as checkpoints

    out, _ = trained
    model, card = load_checkpoint(out)
    target = tmp_path / "kept"
    save_checkpoint(target, model, card)
    good = (target.with_suffix(".safetensors").read_bytes(), target.with_suffix(".json").read_text())

    def dies_half_way(state, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt  # the process killed mid-write

    monkeypatch.setattr(checkpoints, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, model, {**card, "seed": 99})
    assert (target.with_suffix(".safetensors").read_bytes(), target.with_suffix(".json").read_text()) == good
    assert load_checkpoint(target)[1]["seed"] == card["seed"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left behind


def test_debug_shows_the_traceback(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    quiet = run_cli("eval", "--checkpoint", str(broken))
    loud = run_cli("eval", "--checkpoint", str(broken), env={"ARCDEMO_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and quiet.stderr.count("\n") == 1
    assert "Traceback" in loud.stderr and loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


def test_missing_dataset_is_one_line_naming_the_variable(tmp_path):
    result = run_cli("train", *TINY, "--out", str(tmp_path / "x"), env={"ARCDEMO_DATA_ROOT": str(tmp_path / "empty"),
                     "ARCDEMO_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: MNIST not found") and "ARCDEMO_DATA_ROOT" in lines[-1]
    assert "Traceback" not in result.stderr


def test_corrupt_checkpoint_in_a_subprocess(tmp_path):
    (tmp_path / "c.json").write_text("[]")
    (tmp_path / "c.safetensors").write_bytes(b"junk")
    result = run_cli("eval", "--checkpoint", str(tmp_path / "c"))
    assert result.returncode == 2 and "not an arcdemo checkpoint card" in result.stderr
    assert "Traceback" not in result.stderr


def test_torchrun_two_processes_match_one_process(tmp_path):
    """Data-parallel on CPU (gloo): same global batch, same data order → same model up to BN's per-rank statistics.

    16-D rather than TINY's 3-D: a 40-step 3-D run sits on the steep part of its learning curve (~65-70%), where
    BN's per-rank statistics alone moved the accuracy by 5 pp on one CPU and not on another."""
    require_data("MNIST", "raw")
    args = ["train", *TINY, "--dim", "16", "--train-subset", "1280", "--batch-size", "64", "--seed", "5"]
    single = run_cli(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    double = run_cli(*args, "--out", str(tmp_path / "two"), launcher=launcher, env={"OMP_NUM_THREADS": "1"})
    assert double.returncode == 0, double.stderr
    outputs = [line for line in double.stdout.splitlines() if line.startswith("{")]
    assert len(outputs) == 1, "only rank 0 prints the final JSON"
    one, two = json.loads(single.stdout.splitlines()[-1]), json.loads(outputs[0])
    assert abs(one["accuracy"] - two["accuracy"]) < 0.05
    a, _ = load_checkpoint(tmp_path / "one")
    b, _ = load_checkpoint(tmp_path / "two")
    cos = torch.nn.functional.cosine_similarity(a.head.weight, b.head.weight, dim=1)
    assert cos.min() > 0.95, "class centres of the two runs should nearly coincide"


def test_verification_metrics_on_known_scores():
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.0])
    eer, threshold = equal_error_rate(scores, same)
    assert eer == pytest.approx(0.25)
    assert 0.3 <= threshold <= 0.6
    assert tar_at_far(scores, same, 0.0) == pytest.approx(0.75)
    assert tar_at_far(scores, same, 0.25) == pytest.approx(1.0)  # accepting 0.6 (a negative) lets 0.3 in too
    result = kfold_accuracy(np.tile(scores, 5), np.tile(same, 5), np.repeat(np.arange(5), 8))
    assert result["accuracy"] == pytest.approx(7 / 8)  # each fold's threshold comes from the other four
    assert result["fold_accuracies"] == pytest.approx([7 / 8] * 5)
    perfect = kfold_accuracy(np.r_[np.ones(50), np.zeros(50)], np.r_[np.ones(50), np.zeros(50)].astype(bool),
                             np.arange(100) % 10)
    assert perfect["accuracy"] == 1.0 and perfect["accuracy_std"] == 0.0


def test_pair_eer_separates_clustered_embeddings():
    rng = np.random.default_rng(0)
    centres = np.eye(3)
    labels = rng.integers(0, 3, 600)
    tight = centres[labels] + 0.05 * rng.normal(size=(600, 3))
    loose = centres[labels] + 2.0 * rng.normal(size=(600, 3))
    assert pair_eer(tight, labels) < 0.01 < 0.2 < pair_eer(loose, labels)
