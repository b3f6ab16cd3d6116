"""README's table of shipped checkpoints, printed from their cards (so every number there traces to a card).

    python benchmarks/checkpoint_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def row(card: dict, name: str, size: int) -> str:
    metrics, config = card["metrics"], card["config"]
    if card["model"]["dataset"] == "faces":
        result = (f"LFW {100 * metrics['lfw_accuracy']:.2f} ± {100 * metrics['lfw_accuracy_std']:.2f}%, "
                  f"EER {100 * metrics['lfw_eer']:.2f}%; ORL EER {100 * metrics['orl_eer']:.1f}%")
    else:
        result = (f"{100 * metrics['accuracy']:.2f}% test accuracy, macro F1 {100 * metrics['f1']:.2f}%, "
                  f"min centre angle {metrics['min_centre_angle_deg']:.0f}°")
    hardware = card.get("hardware", {})
    start = Path(config.get("init_from") or "").name  # the run it continued, by name (its path then may be gone)
    epochs = f"{config['epochs']} from `{start}`" if start else config["epochs"]
    return (f"| `{name}` | {config['dataset']} | {config['loss']} | {config['dim']} | {epochs} | {result} | "
            f"{test_views(config)} | "
            f"{card['wall_time_s'] / 60:.1f} min ({hardware.get('cpu_count')}× {hardware.get('cpu')}) | "
            f"{size / 1e6:.1f} MB |")


def test_views(config: dict) -> str:
    """The test-time augmentation behind the result (model.tta_views; face evaluation always adds the mirror)."""
    views = [name for name, on in (("flip", config.get("flip_tta")), ("shift", config.get("shift_tta"))) if on]
    return " + ".join(views) or "none"


def main() -> None:
    print("| checkpoint | data | loss | dim | epochs | result | test-time views | training time | size |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(CHECKPOINTS.glob("*.json")):
        print(row(json.loads(path.read_text()), path.stem, path.with_suffix(".safetensors").stat().st_size))


if __name__ == "__main__":
    main()
