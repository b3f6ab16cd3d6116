"""ORL's 40 people on a sphere: the reader, the neck on the frozen face model, aligned uploads and folders, and a
run stuck at chance named as such."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arcdemo import catalog
from arcdemo.checkpoints import find_checkpoint, initialise_from, load_checkpoint
from arcdemo.model import EmbeddingModel, ModelSpec
from arcdemo.train import StepEvent, TrainConfig, ViewsEvent, stuck_at_chance, train
from tests.conftest import REPO, require_data


def orl_spec(classes: int = 4) -> ModelSpec:
    return ModelSpec(dataset="orl", backbone="face_neck", width=32, embedding_dim=3, in_channels=3, image_size=112,
                     class_names=tuple(f"s{i}" for i in range(1, classes + 1)), loss="arcface", margin=0.3,
                     scale=8.0, extra={"input_size": 112})


def test_orl_splits_hold_photos_1_to_7_and_8_to_10_of_all_40_people():
    require_data("faces", "orl")
    from arcdemo.data import read_split

    train_split, test_split = read_split("orl", "train"), read_split("orl", "test")
    assert train_split.images.shape == (280, 3, 112, 112) and test_split.images.shape == (120, 3, 112, 112)
    assert np.bincount(train_split.labels.numpy()).tolist() == [7] * 40
    assert np.bincount(test_split.labels.numpy()).tolist() == [3] * 40
    assert train_split.class_names == catalog.dataset("orl").classes


def test_missing_orl_is_one_sentence(tmp_path, monkeypatch):
    from arcdemo.data import DatasetMissingError, read_split

    monkeypatch.setenv("ARCDEMO_DATA_ROOT", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="ORL's 40 people are not under"):
        read_split("orl", "train")


def test_the_neck_learns_while_the_face_model_stays_as_shipped():
    model = EmbeddingModel(orl_spec())
    copied = initialise_from(model, catalog.FACE_MODEL)
    face, _ = load_checkpoint(find_checkpoint(catalog.FACE_MODEL))
    shipped = {k.replace("backbone.", "backbone.face.", 1): v for k, v in face.state_dict().items()
               if k.startswith("backbone.")}
    assert set(shipped) <= set(copied)  # every weight and BatchNorm statistic of the face network
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    images = torch.randint(0, 256, (8, 3, 112, 112), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        loss, _ = model(model.prepare(images), torch.arange(8) % 4)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = model.state_dict()
    assert all(torch.equal(after[k], shipped[k]) for k in shipped)  # weights and running statistics alike
    assert not torch.equal(after["backbone.neck.0.weight"], before["backbone.neck.0.weight"])
    assert not any(p.requires_grad for p in model.backbone.face.parameters())


def test_a_neck_run_freezes_the_shipped_face_model_unless_told_otherwise():
    config = TrainConfig(dataset="orl").resolved()
    assert (config.backbone, config.init_from) == ("face_neck", catalog.FACE_MODEL)


def test_a_neck_run_embeds_each_training_view_once_and_learns_on_the_sphere(monkeypatch):
    """ORL's shipped 3-D recipe: the frozen face network embeds 8 augmented views of each training photo and the test
    photos once (not every batch), the neck learns from those, and the face network's weights and BatchNorm
    statistics stay the shipped ones."""
    require_data("faces", "orl")
    from arcdemo.backbones import FaceNeck
    from arcdemo.presets import preset

    embedded = []
    face_embeddings = FaceNeck.face_embeddings

    def counted(self, x):
        embedded.append(len(x))
        return face_embeddings(self, x)

    monkeypatch.setattr(FaceNeck, "face_embeddings", counted)
    events = list(train(preset("orl-arcface-3d", sample_every=100, sample_size=40)))
    done = events[-1]
    assert done.config.neck_views == 8 and done.steps == 50 * (280 // 32)
    views = [i for i, e in enumerate(events) if isinstance(e, ViewsEvent)]
    assert [(events[i].done, events[i].total, events[i].photos) for i in views] == [(k, 8, 280) for k in range(1, 9)]
    assert views[-1] < min(i for i, e in enumerate(events) if isinstance(e, StepEvent))  # shown before step 1
    assert sum(embedded) == 8 * 280 + 120 + 120  # training views, test photos (epochs, snapshots), final evaluation
    assert done.evaluation.metrics["accuracy"] >= 0.9  # 97% for the shipped orl-arcface-3d
    face, _ = load_checkpoint(find_checkpoint(catalog.FACE_MODEL))
    trained = done.model.state_dict()
    assert all(torch.equal(trained[k.replace("backbone.", "backbone.face.", 1)], v)
               for k, v in face.state_dict().items() if k.startswith("backbone."))


def test_stop_while_the_face_network_embeds_the_views_ends_before_the_first_step():
    """Stop pressed during a neck's preparation: no step is taken, the rest of the views are not embedded, and the
    one evaluation still reports on the untrained neck."""
    require_data("faces", "orl")
    from arcdemo.presets import preset

    events: list = []
    stop_after_two = lambda: sum(isinstance(e, ViewsEvent) for e in events) >= 2  # noqa: E731
    for event in train(preset("orl-arcface-3d", sample_every=0), should_stop=stop_after_two):
        events.append(event)
    done = events[-1]
    assert [e.done for e in events if isinstance(e, ViewsEvent)] == [1, 2]
    assert done.stopped and done.steps == 0 and not any(isinstance(e, StepEvent) for e in events)
    assert len(done.evaluation.labels) == 120


def lfw_photo(person: str, index: int = 0) -> Path:
    return sorted(require_data("faces", "lfw", person).glob("*.jpg"))[index]


def test_an_upload_to_a_face_model_is_aligned_first_and_a_faceless_one_is_a_sentence(tmp_path):
    from arcdemo.faces.align import align_face
    from arcdemo.inputs import InputError
    from arcdemo.ui.predict import face_input

    photo = lfw_photo("Tony_Blair")
    batch = face_input(str(photo), 112)
    assert batch.shape == (1, 3, 112, 112) and batch.dtype == torch.uint8
    assert torch.equal(batch[0].permute(1, 2, 0), torch.from_numpy(align_face(str(photo)).crop))
    wall = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (120, 120, 120)).save(wall)
    with pytest.raises(InputError, match="This model places faces"):
        face_input(str(wall), 112)


def test_a_folder_of_face_photos_is_aligned_once_and_faceless_photos_are_listed(tmp_path):
    from arcdemo.faces.folders import align_image_folder, aligned_note

    source = tmp_path / "people"
    for person in ("Tony_Blair", "Colin_Powell"):
        (source / person).mkdir(parents=True)
        for i in range(3):
            (source / person / f"{i}.jpg").write_bytes(lfw_photo(person, i).read_bytes())
    Image.new("RGB", (200, 200), (120, 120, 120)).save(source / "Colin_Powell" / "wall.png")
    aligned = align_image_folder(source)
    assert aligned.photos == 7 and aligned.without_face == ("Colin_Powell/wall.png",)
    crops = sorted(p.relative_to(aligned.root).as_posix() for p in aligned.root.rglob("*.png"))
    assert crops == [f"{person}/{i}.png" for person in ("Colin_Powell", "Tony_Blair") for i in range(3)]
    assert Image.open(aligned.root / "Tony_Blair" / "0.png").size == (112, 112)
    stamp = (aligned.root / "Tony_Blair" / "0.png").stat().st_mtime_ns
    assert align_image_folder(source) == aligned  # the second call reads what the first wrote
    assert (aligned.root / "Tony_Blair" / "0.png").stat().st_mtime_ns == stamp
    assert aligned_note(aligned.root) == "6 of 7 photos aligned; no face found in Colin_Powell/wall.png (left out)"


def test_stuck_means_at_chance_for_a_whole_window_with_the_margin_on():
    at_chance, learning = [0.03] * 30, [0.03] * 10 + [0.4] * 20
    assert stuck_at_chance(at_chance, 40, steps_with_full_margin=25)
    assert not stuck_at_chance(at_chance, 40, steps_with_full_margin=10)  # still ramping the margin in
    assert not stuck_at_chance(learning, 40, steps_with_full_margin=25)
    assert stuck_at_chance([0.55] * 30, 2, 25) and not stuck_at_chance([0.7] * 30, 2, 25)  # two classes


def test_a_collapsed_run_says_so_in_its_progress_and_the_cli(tmp_path):
    orl = require_data("faces", "orl")
    events = list(train(TrainConfig(dataset="imagefolder", data_dir=str(orl), loss="arcface", margin=0.9,
                                    scale=64.0, dim=64, epochs=6, batch_size=32, sample_every=0,
                                    margin_warmup_steps=0, seed=0)))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert not steps[5].stuck  # too early to tell
    assert steps[-1].stuck.startswith("stuck at chance") and "m = 0.9, s = 64" in steps[-1].stuck
    result = subprocess.run(
        [sys.executable, "-m", "arcdemo", "train", "--dataset", "imagefolder", "--data-dir", str(orl), "--margin",
         "0.9", "--scale", "64", "--epochs", "4", "--margin-warmup-steps", "0", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stuck at chance" in result.stderr and "Lower the margin or the scale" in result.stderr
