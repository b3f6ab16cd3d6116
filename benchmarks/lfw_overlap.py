"""Which FIW and CelebA identities are LFW people? The exclusion list the face training sets drop.

    python benchmarks/lfw_overlap.py            # aligns the sources and LFW if not cached (~1 h on 2 cores),
                                                # then ~1 min

For every training identity, the mean of dlib's centred reference descriptors of its first faces is compared with
each LFW person's (``arcdemo.faces.overlap``); an identity whose best LFW person clears ``MATCH_COSINE`` and beats
the runner-up by ``MATCH_MARGIN`` is excluded. The rule's two errors are measured on the sources first
(``match_rates``: an identity's own held-back face hidden among the LFW people), for several rules. An identity
the committed list already excludes stays excluded: photos added to a source change which faces are an identity's
first, and a person once matched to LFW must not slip back into training on that.

The report also counts how every face was found (HOG, its upsampled and padded passes, the CNN fallback, none), for
LFW and each source: the no-face rate before the CNN fallback and after it.

Writes ``arcdemo/faces/lfw_excluded.json`` (the list the training sets read, with the rule and this command) and
``benchmarks/results/lfw_overlap.json`` (the rates, the matches with their LFW names and cosines). With
``--checkpoint`` it also scores that face model on LFW twice: on all 6,000 pairs, and on the pairs whose people
match no identity of the sources it was trained on -- how optimistic its LFW number was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARCDEMO_DATA_ROOT", str(REPO / "data"))

import numpy as np  # noqa: E402

from arcdemo.checkpoints import hardware, load_checkpoint  # noqa: E402
from arcdemo.evaluate import verification_metrics  # noqa: E402
from arcdemo.faces.data import (  # noqa: E402
    EXCLUDED_FILE,
    REFERENCE_PER_IDENTITY,
    SOURCES,
    align_images,
    align_source,
    excluded_identities,
    faces_root,
)
from arcdemo.faces.evaluate import embed_aligned, lfw_pairs, pair_scores  # noqa: E402
from arcdemo.faces.overlap import MATCH_COSINE, MATCH_MARGIN, lfw_overlap, match_rates  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "lfw_overlap.json"
RULES = [(t, m) for t in (0.3, 0.4, 0.5, 0.6) for m in (0.0, 0.03, 0.05, 0.08, 0.1, 0.15)]


def lfw_without(model, matched_people: set[str]) -> dict:
    """The model's LFW 10-fold accuracy on all pairs and on the pairs where neither person is in ``matched_people``."""
    pairs = lfw_pairs(faces_root())
    paths = sorted({str(p) for a, b, _, _ in pairs for p in (a, b)})
    row = {p: i for i, p in enumerate(paths)}
    aligned = align_images([Path(p) for p in paths], "lfw")
    embeddings = embed_aligned(model, aligned)
    first = np.array([row[str(a)] for a, _, _, _ in pairs])
    second = np.array([row[str(b)] for _, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    folds = np.array([f for *_, f in pairs])
    scores, _ = pair_scores(embeddings, aligned.found, first, second)
    clean = np.array([a.parent.name not in matched_people and b.parent.name not in matched_people
                      for a, b, _, _ in pairs])
    everything = verification_metrics(scores, same, folds)
    unseen = verification_metrics(scores[clean], same[clean], folds[clean])
    return {"all_pairs": {"pairs": int(len(same)), "accuracy": everything["accuracy"], "eer": everything["eer"]},
            "pairs_of_unseen_people": {"pairs": int(clean.sum()), "accuracy": unseen["accuracy"], "eer": unseen["eer"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="also score this face model with and without matched people")
    args = parser.parse_args()
    start = time.perf_counter()
    lfw = align_images(sorted((faces_root() / "lfw").glob("*/*.jpg")), "lfw", reference=True)
    report: dict = {"command": "python benchmarks/lfw_overlap.py " + " ".join(sys.argv[1:]),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "hardware": hardware(), "lfw_images": len(lfw.paths),
                    "lfw_identities": len(set(lfw.identities)), "lfw_detection": lfw.counts(),
                    "rule": {"cosine": MATCH_COSINE, "margin": MATCH_MARGIN}, "sources": {}}
    excluded: dict[str, list[str]] = {}
    before = excluded_identities()
    for source in SOURCES:
        aligned = align_source(source)
        matches = lfw_overlap(aligned, lfw)
        kept = sorted(set(before.get(source, ())) - set(matches))
        excluded[source] = sorted({*matches, *kept})
        report["sources"][source] = {
            "identities": len(set(aligned.identities)),
            "detection": aligned.counts(),  # how each face was found: HOG passes, the CNN fallback, none
            "rates": match_rates(aligned, lfw, RULES),
            "excluded": len(excluded[source]),
            "matched_now": len(matches),
            "kept_from_before": kept,  # excluded by an earlier run of this command, not matched by this one
            "matches": {name: {"lfw": person, "cosine": cosine, "margin": margin}
                        for name, (person, cosine, margin) in sorted(matches.items())},
        }
        print(f"{source}: {len(matches)} of {len(set(aligned.identities))} identities match an LFW person, "
              f"{len(kept)} more stay excluded from before", file=sys.stderr)
    if args.checkpoint:
        model, card = load_checkpoint(args.checkpoint)
        trained_on = card["config"]["dataset"].split("+")
        people = {m["lfw"] for s in trained_on for m in report["sources"][s]["matches"].values()}
        report["checkpoint"] = {"path": str(args.checkpoint), "trained_on": trained_on,
                                "lfw_people_matched": len(people), **lfw_without(model, people)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    EXCLUDED_FILE.write_text(json.dumps({
        "rule": (f"dlib ResNet descriptors centred on LFW's mean; a training identity (unit mean of its first "
                 f"{REFERENCE_PER_IDENTITY} faces) matches the LFW person (unit mean of their faces, all 7,701 "
                 f"images of the 4,281 people in pairs.txt) whose cosine to it is ≥ {MATCH_COSINE} and exceeds the "
                 f"runner-up's by ≥ {MATCH_MARGIN}; an identity once excluded stays excluded"),
        "command": report["command"], "created": report["created"],
        "counts": {s: len(v) for s, v in excluded.items()}, "excluded": excluded,
    }, indent=1) + "\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "sources"} | {
        s: {k: v for k, v in r.items() if k != "matches"} for s, r in report["sources"].items()}))


if __name__ == "__main__":
    main()
