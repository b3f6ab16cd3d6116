"""Relational distillation: the loss against a float64 loop, its edge cases, and the trainer learning a teacher's
notion of which classes look alike."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arcdemo.distill import centred, relational_loss
from arcdemo.train import DoneEvent, TrainConfig, train


def naive_relational(embeddings: np.ndarray, teacher: np.ndarray) -> float:
    rows = [i for i in range(len(teacher)) if np.isfinite(teacher[i]).all()]
    unit = [embeddings[i] / np.linalg.norm(embeddings[i]) for i in rows]
    gaps = [(unit[a] @ unit[b] - teacher[rows[a]] @ teacher[rows[b]]) ** 2
            for a, b in itertools.permutations(range(len(rows)), 2)]
    return float(np.mean(gaps))


def test_loss_matches_a_float64_loop_and_skips_rows_without_a_teacher():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(24, 16, generator=generator, dtype=torch.float64)
    teacher = F.normalize(torch.randn(24, 8, generator=generator, dtype=torch.float64), dim=1)
    teacher[::3] = float("nan")
    got = relational_loss(embeddings, teacher).item()
    assert got == pytest.approx(naive_relational(embeddings.numpy(), teacher.numpy()), rel=1e-6)


def test_no_nan_where_student_and_teacher_agree_and_every_embedding_gets_a_gradient():
    teacher = F.normalize(torch.randn(10, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    teacher[3] = teacher[4]  # cos = 1 between two rows
    embeddings = teacher.clone().requires_grad_(True)
    loss = relational_loss(embeddings, teacher)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-10)
    assert torch.isfinite(embeddings.grad).all()
    moved = (teacher + 0.3 * torch.randn(10, 5, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    relational_loss(moved, teacher).backward()
    assert (moved.grad.abs().sum(dim=1) > 0).all()


def test_fewer_than_two_teacher_rows_cost_nothing_but_keep_the_graph():
    embeddings = torch.randn(4, 3, requires_grad=True)
    teacher = torch.full((4, 3), float("nan"))
    teacher[1] = torch.tensor([1.0, 0.0, 0.0])
    loss = relational_loss(embeddings, teacher)
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_centred_teacher_is_the_mean_free_unit_direction():
    raw = torch.randn(50, 6, generator=torch.Generator().manual_seed(3)) + 5.0  # a narrow cone, like dlib's
    raw[7] = float("nan")
    out = centred(raw)
    has = np.isfinite(raw.numpy()).all(axis=1)
    expected = raw.numpy()[has] - raw.numpy()[has].mean(axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(out.numpy()[has], expected, atol=1e-6)
    assert torch.isnan(out[7]).all()
    with pytest.raises(ValueError, match="no training sample has a teacher"):
        centred(torch.full((3, 2), float("nan")))


@pytest.fixture(scope="module")
def digits_with_a_teacher():
    """Small MNIST whose teacher finds 0 and 1 alike (cos 0.9) and every other pair of digits unrelated."""
    from arcdemo.data import load_split
    from tests.conftest import require_data

    require_data("MNIST", "raw")
    train_split, test_split = load_split("mnist", "train").subset(2560, seed=1), load_split("mnist", "test")
    directions = torch.eye(10, 12)
    directions[1] = F.normalize(directions[0] + 0.484 * torch.eye(10, 12)[1], dim=0)  # cos(0, 1) = 0.9
    teacher = directions[train_split.labels].clone()
    teacher[1::2] = float("nan")  # half the images have no teacher vector, as in the face sets
    return replace(train_split, teacher=teacher), test_split.subset(1000, seed=1)


def class_cosine(model, split, a: int, b: int) -> float:
    with torch.no_grad():
        unit = F.normalize(model.embed(split.images), dim=1)
    centre = [F.normalize(unit[split.labels == c].mean(0), dim=0) for c in (a, b)]
    return float(centre[0] @ centre[1])


def test_the_trainer_learns_which_classes_the_teacher_finds_alike(digits_with_a_teacher):
    config = TrainConfig(dataset="mnist", dim=16, epochs=2, optimizer="adam", sample_every=0, seed=0)
    runs = {}
    for weight in (0.0, 50.0):
        done = list(train(replace(config, distill=weight), data=digits_with_a_teacher))[-1]
        assert isinstance(done, DoneEvent) and done.evaluation.metrics["accuracy"] > 0.8
        runs[weight] = class_cosine(done.model, digits_with_a_teacher[1], 0, 1)
    assert runs[0.0] < 0.3  # ArcFace alone spreads 0 and 1 like any two digits
    assert runs[50.0] > runs[0.0] + 0.3  # with the teacher they come close


def test_distilling_needs_a_split_with_a_teacher(digits_with_a_teacher):
    plain = replace(digits_with_a_teacher[0], teacher=None)
    config = TrainConfig(dataset="mnist", dim=8, epochs=1, distill=1.0, sample_every=0)
    with pytest.raises(ValueError, match="no teacher embeddings"):
        list(train(config, data=(plain, digits_with_a_teacher[1])))
