"""Receptive fields against a brute-force gradient-support check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.nn.receptive_field import receptive_field


def _sequential(pool: type[nn.Module]) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 5, padding=2),
        nn.ReLU(inplace=True),
        pool(2),
        nn.Conv2d(3, 3, 3, padding=1, dilation=1),
        nn.ReLU(),
        pool(3, stride=2, ceil_mode=True) if pool is nn.MaxPool2d else pool(3, stride=2, ceil_mode=True),
        nn.Conv2d(3, 4, 3, stride=1, padding=0, dilation=2),
        nn.ReLU(),
        nn.Conv2d(4, 4, 2, stride=2, padding=1),
    )


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.down = nn.Conv2d(cin, cout, 1, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.down(x))


class _ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.layer1 = _Block(4, 4, 1)
        self.layer2 = _Block(4, 6, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.layer2(self.layer1(self.pool(self.relu(self.bn(self.stem(x))))))
        return self.fc(torch.flatten(self.gap(x), 1))


def _positive(net: nn.Module) -> nn.Module:
    """Positive weights and inputs keep every ReLU open, so gradient support = receptive field."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand_like(p) + 0.1)
    return net.double().eval()


def _support(net: nn.Module, layer: str, size: int, i: int, j: int) -> tuple[int, int, int, int]:
    """Bounding box (y0, y1, x0, x1) of input pixels with a nonzero gradient."""
    captured = {}
    handle = dict(net.named_modules())[layer].register_forward_hook(lambda m, a, o: captured.__setitem__("o", o))
    x = (torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5).requires_grad_(True)
    try:
        net(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(captured["o"][0, :, i, j].sum(), x)
    nz = grad[0, 0].abs() > 0
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    return (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)


@pytest.mark.parametrize("layer", ["0", "2", "3", "5", "6", "8"])
def test_sequential_avg_pool_matches_gradient_support(layer):
    # Average pooling passes gradient to its whole window, so support is the full field.
    net = _positive(_sequential(nn.AvgPool2d))
    rf = receptive_field(net, layer, (1, 40, 40))
    oh, ow = rf.output_shape
    for i, j in [(0, 0), (oh // 2, ow // 3), (oh - 1, ow - 1)]:
        assert rf.box(i, j) == _support(net, layer, 40, i, j)


def test_max_pool_has_the_same_geometry_as_avg_pool():
    a = receptive_field(_sequential(nn.MaxPool2d), "8", (1, 40, 40))
    b = receptive_field(_sequential(nn.AvgPool2d), "8", (1, 40, 40))
    assert a == b


@pytest.mark.parametrize("layer", ["stem", "pool", "layer1", "layer1.conv1", "layer2", "layer2.conv1", "layer2.down"])
def test_resnet_main_path_and_shortcut(layer):
    net = _positive(_ResNet())
    # Gradient support through max-pooling switches is smaller than the field;
    # swap the pooling for an average pool of the same geometry for the check.
    net.pool = nn.AvgPool2d(2)
    rf = receptive_field(net, layer, (1, 32, 32))
    oh, ow = rf.output_shape
    for i, j in [(0, 0), (oh // 2, ow // 2), (oh - 1, 1)]:
        assert rf.box(i, j) == _support(net, layer, 32, i, j)


def test_centre_offset_and_stride():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1))
    rf = receptive_field(net, "2", (1, 16, 16))
    assert rf.size == (8, 8) and rf.stride == (2, 2) and rf.output_shape == (8, 8)
    assert rf.start == (-3, -3)
    assert rf.offset == (0.5, 0.5)
    assert rf.centre(2, 3) == (4.5, 6.5)
    y0, y1, x0, x1 = rf.window(2, 3)
    assert ((y0 + y1 - 1) / 2, (x0 + x1 - 1) / 2) == rf.centre(2, 3)
    assert rf.box(0, 0) == (0, 5, 0, 5)  # clipped at the top-left
    assert rf.box(7, 7) == (11, 16, 11, 16)


def test_training_flags_restored_and_running_stats_untouched():
    net = _ResNet().train()
    before = net.bn.running_mean.clone()
    receptive_field(net, "layer2", (1, 32, 32))
    assert all(m.training for m in net.modules())
    assert torch.equal(net.bn.running_mean, before)
    assert not net._forward_hooks and not net.layer2._forward_hooks


def test_errors():
    net = _ResNet()
    with pytest.raises(UsageError, match="no layer"):
        receptive_field(net, "layer9", (1, 32, 32))
    with pytest.raises(UsageError, match="not a feature map"):
        receptive_field(net, "fc", (1, 32, 32))
    with pytest.raises(CapabilityError, match="gap"):
        receptive_field(net, "gap", (1, 32, 32))
