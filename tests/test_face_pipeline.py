"""The face pipeline on small real subsets: FIW as a training set, face augmentation, LFW/ORL evaluation, the
`train`/`eval`/`verify` CLI for faces.

Module-wide: a private cache folder (so alignment really runs) and ``ARCDEMO_FIW_IDENTITIES=30`` (the first 30
FIW identities, 275 faces). ~50 s on 2 busy CPU cores; most of it is aligning and the dlib descriptor.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from arcdemo.cli import main
from arcdemo.data import DatasetMissingError, model_domain
from arcdemo.faces import data as face_data
from arcdemo.faces import evaluate as face_eval
from arcdemo.faces.align import align_face
from arcdemo.faces.augment import _affine_flip, _blur, _colour, augment_faces
from arcdemo.faces.evaluate import lfw_pairs
from arcdemo.faces.reference import ReferenceModel
from arcdemo.faces.verify import COHORT_SIZE, FACE_MODEL
from arcdemo.model import EmbeddingModel, ModelSpec
from tests.conftest import DATA_ROOT, REPO

FACES = DATA_ROOT / "faces"
pytestmark = pytest.mark.skipif(
    not all((FACES / name).is_dir() for name in ("fiw", "lfw", "orl")), reason=f"face datasets not under {FACES}"
)
SUBSET = 60  # the first 60 FIW identities: 7 families, 2 of them held out
FIRST_IDS = sorted(p.name for p in (FACES / "fiw").iterdir() if p.is_dir())[:SUBSET] if (FACES / "fiw").is_dir() else []
EVAL_KEYS = ("lfw_accuracy", "lfw_accuracy_std", "lfw_eer", "lfw_protocol_threshold", "lfw_tar_at_far_1e-2",
             "lfw_tar_at_far_1e-3", "lfw_far_at_threshold", "lfw_frr_at_threshold", "lfw_pairs_without_face", "orl_eer")


@pytest.fixture(scope="module", autouse=True)
def private_cache_one_thread(tmp_path_factory):
    """One intra-op thread: these models are tiny, and on a busy 2-core machine every op's thread barrier waits for
    a time slice (measured: 7 training steps of a width-8 net took 16 s with 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCDEMO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setenv(face_data.IDENTITIES_ENV, str(SUBSET))
        patch.setenv("OMP_NUM_THREADS", "1")  # the verify subprocess
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fiw():
    return face_data.face_split("fiw", "train"), face_data.face_split("fiw", "val")


@pytest.fixture(scope="module")
def fold0():
    pairs = [p for p in lfw_pairs(FACES) if p[3] == 0]
    return pairs[:20] + pairs[300:320]  # what evaluate_lfw(folds=[0], pairs_per_fold=40) takes


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- FIW ------------------------------------------------------------------------------------------------------------


def test_fiw_subset_is_aligned_with_identity_labels_and_cached(fiw):
    train, val = fiw
    for split in fiw:
        assert split.images.dtype == torch.uint8 and tuple(split.images.shape[1:]) == (3, 112, 112)
        counts = torch.bincount(split.labels, minlength=len(split.class_names)).tolist()
        assert counts == [len(list((FACES / "fiw" / name).glob("*.jpg"))) for name in split.class_names]
    single = [n for n in FIRST_IDS if len(list((FACES / "fiw" / n).glob("*.jpg"))) < 2]
    excluded = face_data.excluded_identities()["fiw"]  # matched to LFW people: in neither split
    assert set(excluded) & set(FIRST_IDS)
    assert sorted(train.class_names + val.class_names) == sorted(set(FIRST_IDS) - set(single) - set(excluded))
    # every crop is what the one crop function makes of that file
    for split in fiw:
        name = split.class_names[1]
        first = sorted((FACES / "fiw" / name).glob("*.jpg"))[0]
        index = int(torch.nonzero(split.labels == 1)[0])
        expected = torch.tensor(align_face(first, assume_cropped=True).crop).permute(2, 0, 1)
        assert torch.equal(split.images[index], expected)
    start = time.perf_counter()
    again = face_data.face_split("fiw", "train")
    assert time.perf_counter() - start < 3.0 and torch.equal(again.images, train.images)
    assert model_domain("fiw") == model_domain("fiw+celeba") == "faces"
    with pytest.raises(ValueError, match="unknown split 'test'"):
        face_data.face_split("fiw", "test")
    # FIW crops are never dropped: what no detector finds is fitted in the frame box
    counts = face_data.align_source("fiw").counts()
    assert counts["without_face"] == 0 and sum(counts["found_by"].values()) == counts["images"]


def test_val_holds_out_whole_families(fiw):
    train, val = fiw
    families = sorted({face_data.family(n) for n in FIRST_IDS})
    assert {face_data.family(n) for n in val.class_names} == set(families[:: face_data.VAL_EVERY])
    assert len(set(families[:: face_data.VAL_EVERY])) == 2
    assert not {face_data.family(n) for n in train.class_names} & {face_data.family(n) for n in val.class_names}


# --- CelebA ---------------------------------------------------------------------------------------------------------


def make_celeba(root: Path, people: dict[str, list[Path]], extra: dict[str, Path]) -> Path:
    """A CelebA folder in the official layout from real photos: ``people`` maps a CelebA identity number to photos,
    numbered 000001.jpg on; ``extra`` maps a file name to a photo left out of identity_CelebA.txt."""
    from PIL import Image

    folder = root / "faces" / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    lines, number = [], 1
    for identity, photos in people.items():
        for photo in photos:
            name = f"{number:06d}.jpg"
            Image.open(photo).convert("RGB").save(images / name, quality=95)
            lines.append(f"{name} {identity}")
            number += 1
    for name, photo in extra.items():
        Image.open(photo).convert("RGB").save(images / name, quality=95)
    (folder / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_celeba_reader_labels_skips_and_counts(tmp_path, monkeypatch):
    from PIL import Image

    lfw = FACES / "lfw"
    wall = tmp_path / "wall.png"
    Image.new("RGB", (178, 218), (128, 128, 128)).save(wall)
    bush = sorted((lfw / "George_W_Bush").glob("*.jpg"))[:3]
    blair = sorted((lfw / "Tony_Blair").glob("*.jpg"))[:2]
    powell = sorted((lfw / "Colin_Powell").glob("*.jpg"))[:1]
    make_celeba(tmp_path, {"12": bush, "20": [*blair, wall], "7": [*powell, wall]}, {"202600.jpg": bush[0]})
    monkeypatch.setenv("ARCDEMO_DATA_ROOT", str(tmp_path))
    monkeypatch.delenv(face_data.IDENTITIES_ENV)
    files = face_data.source_files("celeba")
    assert files.unlabelled == 1  # 202600.jpg is in no label line
    assert files.identities == ("CelebA-7",) * 2 + ("CelebA-12",) * 3 + ("CelebA-20",) * 3
    aligned = face_data.align_source("celeba")
    counts = aligned.counts()
    assert counts["images"] == 8 and counts["without_face"] == 2 and counts["identities"] == 3
    assert counts["unlabelled_images"] == 1
    # identity 7 keeps one usable face: dropped; 20 is a validation identity (divisible by 10)
    train, val = (face_data.face_split("celeba", s) for s in ("train", "val"))
    assert train.class_names == ("CelebA-12",) and len(train) == 3
    assert val.class_names == ("CelebA-20",) and len(val) == 2
    # the reference descriptors the overlap check reads: the first faces found of each identity
    kept = ~aligned.reference.isnan().any(1).numpy()
    assert kept.sum() == 6 and not kept[~aligned.found].any()
    with pytest.raises(DatasetMissingError, match="FIW not found"):  # both sources asked for, one missing
        face_data.face_split("fiw+celeba", "val")
    # another folder of CelebA photos beside the first: only its new numbers are aligned, a repeated number is
    # read from the first folder, and the first faces keep their crops
    wild = tmp_path / "faces" / "celeba" / "img_celeba"
    wild.mkdir()
    Image.open(bush[1]).save(wild / "000002.jpg")  # 000002.jpg is already in img_align_celeba
    Image.open(sorted((lfw / "George_W_Bush").glob("*.jpg"))[3]).save(wild / "000009.jpg")
    with (tmp_path / "faces" / "celeba" / "identity_CelebA.txt").open("a") as labels:
        labels.write("000009.jpg 12\n")
    aligned_jobs = []
    real_align_into = face_data._align_into
    monkeypatch.setattr(face_data, "_align_into",
                        lambda jobs, *args: (aligned_jobs.extend(jobs), real_align_into(jobs, *args)))
    grown = face_data.align_source("celeba")
    assert [Path(job[0]).name for job in aligned_jobs] == ["000009.jpg"]
    assert grown.counts()["images"] == 9 and grown.identities.count("CelebA-12") == 4
    assert sum(Path(p).parent.name == "img_celeba" for p in grown.paths) == 1
    assert torch.equal(grown.crops[[grown.paths.index(p) for p in aligned.paths]], aligned.crops)


def test_celeba_missing_or_malformed_is_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCDEMO_DATA_ROOT", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="CelebA not found at .*identity_CelebA.txt and img_align_celeba"):
        face_data.source_files("celeba")
    folder = tmp_path / "faces" / "celeba"
    folder.mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match="identity_CelebA.txt is missing"):
        face_data.source_files("celeba")
    (folder / "identity_CelebA.txt").write_text("000001.jpg 4\n")
    with pytest.raises(DatasetMissingError, match="no folder of CelebA images"):
        face_data.source_files("celeba")
    (folder / "identity_CelebA.txt").write_text("000001.jpg 4\nthis line is wrong\n")
    with pytest.raises(DatasetMissingError, match="line 2 is not"):
        face_data.source_files("celeba")
    code = main(["train", "--dataset", "celeba", "--epochs", "1", "--quiet", "--out", str(tmp_path / "x")])
    assert code == 2 and not (tmp_path / "x.json").exists()


# --- augmentation ---------------------------------------------------------------------------------------------------


def test_augmentation_is_per_sample_and_reproducible(fiw):
    images = fiw[0].images[:64]
    first = augment_faces(images, torch.Generator().manual_seed(0))
    again = augment_faces(images, torch.Generator().manual_seed(0))
    assert first.dtype == torch.float32 and first.shape == images.shape
    assert 0 <= first.min() and first.max() <= 1 and torch.equal(first, again)
    change = (first - images.float() / 255).abs().mean(dim=(1, 2, 3))
    assert change.min() > 0 and change.std() > 0.01  # every sample altered, by different amounts
    # mirror alone (no affine part): each sample is exactly itself or its mirror, and both occur
    x = images.float() / 255
    mirrored = _affine_flip(x, torch.Generator().manual_seed(1), p_affine=0.0, degrees=8, scale=0.1, shift=0.1)
    same = [torch.allclose(m, o, atol=1e-5) for m, o in zip(mirrored, x)]
    flipped = [torch.allclose(m, o.flip(2), atol=1e-5) for m, o in zip(mirrored, x)]
    assert all(a or b for a, b in zip(same, flipped)) and 10 < sum(flipped) < 54
    grey = _colour(x, torch.Generator().manual_seed(2), strength=0.3, p_grey=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)
    blurred = _blur(x, torch.Generator().manual_seed(3), p=1.0, sigma=(1.0, 1.5))
    sharpness = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean(dim=(1, 2, 3))  # noqa: E731
    assert (sharpness(blurred) < sharpness(x)).all()
    assert torch.allclose(blurred.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.01)


# --- evaluation -----------------------------------------------------------------------------------------------------


def test_no_face_pairs_get_the_worst_score_and_one_fold_is_split_in_ten():
    embeddings = np.eye(3, dtype=np.float32)
    embeddings[2] = 0.0  # image 2 has no face
    found = np.array([True, True, False])
    scores, missing = face_eval.pair_scores(embeddings, found, np.array([0, 0, 2]), np.array([0, 1, 1]))
    assert scores.tolist() == [1.0, 0.0, face_eval.NO_FACE_SCORE] and missing.tolist() == [False, False, True]
    offsets = np.array([0.1, 0.2, 0.0], dtype=np.float32)  # cohort offsets: each pair loses both of its faces'
    scores, _ = face_eval.pair_scores(embeddings, found, np.array([0, 0, 2]), np.array([0, 1, 1]), offsets)
    assert scores == pytest.approx([0.8, -0.3, face_eval.NO_FACE_SCORE]) and face_eval.NO_FACE_SCORE < -2
    same = np.array([True] * 30 + [False] * 30)
    folds, protocol = face_eval.protocol_folds(np.zeros(60, int), same)
    assert "within" in protocol
    assert all(((folds == k) & same).sum() == 3 == ((folds == k) & ~same).sum() for k in range(10))
    official = np.repeat(np.arange(10), 6)
    assert face_eval.protocol_folds(official, same)[0] is official


def test_reference_model_on_40_lfw_pairs(fold0):
    result = face_eval.evaluate_lfw(ReferenceModel(), FACES, folds=[0], pairs_per_fold=40)
    assert result["lfw_pairs"] == 40 and result["lfw_folds"] == [0]
    assert result["lfw_images"] == len({p for a, b, _, _ in fold0 for p in (a, b)})
    assert result["lfw_accuracy"] >= 0.9  # dlib: 99.38 % on full LFW; these 40 pairs are easy
    assert result["lfw_eer"] <= 0.1 and result["lfw_tar_at_far_1e-2"] >= 0.8
    assert result["lfw_pairs_without_face"] == 0
    assert result["lfw_accuracy_no_face_counted_wrong"] == result["lfw_accuracy"]
    far, tar = np.array(result["lfw_roc"]["far"]), np.array(result["lfw_roc"]["tar"])
    assert far[0] == 0 and far[-1] == 1 == tar[-1] and (np.diff(far) >= 0).all()
    start = time.perf_counter()  # cached: the second run only reads crops and descriptors
    again = face_eval.evaluate_lfw(ReferenceModel(), FACES, folds=[0], pairs_per_fold=40)
    assert again["lfw_protocol_threshold"] == result["lfw_protocol_threshold"]
    assert time.perf_counter() - start < 3.0


def test_fresh_tiny_model_runs_lfw_end_to_end():
    torch.manual_seed(0)
    spec = ModelSpec("faces", "mobilefacenet", 8, 16, 3, 32, ("a", "b"), "arcface", 0.5, 32.0, extra={"input_size": 32})
    result = face_eval.evaluate_lfw(EmbeddingModel(spec), FACES, folds=[0], pairs_per_fold=40)
    assert result["flip_tta"] and result["lfw_pairs"] == 40 and "@32px" in result["model"]
    folds = result["lfw_fold_accuracies"]  # fold 0's 40 pairs split in ten: four pairs a fold
    assert len(folds) == 10 and all(accuracy * 4 == round(accuracy * 4) for accuracy in folds)
    assert result["lfw_accuracy"] == pytest.approx(np.mean(folds))
    assert "lfw_far_at_threshold" not in result  # no operating threshold given: no out-of-sample rates claimed
    at = face_eval.evaluate_lfw(EmbeddingModel(spec), FACES, folds=[0], pairs_per_fold=40, threshold=2.0)
    assert at["lfw_far_at_threshold"] == 0.0 and at["lfw_frr_at_threshold"] == 1.0  # nothing clears 2.0


# --- train / eval / verify through the CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_checkpoint(tmp_path_factory):
    """A tiny face model trained through the CLI on the FIW subset, calibrated on its held-out families; its card's
    LFW part uses 40 pairs of fold 0."""
    out = tmp_path_factory.mktemp("faces") / "faces-tiny"
    quick = functools.partial(face_eval.evaluate_faces, folds=[0], pairs_per_fold=40)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(face_eval, "evaluate_faces", quick)
        code = main(["train", "--dataset", "fiw", "--dim", "16", "--width", "8", "--image-size", "32", "--epochs", "1",
                     "--batch-size", "32", "--optimizer", "adam", "--quiet", "--out", str(out)])
    assert code == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def test_train_cli_on_fiw_writes_a_face_card(face_checkpoint, fiw):
    out, card = face_checkpoint
    metrics = card["metrics"]
    assert card["model"]["dataset"] == "faces" and card["model"]["image_size"] == 32
    assert card["model"]["extra"] == {"input_size": 32} and card["config"]["dataset"] == "fiw"
    assert "non-commercial" in card["data"]["terms"]
    fiw_card = card["data"]["sources"]["fiw"]
    assert fiw_card["train_identities"] == len(fiw[0].class_names) and fiw_card["val_images"] == len(fiw[1])
    assert 0.4 <= metrics["val_accuracy"] <= 1.0 and metrics["val_identities"] == len(fiw[1].class_names)
    assert all(k in metrics for k in EVAL_KEYS) and metrics["lfw_pairs"] == 40


def test_the_operating_point_comes_from_validation_identities(face_checkpoint, fiw):
    from arcdemo.checkpoints import load_checkpoint

    out, card = face_checkpoint
    calibration = card["metrics"]["calibration"]
    model, _ = load_checkpoint(out)
    assert calibration["cohort_size"] == COHORT_SIZE  # scores against each face's nearest training identities
    again = face_eval.calibrate_model(model, "fiw", COHORT_SIZE)
    assert calibration["dataset"] == "fiw" and again["threshold"] == pytest.approx(calibration["threshold"])
    plain = face_eval.calibrate_model(model, "fiw")
    assert plain["cohort_size"] == 0 and plain["threshold"] != pytest.approx(calibration["threshold"])
    assert calibration["fit_identities"] + calibration["check_identities"] == len(fiw[1].class_names)
    low, high = calibration["uncertain_band"]
    assert low <= calibration["threshold"] <= high
    # LFW's FAR/FRR on the card are those of the validation threshold applied to LFW
    quick = face_eval.evaluate_lfw(model, FACES, folds=[0], pairs_per_fold=40, threshold=calibration["threshold"],
                                   cohort_size=COHORT_SIZE)
    assert quick["lfw_far_at_threshold"] == card["metrics"]["lfw_far_at_threshold"]
    assert quick["lfw_cohort_size"] == card["metrics"]["lfw_cohort_size"] == COHORT_SIZE


def test_eval_cli_dispatches_face_checkpoints_to_lfw(face_checkpoint, capsys):
    out, card = face_checkpoint
    code, stdout, _ = run_main(capsys, "eval", "--checkpoint", str(out), "--folds", "0", "--pairs-per-fold", "40")
    assert code == 0
    result = json.loads(stdout)
    assert all(k in result for k in EVAL_KEYS) and result["dataset"] == "faces"
    assert result["lfw_protocol_threshold"] == pytest.approx(card["metrics"]["lfw_protocol_threshold"])
    assert result["lfw_accuracy"] == pytest.approx(card["metrics"]["lfw_accuracy"])
    assert result["orl_pairs"] == 79800 and 0 <= result["orl_eer"] <= 1
    code, _, err = run_main(capsys, "eval", "--checkpoint", str(out), "--folds", "12")
    assert code == 2 and err.count("\n") == 1 and "no fold [12]" in err


def test_calibrate_cli_refuses_a_cohort_it_cannot_have(face_checkpoint, capsys):
    out, card = face_checkpoint
    for size, words in (("-1", "must be 0 (plain cosine) or more"), ("100000", "needs at least 100000")):
        code, _, err = run_main(capsys, "calibrate", "--checkpoint", str(out), "--cohort-size", size)
        assert code == 2 and err.count("\n") == 1 and words in err, err
    assert json.loads(out.with_suffix(".json").read_text())["metrics"] == card["metrics"]  # the card is untouched


def test_verify_with_our_checkpoint_uses_its_calibrated_threshold(face_checkpoint, fold0, capsys):
    out, card = face_checkpoint
    a, b, _, _ = fold0[0]
    code, stdout, _ = run_main(capsys, "verify", str(a), str(b), "--checkpoint", str(out))
    result = json.loads(stdout)
    assert code == 0 and result["model"] == "arcface"
    assert result["threshold"] == card["metrics"]["calibration"]["threshold"]
    assert result["uncertain_band"] == card["metrics"]["calibration"]["uncertain_band"]
    assert result["faces_found"] == [1, 1] and -1 <= result["cosine"] <= 1
    assert result["cohort_size"] == COHORT_SIZE and result["similarity"] < result["cosine"]  # offsets of two faces
    assert result["same_person"] == (result["similarity"] > result["threshold"])


def test_a_face_run_without_lfw_still_writes_its_checkpoint(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    (root / "faces").mkdir(parents=True)
    (root / "faces" / "fiw").symlink_to(FACES / "fiw")  # FIW to train on, no LFW or ORL to test on
    monkeypatch.setenv("ARCDEMO_DATA_ROOT", str(root))
    out = tmp_path / "run"
    code, stdout, err = run_main(capsys, "train", "--dataset", "fiw", "--dim", "8", "--width", "8", "--image-size",
                                 "32", "--epochs", "1", "--batch-size", "32", "--optimizer", "adam", "--quiet",
                                 "--out", str(out))
    assert code == 0 and "is saved, but" in err and "python -m arcdemo calibrate" in err
    card = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".safetensors").exists() and "val_accuracy" in card["metrics"]
    assert "calibration" in card["metrics"]  # calibrated on FIW's validation families before LFW was missed
    assert json.loads(stdout.splitlines()[-1])["checkpoint"] == str(out)


def test_verify_reference_same_and_different_people(fold0, capsys):
    same_a, same_b, same, _ = fold0[0]
    diff_a, diff_b, different, _ = fold0[20]
    assert same and not different
    done = subprocess.run([sys.executable, "-m", "arcdemo", "verify", str(same_a), str(same_b), "--model", "reference"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "reference" and result["same_person"] is True and result["faces_found"] == [1, 1]
    assert result["similarity"] > result["threshold"] > 0.5  # calibrated: checkpoints/reference/lfw.json
    code, stdout, _ = run_main(capsys, "verify", str(diff_a), str(diff_b), "--model", "reference")
    assert code == 0 and json.loads(stdout)["same_person"] is False


def test_verify_errors_are_one_line_with_exit_2(tmp_path, fold0, capsys, monkeypatch):
    a = str(fold0[0][0])
    blank = tmp_path / "wall.png"
    from PIL import Image

    Image.new("RGB", (200, 160), (128, 128, 128)).save(blank)
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for args, expected in (
        ((a, str(blank), "--model", "reference"), "no face found"),
        ((str(corrupt), a, "--model", "reference"), "broken.jpg could not be read as an image"),
        ((a, str(tmp_path / "missing.jpg"), "--model", "reference"), "does not exist"),
        ((a, a, "--model", "reference", "--checkpoint", "x"), "--checkpoint is for --model arcface"),
        ((a, a, "--checkpoint", str(tmp_path / "nothing")), "not found"),
    ):
        code, stdout, err = run_main(capsys, "verify", *args)
        assert code == 2 and stdout == "" and err.count("\n") == 1 and expected in err, (args, err)
    monkeypatch.setenv("ARCDEMO_CHECKPOINTS", str(tmp_path))  # no shipped face model there
    code, _, err = run_main(capsys, "verify", a, a)
    assert code == 2 and err.count("\n") == 1
    assert f"python -m arcdemo train --preset {FACE_MODEL}" in err and "--model reference" in err
