"""Defaults that follow the size of the user's own image folder; explicit options and presets are untouched."""

from pathlib import Path

from arcdemo.cli import _config_from, build_parser
from arcdemo.small_data import folder_defaults


def _folder(root: Path, classes: int, per_class: int) -> Path:
    for c in range(classes):
        (root / f"s{c}").mkdir(parents=True)
        for i in range(per_class):
            (root / f"s{c}" / f"{i}.pgm").write_bytes(b"P5\n1 1\n255\n\x00")
    return root


def test_small_folder_gets_small_batch_many_epochs_warmup_and_class_scale(tmp_path):
    chosen = folder_defaults(str(_folder(tmp_path / "orl", 40, 10)), "arcface")
    assert chosen["batch_size"] == 32 and chosen["batch_size"] <= 320 // 8
    assert chosen["epochs"] * (320 // chosen["batch_size"]) >= 400
    assert chosen["margin_warmup_steps"] > 0
    assert chosen["scale"] == 8.0 and chosen["dim"] == 64


def test_explicit_options_win_and_presets_are_unchanged(tmp_path):
    folder = _folder(tmp_path / "orl", 40, 10)
    args = build_parser().parse_args(
        ["train", "--dataset", "imagefolder", "--data-dir", str(folder), "--epochs", "2", "--scale", "30"])
    config = _config_from(args)
    assert (config.epochs, config.scale, config.batch_size) == (2, 30.0, 32)
    default = _config_from(build_parser().parse_args(["train", "--dataset", "mnist"]))
    assert (default.epochs, default.batch_size, default.margin_warmup_steps) == (3, 128, -1)
