"""Heads against a naive per-sample float64 reference (pytorch-metric-learning's test style)."""

import math

import numpy as np
import pytest
import torch

from arcdemo.heads import LOSSES, FeatureLossHead, MarginHead, build_head, check_loss_arguments

MARGIN_LOSSES = ["softmax", "normface", "sphereface", "cosface", "arcface", "combined", "subcenter"]


def reference_target(theta: float, m1: float, m2: float, m3: float) -> float:
    """ψ(θ) written out case by case, as the docs describe it."""
    angle = m1 * theta + m2
    if angle <= math.pi:
        return math.cos(angle) - m3
    if m1 == 1.0:
        return math.cos(theta) - m2 * math.sin(m2) - m3
    k = math.floor(angle / math.pi)
    return (-1) ** k * math.cos(angle) - 2 * k - m3


def reference_loss(head: MarginHead, x: np.ndarray, y: np.ndarray) -> float:
    """Per-sample float64 loop: normalise, cosines, replace the target, scale, log-softmax."""
    w = head.weight.detach().double().numpy()
    total = 0.0
    for xi, yi in zip(x, y):
        if not head.normalise:
            logits = w @ xi + head.bias.detach().double().numpy()
        else:
            xn = xi / np.linalg.norm(xi)
            cos = np.array([wi @ xn / np.linalg.norm(wi) for wi in w])
            cos = cos.reshape(head.num_classes, head.subcentres).max(axis=1)
            theta = math.acos(min(max(cos[yi], -1 + 1e-7), 1 - 1e-7))
            if head.m1 != 1.0 or head.m2 != 0.0 or head.m3 != 0.0:
                target = reference_target(theta, head.m1, head.m2, head.m3)
                if head.easy_margin and cos[yi] <= 0:
                    target = cos[yi]
                cos[yi] = target
            logits = head.scale * cos
        logits = logits - logits.max()
        total += -(logits[yi] - math.log(np.exp(logits).sum()))
    return total / len(y)


@pytest.mark.parametrize("loss", MARGIN_LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(7, 3, 10), (16, 2, 4), (5, 128, 10)])
def test_margin_heads_match_naive_reference(loss, dtype, shape):
    n, dim, classes = shape
    torch.manual_seed(n * dim + classes)
    head = build_head(loss, dim, classes)
    x = torch.randn(n, dim, dtype=dtype) * 3
    y = torch.randint(0, classes, (n,))
    got = head(x, y).item()
    want = reference_loss(head, x.double().numpy(), y.numpy())
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_easy_margin_and_obtuse_angles_match_reference():
    torch.manual_seed(1)
    head = build_head("arcface", 3, 4, margin=0.8, easy_margin=True)
    # put samples opposite their centre (θ > π − m): exercises both the easy-margin and the fallback branch
    centres = head.centres()
    y = torch.tensor([0, 1, 2, 3])
    x = -centres[y] + 0.05 * torch.randn(4, 3)
    assert head(x, y).item() == pytest.approx(reference_loss(head, x.double().numpy(), y.numpy()), rel=1e-5)
    head.easy_margin = False
    assert head(x, y).item() == pytest.approx(reference_loss(head, x.double().numpy(), y.numpy()), rel=1e-5)


@pytest.mark.parametrize("m1,m2,m3", [(1.0, 0.5, 0.0), (1.0, 0.3, 0.2), (4.0, 0.0, 0.0), (1.35, 0.2, 0.1)])
def test_target_logit_is_monotonic_decreasing_and_finite(m1, m2, m3):
    head = MarginHead(2, 2, m1=m1, m2=m2, m3=m3, scale=1.0)
    head.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    theta = torch.linspace(0, math.pi, 2001)
    x = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    target = head.margin_logits(x, torch.zeros(len(x), dtype=torch.long))[:, 0]
    assert torch.isfinite(target).all()
    assert (target[1:] <= target[:-1] + 1e-5).all(), "ψ(θ) must not increase with θ"


@pytest.mark.parametrize("loss", MARGIN_LOSSES)
def test_no_nan_at_cos_plus_minus_one_and_on_the_centre(loss):
    head = build_head(loss, 3, 3)
    centres = head.weight.detach().clone()
    # embedding exactly on its centre (cos = 1), exactly opposite (cos = −1)
    x = torch.cat([centres[:3].clone(), -centres[:3].clone()]).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    value = head(x, y)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_parameter_gets_a_gradient(loss):
    torch.manual_seed(0)
    head = build_head(loss, 8, 5)
    x = torch.randn(20, 8, requires_grad=True)
    y = torch.arange(20) % 5
    head(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_zero_margin_reduces_to_normface():
    torch.manual_seed(3)
    x, y = torch.randn(32, 6), torch.randint(0, 7, (32,))
    normface = build_head("normface", 6, 7, scale=20.0)
    for loss in ("arcface", "cosface", "combined"):
        other = build_head(loss, 6, 7, margin=0.0, scale=20.0, **({"m3": 0.0} if loss == "combined" else {}))
        other.weight.data.copy_(normface.weight.data)
        assert other(x, y).item() == pytest.approx(normface(x, y).item(), rel=1e-6)
    sphere = build_head("sphereface", 6, 7, margin=1.0, scale=20.0)
    sphere.weight.data.copy_(normface.weight.data)
    assert sphere(x, y).item() == pytest.approx(normface(x, y).item(), rel=1e-6)


def test_margin_warmup_scales_the_margin():
    torch.manual_seed(4)
    x, y = torch.randn(16, 3), torch.randint(0, 4, (16,))
    arc = build_head("arcface", 3, 4, margin=0.5)
    full = arc(x, y).item()
    arc.margin_fraction = 0.0
    normface = build_head("normface", 3, 4, scale=arc.scale)
    normface.weight.data.copy_(arc.weight.data)
    assert arc(x, y).item() == pytest.approx(normface(x, y).item(), rel=1e-6)
    arc.margin_fraction = 0.5
    half = arc(x, y).item()
    assert normface(x, y).item() < half < full


def test_logits_are_float32_under_autocast():
    head = build_head("arcface", 4, 3)
    x = torch.randn(5, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head.margin_logits(x, torch.zeros(5, dtype=torch.long)).dtype == torch.float32
        assert head.logits(x).dtype == torch.float32


def test_centres_are_unit_and_subcentres_pool():
    head = build_head("subcenter", 5, 4, subcentres=3)
    assert head.weight.shape == (12, 5)
    centres = head.centres()
    assert centres.shape == (4, 5)
    assert torch.allclose(centres.norm(dim=1), torch.ones(4))
    # a sample exactly on sub-centre 2 of class 1 has cosine 1 with class 1
    x = head.weight.detach()[1 * 3 + 2].unsqueeze(0)
    assert head.cosines(x)[0, 1].item() == pytest.approx(1.0, abs=1e-6)


def naive_triplet(x: np.ndarray, y: np.ndarray, margin: float) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    losses = []
    for a in range(len(y)):
        pos = [np.linalg.norm(x[a] - x[p]) for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [np.linalg.norm(x[a] - x[n]) for n in range(len(y)) if y[n] != y[a]]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return float(np.mean(losses))


def naive_supcon(x: np.ndarray, y: np.ndarray, temperature: float) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    losses = []
    for a in range(len(y)):
        others = [k for k in range(len(y)) if k != a]
        denominator = math.log(sum(math.exp(x[a] @ x[k] / temperature) for k in others))
        positives = [p for p in others if y[p] == y[a]]
        if positives:
            losses.append(-np.mean([x[a] @ x[p] / temperature - denominator for p in positives]))
    return float(np.mean(losses))


def test_feature_losses_match_naive_reference():
    torch.manual_seed(5)
    x, y = torch.randn(24, 6, dtype=torch.float64), torch.randint(0, 4, (24,))
    triplet = build_head("triplet", 6, 4, margin=0.3)
    assert triplet(x, y).item() == pytest.approx(naive_triplet(x.numpy(), y.numpy(), 0.3), rel=1e-5)
    supcon = build_head("supcon", 6, 4, scale=10.0)
    assert supcon(x, y).item() == pytest.approx(naive_supcon(x.numpy(), y.numpy(), 0.1), rel=1e-5)


def test_feature_head_class_means_follow_the_embeddings():
    head = build_head("supcon", 3, 2)
    assert isinstance(head, FeatureLossHead)
    x = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).repeat(10, 1)
    y = torch.tensor([0, 1]).repeat(10)
    for _ in range(200):
        head(x, y)
    assert torch.allclose(head.centres(), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), atol=1e-3)
    assert head.logits(x[:2]).argmax(1).tolist() == [0, 1]


@pytest.mark.parametrize(
    "loss,margin,scale,needle",
    [
        ("arcface", -0.1, 30, "allowed [0, 1.5]"),
        ("arcface", float("nan"), 30, "margin nan"),
        ("cosface", 0.3, -1, "scale -1"),
        ("softmax", 0.5, 1, "allowed 0"),
        ("sphereface", 0.5, 30, "allowed [1, 6]"),
        ("nope", 0, 1, "unknown loss"),
    ],
)
def test_bad_arguments_name_the_range(loss, margin, scale, needle):
    with pytest.raises(ValueError, match=None) as info:
        check_loss_arguments(loss, margin, scale)
    assert needle in str(info.value)
