"""LRP through Zennit: a hand-computed epsilon rule, and Zennit's own composites on fer-cnn and fer-resnet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpret_core import get_attribution, get_model

import zennit  # noqa: E402  (this suite runs in .venv-tv, where the lrp extra installs it; missing must fail)
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonAlpha2Beta1, EpsilonPlusFlat  # noqa: E402
from zennit.rules import Pass  # noqa: E402

from interp_models.nets import BasicBlock, Standardise  # noqa: E402

torch.set_num_threads(1)


class TinyDense(nn.Module):
    def __init__(self, w1, b1, w2, b2):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(3, 2)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(2, 2)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor(w1)); self.fc1.bias.copy_(torch.tensor(b1))
            self.fc2.weight.copy_(torch.tensor(w2)); self.fc2.bias.copy_(torch.tensor(b2))

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


def test_epsilon_rule_by_hand_on_a_tiny_dense_net():
    w1 = [[1.0, -2.0, 0.5], [0.5, 1.0, 1.0]]
    b1 = [0.1, -0.2]
    w2 = [[1.0, 2.0], [-1.0, 0.5]]
    b2 = [0.3, 0.0]
    net = TinyDense(w1, b1, w2, b2).eval()
    x = np.array([1.0, 0.5, 2.0])
    eps = 0.25
    # forward by hand
    z1 = np.array(w1) @ x + b1          # [1.1, 2.8]
    a1 = np.maximum(z1, 0)
    z2 = np.array(w2) @ a1 + b2         # [6.0, 0.3]
    target = 0
    relevance_out = np.array([z2[0], 0.0])  # relevance enters as the target logit

    def stab(z):
        return z + eps * np.where(z >= 0, 1.0, -1.0)

    # epsilon rule: R_j = a_j * sum_k w_kj R_k / (z_k + eps sign z_k)
    relevance_hidden = a1 * (np.array(w2).T @ (relevance_out / stab(z2)))
    relevance_in = x * (np.array(w1).T @ (relevance_hidden / stab(z1)))
    ours = get_attribution("lrp-epsilon", epsilon=eps).attribute(net, torch.tensor(x, dtype=torch.float32).view(1, 1, 1, 3), target)
    np.testing.assert_allclose(ours.view(-1).numpy(), relevance_in, rtol=1e-5, atol=1e-6)
    # and the numbers are not trivial: relevance is lost to the biases and epsilon, but most arrives
    assert 0.5 * z2[0] < relevance_in.sum() < z2[0]


def _zennit_reference(composite, module, inputs, target):
    with Gradient(model=module, composite=composite) as attributor:
        def entered(logits):
            return torch.zeros_like(logits).scatter(1, target.view(-1, 1), logits.gather(1, target.view(-1, 1)))

        _, relevance = attributor(inputs.clone().requires_grad_(True), entered)
    return relevance


@pytest.fixture(scope="module")
def faces():
    torch.manual_seed(3)
    return torch.rand(4, 1, 64, 64)


def test_epsilon_plus_flat_equals_zennits_own_on_the_shipped_fer_cnn(faces):
    model = get_model("fer-cnn")
    assert model.card is not None  # the shipped weights
    module = model.module
    target = module(faces).argmax(dim=1)
    ours = get_attribution("lrp-epsilon-plus-flat").attribute(module, faces, target)
    composite = EpsilonPlusFlat(layer_map=[(Standardise, Pass())], canonizers=[SequentialMergeBatchNorm()])
    reference = _zennit_reference(composite, module, faces, target)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-7)
    assert ours.abs().sum() > 0


def test_alpha_beta_equals_zennits_epsilon_alpha2_beta1_on_fer_cnn(faces):
    module = get_model("fer-cnn").module
    target = torch.tensor([0, 1, 5, 7])
    ours = get_attribution("lrp-alpha-beta").attribute(module, faces, target)
    composite = EpsilonAlpha2Beta1(layer_map=[(Standardise, Pass())], canonizers=[SequentialMergeBatchNorm()])
    torch.testing.assert_close(ours, _zennit_reference(composite, module, faces, target), rtol=1e-5, atol=1e-7)


class BiasFreeResidual(nn.Module):
    """Standardise -> conv -> basic block (identity BN) -> global sum -> linear, no biases: LRP-epsilon conserves."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.standardise = Standardise()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.block = BasicBlock(4, 4)
        self.pool = nn.AvgPool2d(8)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.block(self.relu(self.stem(self.standardise(x)))))))


def test_residual_sum_and_batch_norm_canonizers_conserve_relevance():
    net = BiasFreeResidual().eval()  # fresh BN: running mean 0, var 1, weight 1, bias 0 -> merged bias 0
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    logits = net(x)
    target = logits.argmax(dim=1)
    relevance = get_attribution("lrp-epsilon", epsilon=1e-9).attribute(net, x, target)
    chosen = logits.gather(1, target.view(-1, 1)).view(-1).detach()
    # conservation holds only where every logit path is positive-linear; ReLUs that switch off drop nothing
    torch.testing.assert_close(relevance.flatten(1).sum(dim=1), chosen, rtol=1e-3, atol=1e-5)
    # without the Sum canonizer the gradient of '+' hands both branches the whole relevance
    from zennit.composites import LayerMapComposite, layer_map_base
    from zennit.rules import Epsilon
    from zennit.types import Linear

    plain = LayerMapComposite(layer_map=[(Standardise, Pass())] + layer_map_base(1e-9) + [(Linear, Epsilon(epsilon=1e-9))],
                              canonizers=[SequentialMergeBatchNorm()])
    doubled = _zennit_reference(plain, net, x, target).flatten(1).sum(dim=1)
    assert ((doubled - chosen).abs() > 0.05 * chosen.abs()).all()


def test_unit_projections_conserve_the_peak_activation():
    net = BiasFreeResidual().eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    method = get_attribution("lrp-epsilon", epsilon=1e-9)
    maps = method.attribute_units(net, x, "block", [0, 2])
    assert maps.shape == (2, 2, 1, 8, 8)
    with torch.no_grad():
        activation = net.block(net.relu(net.stem(net.standardise(x))))
    peaks = activation[:, [0, 2]].flatten(2).amax(dim=2)
    torch.testing.assert_close(maps.flatten(2).sum(dim=2), peaks, rtol=1e-3, atol=1e-5)
