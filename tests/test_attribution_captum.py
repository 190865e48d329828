"""Captum baselines as plugins, the generic adapter and method specs."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from interpret_core import CapabilityError, UsageError, get_attribution, get_model
from interpret_core.api.errors import UnknownNameError
from interp_attributions.captum_methods import baseline_tensor, default_layer
from interpret_core.registry.options import parse_method_spec
from interpret_core.util.fingerprint import content_seed

import captum.attr as captum_attr  # a core dependency: a missing one must fail, not skip


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return get_model("fer-cnn").module


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.rand(3, 1, 64, 64)


def _get(spec: str):
    name, options = parse_method_spec(spec)
    return get_attribution(name, **options)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_named_plugins_equal_direct_captum_calls(net, x):
    target = torch.tensor([0, 4, 6])
    blur = baseline_tensor("blur", x)
    cases = {
        "saliency": lambda: captum_attr.Saliency(net).attribute(x, target=target, abs=True),
        "input-x-gradient": lambda: captum_attr.InputXGradient(net).attribute(x, target=target),
        "integrated-gradients": lambda: captum_attr.IntegratedGradients(net).attribute(
            x, baselines=blur, target=target, n_steps=32, internal_batch_size=256
        ),
        "deeplift:input_transform=through": lambda: captum_attr.DeepLift(net).attribute(x, baselines=blur, target=target),
        "occlusion:window=16,stride=16": lambda: captum_attr.Occlusion(net).attribute(
            x, sliding_window_shapes=(1, 16, 16), strides=(1, 16, 16), target=target,
            baselines=x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), perturbations_per_eval=16,
        ),
        "guided-grad-cam": lambda: captum_attr.GuidedGradCam(net, net.conv3).attribute(
            x, target=target, interpolate_mode="bilinear"
        ),
    }
    for spec, reference in cases.items():
        name, options = parse_method_spec(spec)
        ours = get_attribution(name, **options).attribute(net, x, target)
        expected = _quiet(reference)
        assert ours.shape == x.shape
        assert expected.abs().max() > 0, spec
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-4, msg=spec)


def test_deeplift_explains_the_net_after_its_standardisation(net, x):
    import copy

    target = torch.tensor([0, 4, 6])
    after = copy.deepcopy(net)
    after.standardise = torch.nn.Identity()  # the rest of the network, fed standardised images
    standardise = net.standardise
    expected = _quiet(captum_attr.DeepLift(after).attribute, standardise(x), baselines=standardise(baseline_tensor("blur", x)),
                      target=target)
    torch.testing.assert_close(get_attribution("deeplift").attribute(net, x, target), expected, atol=1e-6, rtol=1e-4)


def test_grad_cam_defaults_to_the_last_rectified_block_and_upsamples(net, x):
    # conv3 = Sequential(Conv2d, ReLU): the block's rectified output, not the pre-ReLU conv3.0.
    assert default_layer(net, x) == "conv3"
    ours = get_attribution("grad-cam").attribute(net, x, 2)
    cam = _quiet(captum_attr.LayerGradCam(net, net.conv3).attribute, x, target=2, relu_attributions=True)
    expected = F.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, expected)
    assert (ours >= 0).all()
    other = get_attribution("grad-cam", layer="conv2.0").attribute(net, x, 2)
    assert other.shape == x.shape and not torch.allclose(other, ours)
    assert not get_attribution("grad-cam").signed


def test_generic_adapter_and_noise_tunnel(net, x):
    name, options = parse_method_spec("captum:NoiseTunnel(Saliency),nt_samples=3,stdevs=0.05,abs=false")
    method = get_attribution(name, **options)
    ours = method.attribute(net, x, 1)
    torch.manual_seed(content_seed(x.numpy().tobytes(), 0))  # the draws interp seeds from the batch's bytes
    expected = _quiet(
        captum_attr.NoiseTunnel(captum_attr.Saliency(net)).attribute,
        x, target=1, nt_type="smoothgrad", nt_samples=3, stdevs=0.05, abs=False,
    )
    torch.testing.assert_close(ours, expected)
    assert method.signed  # abs=false
    assert not get_attribution("captum", algorithm="Saliency").signed  # Captum's default abs=True
    ig = _get("captum:IntegratedGradients")
    assert ig.multiplies_by_inputs and ig.attr_options["n_steps"] == 32  # face defaults apply
    # A layer method is summed over channels and upsampled to the input.
    cond = _get("captum:LayerConductance,layer=conv2,steps=4").attribute(net, x, 0)
    assert cond.shape == x.shape


@pytest.mark.parametrize("spec", [
    "captum:NoiseTunnel(Saliency),nt_samples=3",  # torch's generator
    "captum:GradientShap,n_samples=3",  # numpy's (interpolation points) and torch's (noise)
    "captum:ShapleyValueSampling,n_samples=1,feature_mask=patches",  # torch's (permutations)
])
def test_random_captum_methods_are_seeded_by_seed_and_the_batch_and_leave_the_global_generators_alone(net, x, spec):
    import random

    import numpy as np

    method = _get(spec)
    first = _quiet(method.attribute, net, x, 2)
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    again = _quiet(method.attribute, net, x, 2)  # other global states: the same draws
    assert torch.equal(first, again)
    assert torch.equal(states[0], torch.get_rng_state()) and np.array_equal(states[1], np.random.get_state()[1])
    assert states[2] == random.getstate()
    other_seed = _quiet(_get(spec + ",seed=1").attribute, net, x, 2)
    assert not torch.equal(first, other_seed)
    # per batch: the first image alone draws other noise than in the batch of three
    assert not torch.equal(_quiet(method.attribute, net, x[:1], 2)[0], first[0])


def test_a_captum_seed_must_be_an_integer():
    with pytest.raises(UsageError, match="seed must be an integer"):
        _get("captum:NoiseTunnel(Saliency),seed=abc")


def test_adapter_neuron_methods_project_units(net, x):
    method = get_attribution("captum", algorithm="NeuronDeconvolution")
    assert method.supports_units
    ours = method.attribute_units(net, x, "conv2", [1, 2])
    fast = get_attribution("deconv").attribute_units(net, x, "conv2", [1, 2])
    torch.testing.assert_close(ours, fast, atol=1e-6, rtol=1e-4)
    with pytest.raises(CapabilityError, match="neurons"):
        method.attribute(net, x, 0)


def test_adapter_errors(net, x):
    with pytest.raises(UsageError, match="no attribution class 'Salency'") as info:
        get_attribution("captum", algorithm="Salency")
    assert "Saliency" in info.value.hint
    with pytest.raises(UsageError, match="unknown option"):
        get_attribution("integrated-gradients", stepz=3)
    with pytest.raises(UsageError, match="needs algorithm"):
        get_attribution("captum")
    with pytest.raises(UsageError, match="takes no layer"):
        get_attribution("saliency", layer="conv1")
    with pytest.raises(UsageError, match="unknown baseline"):
        get_attribution("integrated-gradients", baseline="purple").attribute(net, x, 0)
    with pytest.raises(CapabilityError, match="cannot project units"):
        get_attribution("saliency").attribute_units(net, x, "conv1", [0])
    with pytest.raises(UnknownNameError):
        _get("deconvolution")


def test_baselines(x):
    blur = baseline_tensor("blur", x)
    assert blur.shape == x.shape
    assert blur.std() < x.std() / 3  # detail removed
    assert abs(float(blur.mean() - x.mean())) < 0.02  # brightness kept
    assert torch.equal(baseline_tensor("zero", x), torch.zeros_like(x))
    assert torch.allclose(baseline_tensor(0.5, x), torch.full_like(x, 0.5))
    assert torch.allclose(baseline_tensor("mean", x)[1], x[1].mean().expand_as(x[1]))
