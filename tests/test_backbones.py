import pytest
import torch
from torch import nn

from arcdemo.backbones import BACKBONES, ThreeByThreeAvgPool, build_backbone


@pytest.mark.parametrize(
    "name,channels,size,max_params",
    [("mnist_cnn", 1, 28, 300_000), ("cifar_net", 3, 32, 4_000_000), ("mobilefacenet", 3, 112, 2_000_000)],
)
@pytest.mark.parametrize("dim", [2, 3, 128])
def test_backbones_return_only_the_embedding(name, channels, size, max_params, dim):
    torch.manual_seed(0)
    model = build_backbone(name, dim, channels)
    out = model(torch.randn(4, channels, size, size))
    assert out.shape == (4, dim)
    assert torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) < max_params
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_registry_and_errors():
    assert set(BACKBONES) >= {"mnist_cnn", "cifar_net", "mobilefacenet"}
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet9000", 3, 3)
    with pytest.raises(ValueError, match="≥ 2"):
        build_backbone("mnist_cnn", 1, 1)


def test_width_scales_the_cifar_net():
    small = sum(p.numel() for p in build_backbone("cifar_net", 3, 3, width=16).parameters())
    large = sum(p.numel() for p in build_backbone("cifar_net", 3, 3, width=64).parameters())
    assert 10 < large / small < 20  # conv weights grow with width²


@pytest.mark.parametrize("size", [7, 5, 9])
def test_three_by_three_pool_is_adaptive_pooling(size):
    """The 7×7 fast path must give the adaptive pool's numbers and gradients (shipped checkpoints rely on it)."""
    x = torch.randn(4, 8, size, size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    fast, reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    out_fast, out_reference = ThreeByThreeAvgPool()(fast), nn.AdaptiveAvgPool2d(3)(reference)
    (out_fast * upstream).sum().backward()
    (out_reference * upstream).sum().backward()
    torch.testing.assert_close(out_fast, out_reference)
    torch.testing.assert_close(fast.grad, reference.grad)
