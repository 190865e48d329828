"""The CAM family, each against its paper's formula in numpy on a net where A and dy/dA can be written down.

The net: a 1x1 convolution with two output channels and a ReLU (the explained
layer, A = relu(w_k x + b_k), at the input's own 4x4 resolution, so the
upsampling is the identity), then a linear head y = W . vec(A) + c. So
G = dy_c/dA = W[c] reshaped, a constant, and each CAM is a few lines of numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpret_core import get_attribution, get_model
from interpret_core.nn.blocks import last_spatial_block

torch.set_num_threads(1)

CAMS = ("grad-cam-pp", "score-cam", "layer-cam", "hires-cam", "eigen-cam", "xgrad-cam")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
        self.flatten = nn.Flatten()
        self.head = nn.Linear(2 * 4 * 4, 3)
        rng = np.random.default_rng(0)
        with torch.no_grad():
            self.block[0].weight.copy_(torch.tensor([[[[1.5]]], [[[-0.8]]]]))
            self.block[0].bias.copy_(torch.tensor([-0.3, 0.6]))
            self.head.weight.copy_(torch.tensor(rng.normal(size=(3, 32))))
            self.head.bias.copy_(torch.tensor([0.1, -0.2, 0.05]))

    def forward(self, x):
        return self.head(self.flatten(self.block(x)))


@pytest.fixture(scope="module")
def case():
    net = Tiny().eval().double()
    x = np.random.default_rng(1).random((2, 1, 4, 4))
    w = net.block[0].weight.detach().numpy().reshape(2)
    b = net.block[0].bias.detach().numpy()
    A = np.maximum(w[None, :, None, None] * x + b[None, :, None, None], 0)  # [N, 2, 4, 4]
    W = net.head.weight.detach().numpy().reshape(3, 2, 4, 4)
    c = net.head.bias.detach().numpy()
    target = np.array([1, 2])
    G = W[target]  # [N, 2, 4, 4]
    return net, x, A, G, W, c, target


def _ours(name, net, x, target):
    return get_attribution(name).attribute(net.float(), torch.tensor(x, dtype=torch.float32), torch.tensor(target))[:, 0].double().numpy()


def _relu(v):
    return np.maximum(v, 0)


def test_grad_cam_plus_plus(case):
    net, x, A, G, *_, target = case
    denominator = 2 * G**2 + A.sum(axis=(2, 3), keepdims=True) * G**3
    alpha = np.where(denominator != 0, G**2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * _relu(G)).sum(axis=(2, 3), keepdims=True)
    expected = _relu((weights * A).sum(axis=1))
    np.testing.assert_allclose(_ours("grad-cam-pp", net, x, target), expected, rtol=1e-5, atol=1e-6)


def test_score_cam(case):
    net, x, A, G, W, c, target = case
    low = A.min(axis=(2, 3), keepdims=True)
    high = A.max(axis=(2, 3), keepdims=True)
    M = np.where(high > low, (A - low) / np.where(high > low, high - low, 1), 0)
    wconv = net.block[0].weight.detach().double().numpy().reshape(2)
    bconv = net.block[0].bias.detach().double().numpy()
    scores = np.zeros((2, 2))
    for i in range(2):
        for k in range(2):
            masked = x[i, 0] * M[i, k]
            activation = np.maximum(wconv[:, None, None] * masked + bconv[:, None, None], 0)
            logits = W.reshape(3, -1) @ activation.reshape(-1) + c
            p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            scores[i, k] = p[target[i]]
    expected = _relu((scores[:, :, None, None] * A).sum(axis=1))
    np.testing.assert_allclose(_ours("score-cam", net, x, target), expected, rtol=1e-5, atol=1e-6)


def test_layer_cam(case):
    net, x, A, G, *_, target = case
    np.testing.assert_allclose(_ours("layer-cam", net, x, target), _relu((_relu(G) * A).sum(axis=1)), rtol=1e-5, atol=1e-6)


def test_hires_cam_is_signed(case):
    net, x, A, G, *_, target = case
    expected = (G * A).sum(axis=1)
    assert (expected < 0).any()  # the case exercises the sign
    np.testing.assert_allclose(_ours("hires-cam", net, x, target), expected, rtol=1e-5, atol=1e-6)
    assert get_attribution("hires-cam").signed and not get_attribution("layer-cam").signed


def test_eigen_cam_ignores_the_class(case):
    net, x, A, *_ = case
    expected = []
    for i in range(2):
        matrix = A[i].reshape(2, -1).T  # [h*w, K]
        _, _, vh = np.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vh[0]
        expected.append((projection if projection.sum() >= 0 else -projection).reshape(4, 4))
    ours = _ours("eigen-cam", net, x, np.array([0, 0]))
    np.testing.assert_allclose(ours, np.stack(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_ours("eigen-cam", net, x, np.array([2, 1])), ours)


def test_xgrad_cam(case):
    net, x, A, G, *_, target = case
    total = A.sum(axis=(2, 3), keepdims=True)
    weights = (np.where(total != 0, A / np.where(total != 0, total, 1), 0) * G).sum(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(_ours("xgrad-cam", net, x, target), _relu((weights * A).sum(axis=1)), rtol=1e-5, atol=1e-6)


def test_cams_on_fer_cnn_default_layer_and_shape():
    model = get_model("fer-cnn")
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert last_spatial_block(model.module, (1, 64, 64)).layer == "conv3"
    for name in CAMS:
        maps = get_attribution(name).attribute(model.module, x, torch.tensor([5, 7]))
        assert maps.shape == x.shape and torch.isfinite(maps).all(), name
        other = get_attribution(name, layer="conv2").attribute(model.module, x, torch.tensor([5, 7]))
        assert not torch.allclose(other, maps), name


class MiniXceptionLike(nn.Module):
    """Ends in a 3x3 classifier convolution (channels = classes) and global average pooling, as Arriaga et al."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Conv2d(8, 7, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x):
        return self.flatten(self.pool(self.classifier(self.features(x))))


def test_default_layer_is_never_the_classifier_convolution():
    block = last_spatial_block(MiniXceptionLike().eval(), (1, 16, 16))
    assert block.layer == "features" and block.shape == (8, 8, 8) and block.stride == (2.0, 2.0)
    with pytest.raises(Exception) as info:
        last_spatial_block(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), (1, 8, 8))
    assert "layer=" in str(info.value)
