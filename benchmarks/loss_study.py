"""The loss study: every margin loss on the same backbone, data, epochs and schedule, over several seeds.

    python benchmarks/loss_study.py table --dims 3 128 --seeds 0 1 2 --epochs 2     # MNIST loss table
    python benchmarks/loss_study.py table --dataset cifar10 --losses softmax arcface --dims 3 --epochs 4
    python benchmarks/loss_study.py sweep --epochs 1                                 # ArcFace m × s, 3-D, ± warm-up
    python benchmarks/loss_study.py report                                           # tables + figures from results

Each finished run is appended to benchmarks/results/loss_study.json at once (keyed by its settings), so a killed
study resumes where it stopped and ``report`` can be rerun at any time. Per run: test accuracy, macro F1, mean
intra-class angle, minimum centre-to-centre angle, and the EER of 6,000 random same/different test pairs scored by
cosine; 3-D seed-0 runs also keep 600 embeddings for the sphere figure. ``report`` writes docs/loss_study.md
(mean ± std over seeds) and the PNG figures (matplotlib, the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO.parent / "shared" / "data"))

from arcdemo.checkpoints import hardware  # noqa: E402
from arcdemo.data import load_split  # noqa: E402
from arcdemo.evaluate import pair_eer  # noqa: E402
from arcdemo.train import DoneEvent, TrainConfig, train  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "loss_study.json"
DOCS = REPO / "docs"
LOSSES = ("softmax", "normface", "sphereface", "cosface", "arcface", "triplet", "supcon")
SWEEP_MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5)  # radians
SWEEP_SCALES = (8.0, 16.0, 32.0, 64.0)
HIST_BINS = np.arange(0, 182, 2)  # degrees
SPHERE_POINTS = 600
COLUMNS = (  # key, header, format, scale
    ("accuracy", "test acc. (%)", "{:.2f}", 100),
    ("f1", "macro F1 (%)", "{:.2f}", 100),
    ("mean_intra_angle_deg", "mean intra angle (°)", "{:.1f}", 1),
    ("min_centre_angle_deg", "min centre angle (°)", "{:.1f}", 1),
    ("pair_eer", "pair EER (%)", "{:.2f}", 100),
)


def run_key(config: TrainConfig) -> str:
    return (f"{config.dataset}/{config.backbone}{config.width}/{config.loss}/d{config.dim}/m{config.margin}"
            f"/s{config.scale}/e{config.epochs}/w{config.margin_warmup_steps}/seed{config.seed}")


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}


def save_results(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))


def run(config: TrainConfig, data: tuple, results: dict) -> dict:
    """Train one configuration (or return its stored result) and record what the study reports."""
    key = run_key(config)
    if key in results["runs"]:
        return results["runs"][key]
    start = time.perf_counter()
    done = next(event for event in train(config, data=data) if isinstance(event, DoneEvent))
    evaluation = done.evaluation
    metrics = {name: evaluation.metrics.get(name) for name, *_ in COLUMNS if name != "pair_eer"}
    metrics["pair_eer"] = pair_eer(evaluation.embeddings, evaluation.labels)
    record = {
        "config": {k: getattr(config, k) for k in ("dataset", "backbone", "width", "loss", "margin", "scale", "dim",
                                                   "epochs", "seed", "margin_warmup_steps", "batch_size", "optimizer",
                                                   "lr")},
        "metrics": metrics,
        "wall_s": round(time.perf_counter() - start, 1),
        "intra_hist": np.histogram(evaluation.intra_deg, HIST_BINS)[0].tolist(),
        "inter_hist": np.histogram(evaluation.inter_deg[np.isfinite(evaluation.inter_deg)], HIST_BINS)[0].tolist(),
    }
    if config.dim == 3 and config.seed == 0:
        chosen = np.random.default_rng(0).choice(len(evaluation.labels), SPHERE_POINTS, replace=False)
        record["sphere"] = {"points": np.round(evaluation.embeddings[chosen], 3).tolist(),
                            "labels": evaluation.labels[chosen].tolist(),
                            "centres": np.round(evaluation.centres, 3).tolist()}
    results["runs"][key] = record
    results["hardware"] = hardware()
    results["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save_results(results)
    print(f"{key}: acc {metrics['accuracy']:.4f}  eer {metrics['pair_eer']:.4f}  ({record['wall_s']:.0f} s)",
          file=sys.stderr, flush=True)
    return record


def base_config(args: argparse.Namespace, **fields: object) -> TrainConfig:
    return TrainConfig(dataset=args.dataset, epochs=args.epochs, sample_every=0,
                       augment=args.dataset != "mnist", **fields).resolved()


def command_table(args: argparse.Namespace) -> None:
    data = (load_split(args.dataset, "train"), load_split(args.dataset, "test"))
    results = load_results()
    for seed in args.seeds:  # seeds outermost: a partial study still has every loss once
        for dim in args.dims:
            for loss in args.losses:
                settings = {} if loss == "softmax" else {"margin": args.margin, "scale": args.scale,
                                                         "margin_warmup_steps": args.warmup}
                run(base_config(args, loss=loss, dim=dim, seed=seed, **settings), data, results)


def command_sweep(args: argparse.Namespace) -> None:
    data = (load_split("mnist", "train"), load_split("mnist", "test"))
    results = load_results()
    args.dataset = "mnist"
    for warmup in (-1, 0):  # one epoch of margin warm-up, then none
        for margin in SWEEP_MARGINS:
            for scale in SWEEP_SCALES:
                run(base_config(args, loss="arcface", dim=3, margin=margin, scale=scale, margin_warmup_steps=warmup,
                                seed=args.seeds[0]), data, results)


# ------------------------------------------------------------------------------------------------------ report


def _mean_std(values: list[float], fmt: str, scale: float) -> str:
    values = np.asarray(values, dtype=float) * scale
    if len(values) == 1:
        return fmt.format(values[0]) + " (1 seed)"
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def _groups(runs: dict, dataset: str) -> dict:
    """Table runs grouped by (dim, loss, epochs, m, s) over seeds: the loss table's rows."""
    groups: dict = {}
    for record in runs.values():
        c = record["config"]
        if c["dataset"] == dataset and _is_table_run(c):
            key = (c["dim"], c["loss"], c["epochs"], c["margin"], c["scale"], c["margin_warmup_steps"])
            groups.setdefault(key, []).append(record)
    return groups


def table_markdown(runs: dict, dataset: str) -> str:
    lines = []
    rows = sorted(_groups(runs, dataset).items(), key=lambda kv: (kv[0][0], LOSSES.index(kv[0][1]), kv[0][3:]))
    for (dim, loss, epochs, margin, scale, warmup), records in rows:
        cells = [_mean_std([r["metrics"][k] for r in records], fmt, s) for k, _, fmt, s in COLUMNS]
        seconds = np.mean([r["wall_s"] for r in records])
        lines.append(f"| {dim} | {loss} | {margin:g} | {scale:g} | {_warmup_text(warmup, dim, loss)} | {epochs} | "
                     f"{len(records)} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    header = ("| dim | loss | m | s | margin warm-up | epochs | seeds | " + " | ".join(h for _, h, *_ in COLUMNS)
              + " | s/run |\n|---|---|---|---|---|---|---|" + "---|" * len(COLUMNS) + "---|")
    return header + "\n" + "\n".join(lines) if lines else ""


def _warmup_text(steps: int, dim: int, loss: str) -> str:
    """The margin warm-up as the trainer applies it (-1: one epoch at dim ≤ 3, none above)."""
    if loss in ("softmax", "normface", "triplet", "supcon"):
        return "–"
    if steps < 0:
        return "1 epoch" if dim <= 3 else "none"
    return f"{steps} steps" if steps else "none"


def figures(runs: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    spheres = [(r["config"]["loss"], r["sphere"]) for r in runs.values()
               if "sphere" in r and r["config"]["dataset"] == "mnist" and _is_table_run(r["config"])]
    spheres.sort(key=lambda item: LOSSES.index(item[0]))
    if spheres:
        fig = plt.figure(figsize=(2.6 * len(spheres), 2.8), dpi=90)
        for i, (loss, sphere) in enumerate(spheres):
            ax = fig.add_subplot(1, len(spheres), i + 1, projection="3d")
            p = np.asarray(sphere["points"])
            ax.scatter(*p.T, c=sphere["labels"], cmap="tab10", s=3, vmin=0, vmax=9, depthshade=False)
            c = np.asarray(sphere["centres"])
            c = c / np.linalg.norm(c, axis=1, keepdims=True)
            ax.scatter(*c.T, c="black", s=14, marker="x")
            ax.set_title(loss, fontsize=10)
            ax.set_axis_off()
            for axis in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                axis(-0.9, 0.9)
            ax.set_box_aspect((1, 1, 1), zoom=1.3)
        fig.tight_layout()
        written.append(_save(fig, DOCS / "loss_study_spheres.png"))

    hist_groups: dict = {}
    for r in runs.values():
        c = r["config"]
        if c["dataset"] == "mnist" and _is_table_run(c):
            hist_groups.setdefault((c["dim"], c["loss"]), []).append(r)
    for dim in sorted({d for d, _ in hist_groups}):
        losses = [loss for loss in LOSSES if (dim, loss) in hist_groups]
        fig, axes = plt.subplots(1, len(losses), figsize=(2.4 * len(losses), 2.3), dpi=90, sharey=True)
        for ax, loss in zip(np.atleast_1d(axes), losses):
            intra = np.sum([r["intra_hist"] for r in hist_groups[(dim, loss)]], axis=0)
            inter = np.sum([r["inter_hist"] for r in hist_groups[(dim, loss)]], axis=0)
            centres = (HIST_BINS[:-1] + HIST_BINS[1:]) / 2
            ax.fill_between(centres, intra / intra.sum(), step="mid", alpha=0.6, label="to own centre")
            ax.fill_between(centres, inter / inter.sum(), step="mid", alpha=0.6, label="to nearest other")
            ax.set_title(loss, fontsize=10)
            ax.set_xlim(0, 150)
            ax.set_xlabel("angle (°)", fontsize=8)
            ax.tick_params(labelsize=7)
        np.atleast_1d(axes)[0].legend(fontsize=7)
        fig.suptitle(f"MNIST {dim}-D: angles of test embeddings", fontsize=10)
        fig.tight_layout()
        written.append(_save(fig, DOCS / f"loss_study_angles_{dim}d.png"))

    sweep = {(r["config"]["margin"], r["config"]["scale"], r["config"]["margin_warmup_steps"]): r["metrics"]["accuracy"]
             for r in runs.values() if r["config"]["dataset"] == "mnist" and not _is_table_run(r["config"])}
    if sweep:
        fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.2), dpi=90, constrained_layout=True)
        low = min(100 * value for value in sweep.values())
        for ax, warmup, title in zip(axes, (-1, 0), ("margin warm-up over epoch 1", "no warm-up")):
            grid = np.full((len(SWEEP_MARGINS), len(SWEEP_SCALES)), np.nan)
            for i, m in enumerate(SWEEP_MARGINS):
                for j, s in enumerate(SWEEP_SCALES):
                    grid[i, j] = 100 * sweep.get((m, s, warmup), np.nan)
            image = ax.imshow(grid, vmin=low, vmax=100, cmap="viridis", aspect="auto")
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                            color="white" if value < (low + 100) / 2 else "black")
            ax.set_xticks(range(len(SWEEP_SCALES)), [f"{s:g}" for s in SWEEP_SCALES])
            ax.set_yticks(range(len(SWEEP_MARGINS)), [f"{m:g}" for m in SWEEP_MARGINS])
            ax.set_xlabel("scale s")
            ax.set_ylabel("margin m (rad)")
            ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=axes, label="test accuracy (%)")
        written.append(_save(fig, DOCS / "loss_study_sweep.png"))
    return written


def _is_table_run(config: dict) -> bool:
    """A loss-table run; the sweep points are the MNIST ArcFace runs away from the default m, s or warm-up."""
    from arcdemo.heads import LOSSES as SPECS

    spec = SPECS[config["loss"]]
    default = config["margin_warmup_steps"] != 0 and (config["margin"], config["scale"]) == (spec.margin, spec.scale)
    return default or config["dataset"] != "mnist"


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    fig.savefig(path, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)", file=sys.stderr)
    return path


def command_report(args: argparse.Namespace) -> None:
    results = load_results()
    runs = results["runs"]
    parts = ["# Loss study\n", f"Produced by `python benchmarks/loss_study.py report` from "
             f"`benchmarks/results/loss_study.json` (updated {results.get('updated')}, hardware: "
             f"{results.get('hardware', {}).get('cpu')}, {results.get('hardware', {}).get('cpu_count')} cores). "
             "Same backbone, data, batch, schedule and epochs for every loss in a table; mean ± sample std over seeds. "
             "Pair EER: 6,000 random same/different test pairs scored by cosine.\n"]
    for dataset in ("mnist", "cifar10"):
        table = table_markdown(runs, dataset)
        if table:
            backbones = sorted({f"`{r['config']['backbone']}` width {r['config']['width']}" for r in runs.values()
                                if r["config"]["dataset"] == dataset})
            parts += [f"## {dataset.upper() if dataset == 'mnist' else 'CIFAR-10'}\n",
                      f"Backbone: {', '.join(backbones)}; batch 128, SGD one-cycle.\n", table, ""]
    captions = {
        "loss_study_spheres": "Test embeddings (600, seed 0) and class centres (×) on the sphere, MNIST 3-D.",
        "loss_study_angles_3d": "Angle of each test embedding to its own class centre and to the nearest other one.",
        "loss_study_angles_128d": "The same at 128-D.",
        "loss_study_sweep": "ArcFace margin × scale on MNIST 3-D (seed 0): test accuracy with the margin ramped in "
                            "over the first epoch, and with the full margin from step 0.",
    }
    parts.append("## Figures\n")
    for path in figures(runs):
        parts.append(f"{captions.get(path.stem, '')}\n\n![{path.stem}]({path.name})\n")
    (DOCS / "loss_study.md").write_text("\n".join(parts))
    print(f"wrote {DOCS / 'loss_study.md'}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("table", "sweep"):
        sub = commands.add_parser(name)
        sub.add_argument("--dataset", default="mnist", choices=("mnist", "cifar10"))
        sub.add_argument("--losses", nargs="+", default=list(LOSSES[:5]), choices=LOSSES)
        sub.add_argument("--dims", type=int, nargs="+", default=[3])
        sub.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        sub.add_argument("--epochs", type=int, default=2)
        sub.add_argument("--margin", type=float, help="table: this m for every loss but softmax (default: each loss's)")
        sub.add_argument("--scale", type=float, help="table: this s for every loss but softmax (default: each loss's)")
        sub.add_argument("--warmup", type=int, default=-1,
                         help="table: margin warm-up steps for every loss but softmax (-1: the trainer's default)")
    commands.add_parser("report")
    args = parser.parse_args()
    {"table": command_table, "sweep": command_sweep, "report": command_report}[args.command](args)


if __name__ == "__main__":
    main()
