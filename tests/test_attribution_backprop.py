"""Deconvnet and guided backprop against Captum, hooks, crops and refusals."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interpret_core import CapabilityError, UsageError, get_attribution, get_model

import captum.attr as captum_attr  # a core dependency: a missing one must fail, not skip

CAPTUM_UNIT = {"deconv": "NeuronDeconvolution", "guided-backprop": "NeuronGuidedBackprop"}
CAPTUM_CLASS = {"deconv": "Deconvolution", "guided-backprop": "GuidedBackprop"}
METHODS = ("deconv", "guided-backprop")


def _normalised(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its own maximum absolute value (the comparison the issue asks for)."""
    flat = maps.flatten(start_dim=-3)
    return flat / flat.abs().amax(dim=-1, keepdim=True).clamp_min(1e-30)


def _captum_units(method: str, net: nn.Module, x: torch.Tensor, layer: str, units) -> torch.Tensor:
    cls = getattr(captum_attr, CAPTUM_UNIT[method])
    reference = cls(net, dict(net.named_modules())[layer])
    maps = []
    for unit in units:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps.append(
                reference.attribute(x, neuron_selector=lambda out, u=unit: out[:, u].flatten(1).max(dim=1).values)
            )
    return torch.stack(maps, dim=1)


def _assert_matches_captum_units(method: str, net: nn.Module, x: torch.Tensor, layer: str, units, **options):
    ours = get_attribution(method, **options).attribute_units(net, x, layer, units)
    assert ours.shape == (x.shape[0], len(units), *x.shape[1:])
    reference = _captum_units(method, net, x, layer, units)
    assert reference.abs().amax() > 0  # the comparison is not between two zero maps
    torch.testing.assert_close(_normalised(ours), _normalised(reference), atol=1e-5, rtol=1e-4)


def _active_units(net: nn.Module, x: torch.Tensor, layer: str, count: int) -> list[int]:
    """A spread of units that fire on ``x`` (dead units of a trained net give all-zero maps)."""
    from interpret_core.nn.hooks import capture_outputs

    with torch.no_grad(), capture_outputs(net, [layer]) as captured:
        net(x)
    peaks = captured[layer].flatten(2).amax(dim=2).amin(dim=0)  # weakest image's maximum, per unit
    active = [int(u) for u in torch.nonzero(peaks > 0).flatten()]
    step = max(1, len(active) // count)
    return active[::step][:count]


def _assert_matches_captum_class(method: str, net: nn.Module, x: torch.Tensor, target):
    ours = get_attribution(method).attribute(net, x, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = getattr(captum_attr, CAPTUM_CLASS[method])(net).attribute(x, target=target)
    assert ours.shape == x.shape
    assert reference.abs().amax() > 0
    torch.testing.assert_close(_normalised(ours), _normalised(reference), atol=1e-5, rtol=1e-4)


# -- small nets -----------------------------------------------------------------------
class InplaceNet(nn.Module):
    """In-place ReLUs, one ReLU module reused after every conv, odd strides and padding."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.relu = nn.ReLU(inplace=True)  # reused three times
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.relu(self.conv2(x))
        x = self.pool2(self.relu(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 4), 1))


def _inplace_sequential() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
    )


class FunctionalReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.relu(self.conv(x))
        x = torch.relu(self.conv2(x))  # hidden from module hooks
        return self.fc(x.mean(dim=(2, 3)))


class NoReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).clamp(min=0).mean(dim=(2, 3)))


class GlobalNormNet(nn.Module):
    """Subtracts the image mean inside the net: crops cannot reproduce it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = x - x.mean(dim=(2, 3), keepdim=True)
        return self.relu2(self.conv2(x)).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def faces():
    torch.manual_seed(0)
    return torch.rand(5, 1, 64, 64)


@pytest.fixture(scope="module")
def fer_cnn():
    return get_model("fer-cnn").module


@pytest.fixture(scope="module")
def fer_resnet():
    model = get_model("fer-resnet")
    torch.manual_seed(1)
    # Non-trivial batch-norm statistics, so eval-mode BN is not the identity.
    with torch.no_grad():
        for m in model.module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model.module.eval()


# -- agreement with Captum ---------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3", "conv2.0"])
def test_units_match_captum_on_fer_cnn(method, layer, fer_cnn, faces):
    units = _active_units(fer_cnn, faces, layer, 3)
    assert len(units) == 3
    _assert_matches_captum_units(method, fer_cnn, faces, layer, units)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", ["stem", "layer1", "layer2", "layer3.0.conv1"])
def test_units_match_captum_on_fer_resnet(method, layer, fer_resnet, faces):
    units = _active_units(fer_resnet, faces, layer, 2)
    assert len(units) == 2
    _assert_matches_captum_units(method, fer_resnet, faces, layer, units)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_units_match_captum_with_inplace_reused_relu(method, layer):
    torch.manual_seed(2)
    net = InplaceNet().eval()
    x = torch.rand(3, 1, 36, 40)
    _assert_matches_captum_units(method, net, x, layer, [0, 3, 5])


def test_a_reused_layer_module_is_ambiguous():
    with pytest.raises(UsageError, match="called 3 times"):
        get_attribution("deconv").attribute_units(InplaceNet().eval(), torch.rand(1, 1, 36, 40), "relu", [0])


@pytest.mark.parametrize("method", METHODS)
def test_units_match_captum_on_inplace_sequential(method):
    torch.manual_seed(3)
    net = _inplace_sequential().eval()
    x = torch.rand(4, 1, 30, 30)
    for layer in ("1", "3", "7"):
        _assert_matches_captum_units(method, net, x, layer, [0, 2])


@pytest.mark.parametrize("method", METHODS)
def test_class_level_matches_captum(method, fer_cnn, fer_resnet, faces):
    targets = torch.tensor([0, 3, 5, 7, 1])
    _assert_matches_captum_class(method, fer_cnn, faces, targets)
    _assert_matches_captum_class(method, fer_resnet, faces, 4)
    torch.manual_seed(4)
    _assert_matches_captum_class(method, InplaceNet().eval(), torch.rand(3, 1, 36, 40), 2)


# -- the two rules really differ, and behave as the papers say --------------------------------
def test_rules_differ_and_projections_stay_in_the_receptive_field(fer_cnn, faces):
    from interpret_core.nn.receptive_field import receptive_field

    unit = _active_units(fer_cnn, faces, "conv3", 1)
    deconv = get_attribution("deconv").attribute_units(fer_cnn, faces, "conv3", unit)
    guided = get_attribution("guided-backprop").attribute_units(fer_cnn, faces, "conv3", unit)
    assert not torch.allclose(_normalised(deconv), _normalised(guided))
    # On a net without global preprocessing, a projection is exactly zero
    # outside the receptive field of the argmax.
    torch.manual_seed(9)
    net = InplaceNet().eval()
    x = torch.rand(2, 1, 36, 40)
    field = receptive_field(net, "conv3", (1, 36, 40))
    maps = get_attribution("deconv").attribute_units(net, x, "conv3", [1])
    with torch.no_grad():
        from interpret_core.nn.hooks import capture_outputs

        with capture_outputs(net, ["conv3"]) as captured:
            net(x)
    for n in range(2):
        flat = int(captured["conv3"][n, 1].flatten().argmax())
        y0, y1, x0, x1 = field.box(*divmod(flat, captured["conv3"].shape[-1]))
        inside = torch.zeros(36, 40, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert maps[n, 0, 0][~inside].abs().max() == 0 and maps[n, 0, 0][inside].abs().max() > 0


# -- crops, chunks, scale --------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_crops_and_chunks_give_the_same_numbers(method, fer_cnn, faces):
    x = faces[:3]
    units = [0, 4, 9, 30]
    whole = get_attribution(method, crop=False).attribute_units(fer_cnn, x, "conv2", units)
    for options in ({}, {"max_batch": 1}, {"max_batch": 5}, {"max_memory_mb": 0.05}):
        cropped = get_attribution(method, **options).attribute_units(fer_cnn, x, "conv2", units)
        torch.testing.assert_close(cropped, whole, atol=1e-6, rtol=1e-5)
    assert whole.shape == (3, 4, 1, 64, 64)
    everything = get_attribution(method).attribute_units(fer_cnn, x, "conv2", None)
    assert everything.shape == (3, 32, 1, 64, 64)
    torch.testing.assert_close(everything[:, units], whole, atol=1e-6, rtol=1e-5)


def test_crops_on_odd_sizes_stride_two_and_reflect_padding():
    torch.manual_seed(5)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
    ).eval()
    x = torch.rand(3, 1, 75, 61)
    for layer in ("1", "3", "6"):
        for method in METHODS:
            whole = get_attribution(method, crop=False).attribute_units(net, x, layer, None)
            cropped = get_attribution(method).attribute_units(net, x, layer, None)
            torch.testing.assert_close(cropped, whole, atol=1e-6, rtol=1e-5)


def test_non_local_net_falls_back_to_whole_images():
    torch.manual_seed(6)
    net = GlobalNormNet().eval()
    x = torch.rand(2, 1, 40, 40)
    whole = get_attribution("deconv", crop=False).attribute_units(net, x, "relu2", [0, 1])
    cropped = get_attribution("deconv").attribute_units(net, x, "relu2", [0, 1])
    torch.testing.assert_close(cropped, whole)
    _assert_matches_captum_units("deconv", net, x, "relu2", [0, 1])


class StandardisedNet(nn.Module):
    """Per-image standardisation before the first conv (non-local), then a local conv net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x))))).amax(dim=(2, 3))


@pytest.mark.parametrize("method", METHODS)
def test_preprocessing_before_the_first_conv_keeps_the_crop_path(method, monkeypatch):
    import interp_attributions._rectifier as rectifier

    torch.manual_seed(8)
    net = StandardisedNet().eval()
    x = torch.rand(3, 1, 32, 32)
    whole = get_attribution(method, crop=False).attribute_units(net, x, "relu2", None)

    def no_fallback(*args, **kwargs):
        raise AssertionError("fell back to whole images")

    monkeypatch.setattr(rectifier, "_project_whole_images", no_fallback)
    cropped = get_attribution(method, max_batch=5).attribute_units(net, x, "relu2", None)
    torch.testing.assert_close(cropped, whole, atol=1e-6, rtol=1e-5)
    # The gradient through the standardisation reaches every pixel, as Captum's does.
    assert (cropped[0, 0, 0] != 0).float().mean() > 0.9
    monkeypatch.undo()
    _assert_matches_captum_units(method, net, x, "relu2", [0, 5])


def test_scale_activation_multiplies_by_the_maximum(fer_cnn, faces):
    units = _active_units(fer_cnn, faces, "conv1", 2)
    one = get_attribution("deconv").attribute_units(fer_cnn, faces, "conv1", units)
    scaled = get_attribution("deconv", scale="activation").attribute_units(fer_cnn, faces, "conv1", units)
    from interpret_core.nn.hooks import capture_outputs

    with torch.no_grad(), capture_outputs(fer_cnn, ["conv1"]) as captured:
        fer_cnn(faces)
    peak = captured["conv1"][:, units].flatten(2).amax(2)
    assert (peak > 0).all()
    torch.testing.assert_close(scaled, one * peak[:, :, None, None, None], atol=1e-6, rtol=1e-5)


# -- hooks are always removed -----------------------------------------------------------------
def _hook_count(net: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in net.modules()
    )


@pytest.mark.parametrize("rule,hooks", [("deconv", 2), ("guided", 1)])
def test_rule_context_restores_the_model_after_an_error(rule, hooks):
    from interp_attributions._rectifier import rectifier_rules

    torch.manual_seed(7)
    net = InplaceNet().eval()
    x = torch.rand(2, 1, 36, 40)
    before = net(x)
    with pytest.raises(RuntimeError, match="boom"):
        with rectifier_rules(net, rule) as count:
            assert count == 1 and _hook_count(net) == hooks
            net(x.requires_grad_(True))  # hooks fire mid-forward, then the body fails
            raise RuntimeError("boom")
    assert _hook_count(net) == 0
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)


def test_attribute_restores_the_model_when_the_forward_fails():
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.relu = nn.ReLU(inplace=True)
            self.armed = False

        def forward(self, x):
            x = self.relu(self.conv(x))
            if self.armed:
                raise RuntimeError("exploded")
            return x.mean(dim=(2, 3))

    net = Exploding().eval()
    x = torch.rand(2, 1, 8, 8)
    before = net(x)
    method = get_attribution("deconv", check=False)
    net.armed = True
    with pytest.raises(RuntimeError, match="exploded"):
        method.attribute(net, x, 0)
    net.armed = False
    assert _hook_count(net) == 0
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)
    # A successful call leaves no hooks either.
    method.attribute(net, x, 1)
    method.attribute_units(net, x, "conv", [0, 1])
    assert _hook_count(net) == 0


# -- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_hidden_rectifications_are_refused(method):
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(CapabilityError, match="FunctionalReluNet.*relu") as info:
        get_attribution(method).attribute(FunctionalReluNet().eval(), x, 0)
    assert "nn.ReLU" in info.value.hint
    with pytest.raises(CapabilityError, match="NoReluNet has no nn.ReLU"):
        get_attribution(method).attribute_units(NoReluNet().eval(), x, "conv", [0])
    relu6 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU6(), nn.Conv2d(2, 2, 3), nn.ReLU(), nn.Flatten()).eval()
    with pytest.raises(CapabilityError, match=r"hardtanh\(\) in '1' \(ReLU6\)"):
        get_attribution(method).attribute(relu6, x, 0)
    # The probe leaves no hooks behind either.
    assert _hook_count(relu6) == 0


def test_bad_layer_units_and_targets(fer_cnn, faces):
    method = get_attribution("deconv")
    with pytest.raises(UsageError, match="no layer"):
        method.attribute_units(fer_cnn, faces, "conv9", [0])
    with pytest.raises(UsageError, match="not a feature map"):
        method.attribute_units(fer_cnn, faces, "fc1", [0])
    with pytest.raises(UsageError, match="out of range"):
        method.attribute_units(fer_cnn, faces, "conv1", [16])
    with pytest.raises(UsageError, match="out of range"):
        method.attribute(fer_cnn, faces, 8)
    with pytest.raises(UsageError, match="max_batch"):
        get_attribution("deconv", max_batch=0)
    with pytest.raises(UsageError, match="does not take"):
        get_attribution("guided-backprop", steps=3)


def test_flags_and_string_options():
    for name in METHODS:
        cls = type(get_attribution(name))
        assert cls.supports_units and cls.signed and not cls.multiplies_by_inputs
    # Options typed on the command line arrive as strings.
    method = get_attribution("deconv", crop="false", max_batch="12", scale="activation")
    assert (method.crop, method.max_batch, method.scale) == (False, 12, "activation")
    with pytest.raises(UsageError, match="true or false"):
        get_attribution("deconv", crop="maybe")


def test_training_mode_warns():
    net = _inplace_sequential().train()
    with pytest.warns(UserWarning, match="training mode"):
        get_attribution("deconv").attribute(net, torch.rand(2, 1, 16, 16), 0)


def test_plugin_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import interp_attributions.plugin, interp_attributions.backprop\n"
        "import interp_attributions.captum_methods, interpret_core.registry.options\n"
        "import interpret_core.nn.receptive_field, interpret_core.workflows.visualize\n"
        "import interpret_core.cli.visualize_cmd\n"
        "assert 'torch' not in sys.modules and 'captum' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- chosen (image, unit) pairs ------------------------------------------------------------
def _one_at_a_time(method, net, x, layer, images, units, **options) -> torch.Tensor:
    """Each pair on its own: one attribute_units call per (image, unit)."""
    attribution = get_attribution(method, **options)
    return torch.stack([attribution.attribute_units(net, x[i : i + 1], layer, [u])[0, 0] for i, u in zip(images, units)])


def _scan_starts(net, x, layer, images, units):
    """What a unit scan keeps: each unit's argmax cell and maximum per image."""
    from interpret_core.nn.hooks import capture_outputs

    with torch.no_grad(), capture_outputs(net, [layer]) as captured:
        net(x)
    out = captured[layer]
    value, flat = out[images, units].flatten(1).max(dim=1)
    return flat // out.shape[-1], flat % out.shape[-1], value


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_chosen_pairs_equal_one_unit_at_a_time(method, layer, fer_cnn, faces):
    # Repeated images and units, in no order, as the AU localiser asks for them.
    images = [3, 0, 0, 4, 1, 3, 2, 2]
    units = [5, 1, 7, 5, 0, 2, 7, 12]
    alone = _one_at_a_time(method, fer_cnn, faces, layer, images, units)
    assert alone.abs().amax() > 0
    attribution = get_attribution(method)
    torch.testing.assert_close(attribution.attribute_unit_pairs(fer_cnn, faces, layer, images, units), alone,
                               atol=1e-6, rtol=1e-5)
    starts = _scan_starts(fer_cnn, faces, layer, images, units)
    torch.testing.assert_close(attribution.attribute_unit_pairs(fer_cnn, faces, layer, images, units, starts), alone,
                               atol=1e-6, rtol=1e-5)
    small = get_attribution(method, max_batch=3).attribute_unit_pairs(fer_cnn, faces, layer, images, units, starts)
    torch.testing.assert_close(small, alone, atol=1e-6, rtol=1e-5)
    scaled = get_attribution(method, scale="activation").attribute_unit_pairs(fer_cnn, faces, layer, images, units, starts)
    torch.testing.assert_close(scaled, _one_at_a_time(method, fer_cnn, faces, layer, images, units, scale="activation"),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_chosen_pairs_on_whole_images_and_non_local_nets(method, monkeypatch):
    import interp_attributions._rectifier as rectifier

    torch.manual_seed(7)
    x = torch.rand(3, 1, 40, 40)
    images, units = [2, 0, 2, 1], [1, 3, 0, 1]
    net = GlobalNormNet().eval()  # crops cannot reproduce it: falls back to whole images
    alone = _one_at_a_time(method, net, x, "relu2", images, units, crop=False)
    for options in ({}, {"crop": False}, {"max_batch": 1}):
        pairs = get_attribution(method, **options).attribute_unit_pairs(net, x, "relu2", images, units)
        torch.testing.assert_close(pairs, alone, atol=1e-6, rtol=1e-5)
    # A local net with starts given never runs whole images through the network.
    net = StandardisedNet().eval()
    starts = _scan_starts(net, x, "relu2", images, units)
    alone = _one_at_a_time(method, net, x, "relu2", images, units)

    def no_fallback(*args, **kwargs):
        raise AssertionError("fell back to whole images")

    monkeypatch.setattr(rectifier, "_project_whole_images", no_fallback)
    pairs = get_attribution(method).attribute_unit_pairs(net, x, "relu2", images, units, starts)
    torch.testing.assert_close(pairs, alone, atol=1e-6, rtol=1e-5)


def test_chosen_pairs_refuse_bad_indices_and_starts(fer_cnn, faces):
    method = get_attribution("deconv")
    assert method.attribute_unit_pairs(fer_cnn, faces, "conv2", [], []).shape == (0, 1, 64, 64)
    with pytest.raises(UsageError, match="one image per unit"):
        method.attribute_unit_pairs(fer_cnn, faces, "conv2", [0, 1], [0])
    with pytest.raises(UsageError, match="image indices"):
        method.attribute_unit_pairs(fer_cnn, faces, "conv2", [5], [0])
    with pytest.raises(UsageError, match="out of range"):
        method.attribute_unit_pairs(fer_cnn, faces, "conv2", [0], [32])
    with pytest.raises(UsageError, match="grid"):
        method.attribute_unit_pairs(fer_cnn, faces, "conv2", [0], [0], (torch.tensor([32]), torch.tensor([0]), torch.tensor([1.0])))
    with pytest.raises(UsageError, match="one per pair"):
        method.attribute_unit_pairs(fer_cnn, faces, "conv2", [0], [0], ([0, 1], [0, 1], [1.0, 1.0]))


def test_the_interface_default_projects_pairs_through_attribute_units(fer_cnn, faces):
    # A method without its own pair projection (the Captum adapter) gets the base class's.
    from interpret_core.api.interfaces import Attribution

    method = get_attribution("captum", algorithm="NeuronDeconvolution")
    assert type(method).attribute_unit_pairs is Attribution.attribute_unit_pairs
    images, units = [1, 0, 1], [4, 4, 9]
    pairs = method.attribute_unit_pairs(fer_cnn, faces, "conv2", images, units)
    alone = torch.stack([method.attribute_units(fer_cnn, faces[i : i + 1], "conv2", [u])[0, 0] for i, u in zip(images, units)])
    assert alone.abs().amax() > 0
    torch.testing.assert_close(pairs, alone)
