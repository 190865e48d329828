"""Completeness: the metric against Captum's own convergence delta, and DeepLIFT after fer-cnn's Standardise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interpret_core import CapabilityError, get_attribution, get_attribution_metric, get_model

import captum.attr as captum_attr  # a core dependency: a missing one must fail, not skip
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fer():
    model = get_model("fer-cnn")
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
    with torch.no_grad():
        targets = model.module(x).argmax(dim=1)
    return model.module, x, targets


def test_completeness_gap_equals_captums_convergence_delta(fer):
    module, x, targets = fer
    method = get_attribution("integrated-gradients", steps=8)
    maps = method.attribute(module, x, targets)
    metric = get_attribution_metric("completeness")
    measured = metric.evaluate(inputs=x, targets=targets, attributions=maps, model=module, method=method)
    violation = measured.scores
    baseline = method.completeness_baseline(x)
    _, delta = captum_attr.IntegratedGradients(module).attribute(
        x, baselines=baseline, target=targets, n_steps=8, internal_batch_size=256, return_convergence_delta=True)
    np.testing.assert_allclose(measured.extras["gap"], delta.double().numpy(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        change = (module(x) - module(baseline)).gather(1, targets.view(-1, 1)).view(-1).double().numpy()
    np.testing.assert_allclose(violation, np.abs(delta.double().numpy()) / np.abs(change), rtol=1e-3, atol=1e-5)


def test_deeplift_after_the_standardisation_nearly_completes(fer):
    module, x, targets = fer
    metric = get_attribution_metric("completeness")
    medians = {}
    for mode in ("after", "through"):
        method = get_attribution("deeplift", input_transform=mode)
        maps = method.attribute(module, x, targets)
        measured = metric.evaluate(inputs=x, targets=targets, attributions=maps, model=module, method=method)
        medians[mode] = float(np.median(measured.scores))
        if mode == "through":
            assert measured.warnings and "deeplift" in measured.warnings[0] and "completeness" in measured.warnings[0]
    assert medians["after"] < 0.25 * medians["through"] and medians["through"] > 0.5, medians
    # the logits the model gives are untouched: the standardisation is skipped only inside DeepLIFT's call
    with torch.no_grad():
        before = module(x)
    get_attribution("deeplift").attribute(module, x, targets)
    with torch.no_grad():
        torch.testing.assert_close(module(x), before, rtol=0, atol=0)


def test_completeness_does_not_apply_to_methods_that_do_not_claim_it(fer):
    module, x, targets = fer
    method = get_attribution("saliency")
    with pytest.raises(CapabilityError) as info:
        get_attribution_metric("completeness")(inputs=x, targets=targets, attributions=method.attribute(module, x, targets),
                                                model=module, method=method)
    assert "saliency" in str(info.value)
    assert not getattr(method, "claims_completeness", False)
    assert get_attribution("integrated-gradients").claims_completeness and get_attribution("lrp-epsilon").claims_completeness
