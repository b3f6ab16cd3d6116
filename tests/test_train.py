"""The trainer on tiny real MNIST subsets: events, determinism, stop, resume, the NaN guard."""

from unittest import mock

import numpy as np
import pytest
import torch

from arcdemo.data import load_split
from arcdemo.heads import MarginHead
from arcdemo.model import EmbeddingModel, ModelSpec
from arcdemo.train import (
    DoneEvent,
    EpochEvent,
    SampleEvent,
    StepEvent,
    TrainConfig,
    TrainingDiverged,
    learning_rate,
    train,
)


@pytest.fixture(scope="module")
def small_mnist(request):
    from tests.conftest import require_data

    require_data("MNIST", "raw")
    return load_split("mnist", "train").subset(2560, seed=1), load_split("mnist", "test").subset(1000, seed=1)


def run(config, data, **kwargs):
    return list(train(config, data=data, **kwargs))


def tiny(**overrides):
    values = dict(
        dataset="mnist", dim=3, epochs=2, batch_size=128, sample_every=10, sample_size=200, seed=3, optimizer="adam"
    )
    return TrainConfig(**{**values, **overrides})


def test_events_stream_and_the_model_learns(small_mnist):
    events = run(tiny(), small_mnist)
    steps = [e for e in events if isinstance(e, StepEvent)]
    samples = [e for e in events if isinstance(e, SampleEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    done = events[-1]
    assert isinstance(done, DoneEvent) and not done.stopped
    assert [s.step for s in steps] == list(range(1, 41)) and steps[-1].total_steps == 40
    assert len(epochs) == 1 and epochs[0].epoch == 1
    assert len(samples) == 5  # every 10 steps + the final snapshot
    assert samples[0].embeddings.shape == (200, 3)
    assert np.allclose(np.linalg.norm(samples[0].embeddings, axis=1), 1, atol=1e-5)
    assert samples[0].rule.generators.shape == (10, 3) and samples[0].rule.margins is not None
    assert samples[-1].rule.margins == (1.0, 0.5, 0.0)  # the margin the head used by then, for the bands
    assert steps[0].margin_fraction < 0.1 and steps[-1].margin_fraction == 1.0  # warm-up over epoch 1 (dim 3)
    assert steps[-1].loss < steps[0].loss
    assert done.evaluation.metrics["accuracy"] > 0.6  # 2 epochs on 2,560 digits
    assert done.history["test_accuracy"][-1] == done.evaluation.metrics["accuracy"]


def test_same_seed_same_run_on_cpu(small_mnist):
    first = run(tiny(epochs=1, sample_every=0), small_mnist)
    second = run(tiny(epochs=1, sample_every=0), small_mnist)
    assert [e.loss for e in first if isinstance(e, StepEvent)] == [e.loss for e in second if isinstance(e, StepEvent)]
    third = run(tiny(epochs=1, sample_every=0, seed=4), small_mnist)
    assert [e.loss for e in third if isinstance(e, StepEvent)] != [e.loss for e in first if isinstance(e, StepEvent)]


def test_bf16_autocast_on_cpu_learns_like_fp32(small_mnist):
    fp32 = run(tiny(sample_every=0), small_mnist)[-1]
    bf16 = run(tiny(sample_every=0, amp=True), small_mnist)[-1]
    assert bf16.config.amp is True and bf16.evaluation.metrics["accuracy"] > 0.6
    assert abs(bf16.evaluation.metrics["accuracy"] - fp32.evaluation.metrics["accuracy"]) < 0.1


def test_stop_flag_ends_the_run_within_a_step(small_mnist):
    steps = []

    def should_stop():
        return len(steps) >= 5

    for event in train(tiny(), data=small_mnist, should_stop=should_stop):
        if isinstance(event, StepEvent):
            steps.append(event)
        if isinstance(event, DoneEvent):
            done = event
    assert done.stopped and done.steps == 5 and len(steps) == 5
    assert done.model is not None and done.evaluation is not None


def test_resume_continues_to_the_same_weights(small_mnist, tmp_path):
    config = tiny(sample_every=0, augment=True)  # augmentation too: its random draws must resume as well
    straight = run(config, small_mnist)[-1].model.state_dict()
    state = tmp_path / "run.resume.safetensors"
    seen = []

    def stop_after_first_epoch():
        return len(seen) >= 20

    for event in train(config, data=small_mnist, should_stop=stop_after_first_epoch, resume_path=state):
        if isinstance(event, StepEvent):
            seen.append(event)
    assert state.exists()
    resumed_events = run(config, small_mnist, resume_path=state)
    resumed_steps = [e.step for e in resumed_events if isinstance(e, StepEvent)]
    assert resumed_steps == list(range(21, 41))
    resumed = resumed_events[-1].model.state_dict()
    for key in straight:
        assert torch.allclose(straight[key].float(), resumed[key].float(), atol=1e-6), key


def test_resume_keeps_history_and_clock_and_refuses_another_recipe(small_mnist, tmp_path):
    from arcdemo.checkpoints import CheckpointError

    config = tiny(sample_every=0, epochs=3)
    state = tmp_path / "run.resume.safetensors"
    seen = []
    for event in train(config, data=small_mnist, should_stop=lambda: len(seen) >= 40, resume_path=state):
        if isinstance(event, StepEvent):
            seen.append(event)
    first_wall = seen[-1].elapsed_s
    done = run(config, small_mnist, resume_path=state)[-1]
    assert done.history["step"] == list(range(1, 61))  # the steps before the stop are in the history too
    assert done.history["test_step"][0] == 20 and len(done.history["test_accuracy"]) == 3
    assert done.wall_time_s > first_wall  # the clock goes on from the first part's time
    with pytest.raises(CheckpointError, match=r"another config \(epochs 3 → 4"):
        run(tiny(sample_every=0, epochs=4), small_mnist, resume_path=state)
    run(tiny(sample_every=0, epochs=3, device="cpu"), small_mnist, resume_path=state)  # where it runs may change


def test_a_state_saved_before_a_config_field_existed_still_resumes(small_mnist, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    config = tiny(sample_every=0)
    state = tmp_path / "run.resume.safetensors"
    seen = []
    for event in train(config, data=small_mnist, should_stop=lambda: len(seen) >= 20, resume_path=state):
        if isinstance(event, StepEvent):
            seen.append(event)
    with safe_open(str(state), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    older = {k: v for k, v in json.loads(metadata["config"]).items() if k != "neck_views"}
    save_file(tensors, str(state), metadata={**metadata, "config": json.dumps(older)})
    resumed = [e.step for e in run(config, small_mnist, resume_path=state) if isinstance(e, StepEvent)]
    assert resumed == list(range(21, 41))


def test_init_from_starts_a_low_d_run_on_high_d_features(small_mnist, tmp_path):
    """Two-stage recipe: the backbone's features come from a 16-D run, the 3-D embedding layer and head are new."""
    from arcdemo.checkpoints import CheckpointError, initialise_from, save_checkpoint
    from arcdemo.train import build_spec

    first = run(tiny(dim=16, sample_every=0), small_mnist)[-1]
    save_checkpoint(tmp_path / "features", first.model, {})
    fresh = EmbeddingModel(build_spec(tiny().resolved(), small_mnist[0]))
    copied = initialise_from(fresh, tmp_path / "features")
    source = first.model.state_dict()
    assert {k for k in fresh.state_dict() if k.startswith("backbone.features.")} <= set(copied)
    skipped = set(fresh.state_dict()) - set(copied)
    assert {"head.weight", "backbone.embed.3.0.weight"} <= skipped  # the 3-D embedding layer and head start fresh
    assert all(fresh.state_dict()[k].shape != source[k].shape for k in skipped)
    for key in copied:
        assert torch.equal(fresh.state_dict()[key], source[key]), key
    started = run(tiny(init_from=str(tmp_path / "features"), epochs=1, sample_every=0), small_mnist)[-1]
    scratch = run(tiny(epochs=1, sample_every=0), small_mnist)[-1]
    assert started.evaluation.metrics["accuracy"] > scratch.evaluation.metrics["accuracy"]
    wider = EmbeddingModel(build_spec(tiny(width=8).resolved(), small_mnist[0]))
    with pytest.raises(CheckpointError, match="width 16"):
        initialise_from(wider, tmp_path / "features")


def test_nan_loss_stops_with_a_clear_message(small_mnist):
    with mock.patch.object(MarginHead, "forward", lambda self, e, y: e.sum() * float("nan")):
        with pytest.raises(TrainingDiverged, match="lower the learning rate"):
            run(tiny(), small_mnist)


@pytest.mark.parametrize("loss", ["softmax", "cosface", "sphereface", "subcenter", "combined", "triplet", "supcon"])
def test_every_loss_trains_through_the_same_trainer(small_mnist, loss):
    events = run(tiny(loss=loss, dim=8, sample_every=0), small_mnist)
    done = events[-1]
    assert done.evaluation.metrics["accuracy"] > 0.3, loss  # chance is 0.1
    assert done.model.head.centres().shape == (10, 8)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (dict(dataset="svhn"), "unknown dataset"),
        (dict(loss="hinge"), "unknown loss"),
        (dict(margin=2.0), "allowed [0, 1.5]"),
        (dict(dim=1), "dim must be ≥ 2"),
        (dict(scale=float("nan")), "scale nan"),
        (dict(lr=-1.0), "lr must be"),
        (dict(epochs=0), "epochs must be"),
        (dict(dropout=1.0), "dropout must be in [0, 1)"),
        (dict(dropout=0.2), "dropout is a mobilefacenet option"),
    ],
)
def test_bad_configs_are_refused_before_training(overrides, needle):
    with pytest.raises(ValueError) as info:
        tiny(**overrides).resolved()
    assert needle in str(info.value)


def test_learning_rate_schedules():
    assert learning_rate(0, 100, 1.0, "onecycle") == pytest.approx(0.05)
    assert learning_rate(19, 100, 1.0, "onecycle") == pytest.approx(1.0)
    assert learning_rate(99, 100, 1.0, "onecycle") < 0.01
    assert learning_rate(0, 100, 1.0, "cosine") == pytest.approx(1.0)
    assert learning_rate(50, 100, 1.0, "cosine") == pytest.approx(0.5)


@pytest.mark.parametrize("shift", [False, True], ids=["flip", "flip+shift"])
@pytest.mark.parametrize("loss", ["softmax", "arcface"])
def test_tta_prediction_matches_its_definition(loss, shift):
    """Softmax averages the views' logits (its logits grow with the embedding's length); a cosine head scores
    the mean direction of the views."""

    torch.manual_seed(0)
    margin, scale = (0.0, 1.0) if loss == "softmax" else (0.2, 16.0)
    spec = ModelSpec("cifar10", "cifar_net", 8, 16, 3, 32, tuple("abcdefghij"), loss, margin, scale)
    model = EmbeddingModel(spec).eval()
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    probabilities, unit = model.predict(images, flip_tta=True, shift_tta=shift)
    views = [images, images.flip(3)]
    if shift:  # 1 px each way with the border reflected, as uint8 images
        padded = [torch.nn.functional.pad(v.float(), (1, 1, 1, 1), mode="reflect").to(torch.uint8) for v in views]
        views += [p[..., :-2, :-2] for p in padded] + [p[..., 2:, 2:] for p in padded]
    embedded = [model.embed(v) for v in views]
    if loss == "softmax":
        expected = torch.stack([model.head.logits(e) for e in embedded]).mean(0)
    else:
        expected = model.head.logits(sum(torch.nn.functional.normalize(e, dim=1) for e in embedded))
    torch.testing.assert_close(probabilities, torch.softmax(expected, dim=1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(6))


def test_tta_views_shift_by_one_pixel_with_reflected_borders():
    from arcdemo.model import tta_views

    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    assert len(tta_views(x, flip=False, shift=False)) == 1 and len(tta_views(x, flip=True, shift=False)) == 2
    plain, down_right, up_left = tta_views(x, flip=False, shift=True)
    assert torch.equal(plain, x)
    assert torch.equal(down_right[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(up_left[..., :-1, :-1], x[..., 1:, 1:])
    assert torch.equal(down_right[..., 0, 1:], x[..., 1, :-1]), "the border row is the reflection, not zeros"
    views = tta_views(x, flip=True, shift=True)
    assert len(views) == 6 and torch.equal(views[1], x.flip(3))
    assert torch.equal(views[3][..., 1:, 1:], x.flip(3)[..., :-1, :-1]), "the mirror image, shifted"
    assert all(v.shape == x.shape for v in views)


def face_model(size: int, classes: str = "abcd", loss: str = "arcface", **options: float) -> EmbeddingModel:
    """A tiny MobileFaceNet face model (width 8, 16-D) for ``size`` px input, one class per letter of ``classes``,
    and backbone ``options``."""
    return EmbeddingModel(ModelSpec(
        dataset="faces", backbone="mobilefacenet", width=8, embedding_dim=16, in_channels=3, image_size=size,
        class_names=tuple(classes), loss=loss, margin=0.5, scale=32.0, subcentres=3,
        extra={"input_size": size, **options}))


def test_init_from_keeps_the_centres_of_the_people_it_knew(tmp_path):
    """Continued on more photos (other people added, some gone), a face model's head keeps each known person's
    centre (or sub-centres) by name; a new person keeps the fresh rows."""
    from arcdemo.checkpoints import initialise_from, save_checkpoint

    torch.manual_seed(0)
    before = face_model(112, "abcd", loss="subcenter")
    save_checkpoint(tmp_path / "four", before, {})
    after = face_model(112, "cxab e", loss="subcenter")
    fresh = after.head.weight.detach().clone()
    assert "head.weight" in initialise_from(after, tmp_path / "four")
    old, new = before.head.weight.detach().view(4, 3, 16), after.head.weight.detach().view(6, 3, 16)
    for j, name in enumerate("cxab e"):
        expected = old["abcd".index(name)] if name in "abcd" else fresh.view(6, 3, 16)[j]
        assert torch.equal(new[j], expected), name


def test_init_from_carries_a_face_model_to_another_input_size(tmp_path):
    """MobileFaceNet's global depthwise kernel spans the whole map (input / 16): at another input size it is
    resampled, every other weight copied as it is, and a map of equal activations gives the same output."""
    from arcdemo.checkpoints import initialise_from, resample_kernel, save_checkpoint

    torch.manual_seed(0)
    small, large = face_model(96), face_model(112)
    save_checkpoint(tmp_path / "faces96", small, {})
    copied = initialise_from(large, tmp_path / "faces96")
    assert set(copied) == set(large.state_dict())
    before, after = small.state_dict(), large.state_dict()
    resampled = [k for k in copied if before[k].shape != after[k].shape]
    assert len(resampled) == 1
    assert before[resampled[0]].shape[-2:] == (6, 6) and after[resampled[0]].shape[-2:] == (7, 7)
    assert all(torch.equal(before[k], after[k]) for k in copied if k not in resampled)
    kernel = torch.randn(32, 1, 6, 6, dtype=torch.float64)
    wider = resample_kernel(kernel, torch.Size([7, 7]))
    assert wider.dtype == kernel.dtype and wider.shape == (32, 1, 7, 7)
    torch.testing.assert_close(wider.sum((-2, -1)), kernel.sum((-2, -1)))
    torch.testing.assert_close(resample_kernel(torch.ones(2, 1, 6, 6), torch.Size([7, 7])),
                               torch.full((2, 1, 7, 7), 36 / 49))


def test_dropout_before_the_embedding_acts_only_while_training(tmp_path):
    """MobileFaceNet's dropout zeroes GDC features while training (scaled by 1/(1-p)), never at inference; it adds no
    weight, so its checkpoint loads into a model built without it and embeds the same."""
    from arcdemo.checkpoints import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model, plain = face_model(32, dropout=0.5), face_model(32)
    assert set(model.state_dict()) == set(plain.state_dict())
    backbone = model.backbone
    x = torch.randn(8, 3, 32, 32)
    seen = {}
    backbone.embed.register_forward_pre_hook(lambda _, args: seen.update(features=args[0].detach()))
    backbone.train()
    backbone(x)
    features = backbone.features(x)
    dropped = seen["features"] == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half of the features
    torch.testing.assert_close(seen["features"][~dropped], 2 * features[~dropped])
    backbone.eval()
    backbone(x)
    torch.testing.assert_close(seen["features"], backbone.features(x))
    save_checkpoint(tmp_path / "dropped", model.eval(), {})
    loaded, _ = load_checkpoint(tmp_path / "dropped")
    plain.load_state_dict(model.state_dict())
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    assert loaded.spec.extra["dropout"] == 0.5
    torch.testing.assert_close(loaded.embed(images), plain.embed(images))
