"""Attribution metrics of ``interp bench``: hand-computed cases and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from torch import nn

import interpret_core
from interpret_core import UsageError, get_attribution, get_attribution_metric

torch.set_num_threads(1)


def _call(metric, attributions, masks=None, inputs=None, targets=None, model=None, method=None, evaluate=False):
    attributions = torch.as_tensor(attributions, dtype=torch.float32)
    if attributions.ndim == 3:
        attributions = attributions[:, None]
    n = attributions.shape[0]
    inputs = torch.zeros_like(attributions) if inputs is None else inputs
    targets = torch.zeros(n, dtype=torch.int64) if targets is None else targets
    masks = None if masks is None else torch.as_tensor(masks, dtype=torch.bool)
    score = metric.evaluate if evaluate else metric  # evaluate: the whole MetricResult; calling: the scores
    return score(inputs=inputs, targets=targets, attributions=attributions, masks=masks, model=model, method=method)


def _box(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


# -- registration and options ----------------------------------------------------------
def test_metrics_and_baselines_are_registered_with_directions():
    expected = {
        "au-pointing-game": True, "au-relevance-mass": True, "au-relevance-rank": True,
        "deletion": False, "insertion": True, "randomization": False, "class-sensitivity": False,
    }
    for name, higher in expected.items():
        metric = get_attribution_metric(name)
        assert metric.higher_is_better is higher, name
        assert isinstance(metric, interpret_core.AttributionMetric)
    assert get_attribution_metric("au-pointing-game").needs_masks
    assert get_attribution_metric("randomization").needs_method
    for name in ("centre-gaussian", "random-map"):
        assert isinstance(get_attribution(name), interpret_core.Attribution)


@pytest.mark.parametrize(
    "name, options",
    [("au-pointing-game", {"tolerance": -1}), ("deletion", {"baseline": "noise"}), ("insertion", {"steps": 0}),
     ("au-relevance-mass", {"saliency": "signed"}), ("class-sensitivity", {"other": "third"}),
     ("deletion", {"colour": "red"}), ("randomization", {"layers": 1.5}), ("au-relevance-rank", {"tolerance": 2})],
)
def test_bad_options_are_usage_errors_naming_the_metric(name, options):
    with pytest.raises(UsageError) as info:
        get_attribution_metric(name, **options)
    assert name in str(info.value)


def test_metric_needs_are_enforced():
    with pytest.raises(interpret_core.CapabilityError):
        _call(get_attribution_metric("au-pointing-game"), np.ones((1, 4, 4)))


# -- localisation ---------------------------------------------------------------------------
def test_pointing_game_inside_outside_and_tolerance():
    mask = _box((8, 8), slice(0, 3), slice(0, 3))  # rows/cols 0..2
    inside = np.zeros((8, 8)); inside[1, 1] = 5.0
    outside = np.zeros((8, 8)); outside[6, 6] = 5.0
    near = np.zeros((8, 8)); near[2, 5] = 5.0  # 3 px right of column 2: distance 3
    diagonal = np.zeros((8, 8)); diagonal[4, 4] = 5.0  # distance sqrt(8) = 2.83 from (2, 2)
    maps = np.stack([inside, outside, near, diagonal])
    masks = np.stack([mask] * 4)
    strict = _call(get_attribution_metric("au-pointing-game", tolerance=0), maps, masks)
    np.testing.assert_array_equal(strict, [1, 0, 0, 0])
    np.testing.assert_array_equal(_call(get_attribution_metric("au-pointing-game", tolerance=2.9), maps, masks), [1, 0, 0, 1])
    np.testing.assert_array_equal(_call(get_attribution_metric("au-pointing-game", tolerance=3), maps, masks), [1, 0, 1, 1])


def test_pointing_game_uses_absolute_values_by_default_and_signed_on_request():
    mask = _box((6, 6), slice(0, 2), slice(0, 2))
    attribution = np.zeros((1, 6, 6)); attribution[0, 0, 0] = -9.0; attribution[0, 5, 5] = 1.0
    assert _call(get_attribution_metric("au-pointing-game", tolerance=0), attribution, mask[None])[0] == 1
    assert _call(get_attribution_metric("au-pointing-game", tolerance=0, saliency="signed"), attribution, mask[None])[0] == 0


def test_constant_maps_and_empty_masks_are_undefined():
    mask = _box((4, 4), slice(0, 4), slice(0, 4))
    empty = np.zeros((4, 4), dtype=bool)
    maps = np.stack([np.ones((4, 4)), np.arange(16.0).reshape(4, 4), np.arange(16.0).reshape(4, 4)])
    for name in ("au-pointing-game", "au-relevance-mass", "au-relevance-rank"):
        options = {"tolerance": 0} if name == "au-pointing-game" else {}
        metric = get_attribution_metric(name, **options)
        measured = _call(metric, maps, np.stack([mask, empty, mask]), evaluate=True)
        scores = measured.scores
        assert math.isnan(scores[0]) and math.isnan(scores[1]) and np.isfinite(scores[2]), name
        np.testing.assert_array_equal(measured.undefined, [True, True, False])


def test_relevance_mass_exact_fractions():
    mask = _box((4, 4), slice(0, 2), slice(0, 2))
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[1, 1] = 2.0, 1.0  # inside: 3
    attribution[3, 3] = 1.0  # outside positive: 1
    attribution[3, 0] = -5.0  # outside negative
    positive = _call(get_attribution_metric("au-relevance-mass"), attribution[None], mask[None])
    assert positive[0] == pytest.approx(3 / 4)
    absolute = _call(get_attribution_metric("au-relevance-mass", saliency="abs"), attribution[None], mask[None])
    assert absolute[0] == pytest.approx(3 / 9)


def test_relevance_rank_exact_fractions():
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[0, 1] = mask[2, 2] = True  # K = 3
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[3, 3], attribution[2, 2], attribution[0, 1] = 9, 8, 7, 1
    # top 3 by |value|: (0,0) in, (3,3) out, (2,2) in -> 2/3
    assert _call(get_attribution_metric("au-relevance-rank"), attribution[None], mask[None])[0] == pytest.approx(2 / 3)
    attribution[3, 3] = -8  # signed ranking pushes it last: top 3 = (0,0),(2,2),(0,1) -> 1
    signed = _call(get_attribution_metric("au-relevance-rank", saliency="signed"), attribution[None], mask[None])
    assert signed[0] == pytest.approx(1.0)


def test_batching_does_not_change_scores():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(7, 8, 8))
    masks = rng.random((7, 8, 8)) > 0.6
    for name in ("au-pointing-game", "au-relevance-mass", "au-relevance-rank"):
        options = {"tolerance": 1.5} if name == "au-pointing-game" else {}
        whole = _call(get_attribution_metric(name, **options), maps, masks)
        metric = get_attribution_metric(name, **options)
        metric.batch_size = 2
        np.testing.assert_array_equal(_call(metric, maps, masks), whole)


# -- deletion / insertion against a linear model ---------------------------------------
class TwoClassLinear(nn.Module):
    """logits = [w . x, 0], so p(class 0) = sigmoid(w . x)."""

    def __init__(self, weights):
        super().__init__()
        self.weights = nn.Parameter(torch.as_tensor(weights, dtype=torch.float32).reshape(-1))

    def forward(self, x):
        logit = x.reshape(x.shape[0], -1) @ self.weights
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


def test_deletion_and_insertion_auc_are_analytic_on_a_linear_model():
    # 2x2 image of ones, weights 4,3,2,1; the map ranks pixels by weight.
    model = TwoClassLinear([4.0, 3.0, 2.0, 1.0])
    inputs = torch.ones(1, 1, 2, 2)
    attributions = torch.tensor([4.0, 3.0, 2.0, 1.0]).reshape(1, 1, 2, 2)
    targets = torch.tensor([0])
    # Deletion to black, one pixel per step: logits 10, 6, 3, 1, 0.
    p = [_sigmoid(z) for z in (10, 6, 3, 1, 0)]
    expected_deletion = (p[0] / 2 + p[1] + p[2] + p[3] + p[4] / 2) / 4
    # Insertion from black: logits 0, 4, 7, 9, 10.
    q = [_sigmoid(z) for z in (0, 4, 7, 9, 10)]
    expected_insertion = (q[0] / 2 + q[1] + q[2] + q[3] + q[4] / 2) / 4
    kwargs = dict(inputs=inputs, targets=targets, attributions=attributions, model=model)
    deletion = get_attribution_metric("deletion", steps=4, baseline="zero")(**kwargs)
    insertion = get_attribution_metric("insertion", steps=4, baseline="zero")(**kwargs)
    assert deletion[0] == pytest.approx(expected_deletion, rel=1e-6)
    assert insertion[0] == pytest.approx(expected_insertion, rel=1e-6)
    # Two pixels per step: logits 10, 3, 0 -> trapezoid with spacing 1/2.
    two = get_attribution_metric("deletion", steps=2, baseline="zero")(**kwargs)
    assert two[0] == pytest.approx((p[0] / 2 + p[2] + p[4] / 2) / 2, rel=1e-6)


def test_deletion_mean_baseline_and_class_one_target():
    # Pixels 1, 3, 0, 2 (mean 1.5); weights 1, -1, 2, 0.5; explain class 1 (p = 1 - sigmoid(w.x)).
    model = TwoClassLinear([1.0, -1.0, 2.0, 0.5])
    x = torch.tensor([1.0, 3.0, 0.0, 2.0]).reshape(1, 1, 2, 2)
    attributions = torch.tensor([0.5, 4.0, 1.0, 3.0]).reshape(1, 1, 2, 2)  # order: px1, px3, px2, px0
    logits = []
    pixels = [1.0, 3.0, 0.0, 2.0]
    weights = [1.0, -1.0, 2.0, 0.5]
    for removed in ([], [1], [1, 3], [1, 3, 2], [1, 3, 2, 0]):
        values = [1.5 if i in removed else pixels[i] for i in range(4)]
        logits.append(sum(w * v for w, v in zip(weights, values)))
    p = [1 - _sigmoid(z) for z in logits]
    expected = (p[0] / 2 + p[1] + p[2] + p[3] + p[4] / 2) / 4
    score = get_attribution_metric("deletion", steps=4, baseline="mean")(
        inputs=x, targets=torch.tensor([1]), attributions=attributions, model=model
    )
    assert score[0] == pytest.approx(expected, rel=1e-6)


def test_perturbation_is_batched_consistently():
    torch.manual_seed(0)
    model = TwoClassLinear(torch.randn(64))
    inputs = torch.rand(5, 1, 8, 8)
    attributions = torch.randn(5, 1, 8, 8)
    targets = torch.tensor([0, 1, 0, 1, 1])
    kwargs = dict(inputs=inputs, targets=targets, attributions=attributions, model=model)
    reference = get_attribution_metric("insertion", steps=8, sigma=1.0)(**kwargs)
    small = get_attribution_metric("insertion", steps=8, sigma=1.0, forward_batch=3)
    small.batch_size = 2
    np.testing.assert_allclose(small(**kwargs), reference, rtol=1e-6)


def test_blur_baseline_matches_scipy_gaussian_filter():
    from interp_metrics.attribution_metrics.kernels import gaussian_blur

    rng = np.random.default_rng(1)
    images = rng.random((2, 1, 20, 17))
    ours = gaussian_blur(torch.as_tensor(images), sigma=2.0).numpy()
    for i in range(2):
        reference = ndimage.gaussian_filter(images[i, 0], sigma=2.0, mode="mirror", truncate=4.0)
        np.testing.assert_allclose(ours[i, 0], reference, atol=1e-12)


# -- similarity kernels against independent references ---------------------------------
def test_spearman_matches_scipy_with_ties():
    from interp_metrics.attribution_metrics.kernels import average_ranks, spearman

    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, size=(6, 40)).astype(float)  # many ties
    b = a + rng.integers(0, 3, size=(6, 40))
    ours = spearman(torch.as_tensor(a), torch.as_tensor(b)).numpy()
    for i in range(6):
        assert ours[i] == pytest.approx(stats.spearmanr(a[i], b[i]).statistic, abs=1e-12)
        np.testing.assert_allclose(average_ranks(torch.as_tensor(a[i : i + 1])).numpy()[0], stats.rankdata(a[i]))


def _ssim_numpy(x, y, window=11, sigma=1.5, data_range=1.0):
    """Direct, loop-based SSIM: Gaussian-weighted statistics at every valid window position."""
    offsets = np.arange(window) - window // 2
    g = np.exp(-(offsets**2) / (2 * sigma**2))
    weights = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for r in range(x.shape[0] - window + 1):
        for c in range(x.shape[1] - window + 1):
            px, py = x[r : r + window, c : c + window], y[r : r + window, c : c + window]
            mx, my = (weights * px).sum(), (weights * py).sum()
            vx = (weights * (px - mx) ** 2).sum()
            vy = (weights * (py - my) ** 2).sum()
            cov = (weights * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_direct_numpy_implementation():
    from interp_metrics.attribution_metrics.kernels import ssim

    rng = np.random.default_rng(3)
    x = rng.random((3, 18, 16))
    y = np.clip(x + 0.3 * rng.normal(size=x.shape), 0, 1)
    y[2] = rng.random((18, 16))
    ours = ssim(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    for i in range(3):
        assert ours[i] == pytest.approx(_ssim_numpy(x[i], y[i]), abs=1e-10)
    assert ssim(torch.as_tensor(x), torch.as_tensor(x)).numpy() == pytest.approx(np.ones(3))


# -- sanity metrics ---------------------------------------------------------------------------
class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class Gradient(interpret_core.Attribution):
    """d logit_target / d input: depends on the weights and on the class."""

    name = "test-gradient"

    def attribute(self, module, inputs, target):
        inputs = inputs.detach().clone().requires_grad_(True)
        logits = module(inputs)
        target = torch.as_tensor(target).view(-1, 1).expand(inputs.shape[0], 1) if torch.as_tensor(target).ndim == 0 else torch.as_tensor(target).view(-1, 1)
        (grad,) = torch.autograd.grad(logits.gather(1, target).sum(), inputs)
        return grad


def test_randomization_is_one_for_weight_independent_maps_and_below_one_otherwise():
    model = SmallConvNet().eval()
    torch.manual_seed(1)
    inputs = torch.rand(4, 1, 16, 16)
    targets = model(inputs).argmax(dim=1)
    metric = get_attribution_metric("randomization")
    for baseline in ("centre-gaussian", "random-map"):
        method = get_attribution(baseline)
        attributions = method.attribute(model, inputs, targets)
        measured = metric.evaluate(inputs=inputs, targets=targets, attributions=attributions, model=model, method=method)
        np.testing.assert_allclose(measured.scores, 1.0, atol=1e-12)
        np.testing.assert_allclose(measured.extras["ssim"], 1.0, atol=1e-12)
    method = Gradient()
    attributions = method.attribute(model, inputs, targets)
    measured = metric.evaluate(inputs=inputs, targets=targets, attributions=attributions, model=model, method=method)
    scores = measured.scores
    assert np.all(scores < 0.9)
    curve = {f"{kind}_stage{i}" for i in (1, 2, 3) for kind in ("spearman", "signed_spearman", "ssim")}
    assert set(measured.extras) == {"ssim", "signed_spearman", "spearman_final", "ssim_final"} | curve
    # SmallConvNet has 2 parameterised layers: stages 1 and 2 exist, stage 3 is NaN
    np.testing.assert_allclose((measured.extras["spearman_stage1"] + measured.extras["spearman_stage2"]) / 2, scores)
    assert np.isnan(measured.extras["spearman_stage3"]).all()
    assert metric.stage_layers == [["fc"], ["fc", "conv"]]
    assert np.all(measured.extras["ssim_final"] < 0.9)
    # Deterministic, and the trained model is untouched (the cascade works on a copy).
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = metric(inputs=inputs, targets=targets, attributions=attributions, model=model, method=method)
    np.testing.assert_array_equal(again, scores)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_randomization_cascade_goes_from_the_top():
    model = SmallConvNet()
    assert get_attribution_metric("randomization").cascade(model) == ["fc", "conv"]
    assert get_attribution_metric("randomization", layers=1).cascade(model) == ["fc"]


def test_class_sensitivity_matches_scipy_on_a_linear_model():
    torch.manual_seed(2)
    weights = torch.randn(3, 16)
    model = nn.Linear(16, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(weights)
    flat = nn.Sequential(nn.Flatten(), model).eval()
    inputs = torch.rand(3, 1, 4, 4)
    logits = flat(inputs)
    targets = logits.argmax(dim=1)
    method = Gradient()
    attributions = method.attribute(flat, inputs, targets)
    metric = get_attribution_metric("class-sensitivity")
    scores = metric(inputs=inputs, targets=targets, attributions=attributions, model=flat, method=method)
    for i in range(3):
        ranked = torch.argsort(logits[i], descending=True).tolist()
        other = ranked[1]
        expected = stats.spearmanr(weights[targets[i]].abs().numpy(), weights[other].abs().numpy()).statistic
        assert scores[i] == pytest.approx(expected, abs=1e-6)
    # A map that ignores the class is maximally insensitive.
    baseline = get_attribution("random-map")
    maps = baseline.attribute(flat, inputs, targets)
    same = metric(inputs=inputs, targets=targets, attributions=maps, model=flat, method=baseline)
    np.testing.assert_allclose(same, 1.0)


# -- baselines ----------------------------------------------------------------------------------
def test_baseline_maps():
    inputs = torch.rand(3, 1, 9, 9)
    gaussian = get_attribution("centre-gaussian").attribute(None, inputs, 0)
    assert gaussian.shape == inputs.shape
    assert torch.all(gaussian.flatten(1).argmax(dim=1) == 4 * 9 + 4)
    random_map = get_attribution("random-map")
    first = random_map.attribute(None, inputs, 0)
    np.testing.assert_array_equal(first.numpy(), random_map.attribute(None, inputs, 5).numpy())  # ignores target
    assert not torch.equal(first[0], first[1])  # differs between images
    assert not torch.equal(first, get_attribution("random-map", seed=1).attribute(None, inputs, 0))
    assert float(first.min()) >= 0 and float(first.max()) < 1
    with pytest.raises(UsageError):
        get_attribution("centre-gaussian", sigma=0)


def test_unknown_baseline_option_is_a_usage_error():
    with pytest.raises(UsageError, match="random-map"):
        get_attribution("random-map", colour=1)


def test_randomization_stage_points():
    assert get_attribution_metric("randomization").stage_points(5) == [1, 3, 5]
    assert get_attribution_metric("randomization", stages=0).stage_points(5) == [1, 2, 3, 4, 5]
    assert get_attribution_metric("randomization", stages=1).stage_points(5) == [5]
    assert get_attribution_metric("randomization", stages=4).stage_points(2) == [1, 2]
    assert get_attribution_metric("randomization", stages=4).stage_points(10) == [1, 4, 7, 10]


def test_randomization_every_stage_equals_the_mean_of_single_depth_runs():
    """The cascade score is the mean over stages of the similarity after randomising the top k layers."""
    model = SmallConvNet().eval()
    inputs = torch.rand(3, 1, 16, 16)
    targets = model(inputs).argmax(dim=1)
    method = Gradient()
    attributions = method.attribute(model, inputs, targets)
    kwargs = dict(inputs=inputs, targets=targets, attributions=attributions, model=model, method=method)
    cascade = get_attribution_metric("randomization", stages=0)(**kwargs)
    top_only = get_attribution_metric("randomization", layers=1)(**kwargs)
    both = get_attribution_metric("randomization", layers=2, stages=1)(**kwargs)
    np.testing.assert_allclose(cascade, (top_only + both) / 2, atol=1e-12)


def test_randomization_follows_execution_order_and_draws_batch_norm():
    from interp_metrics.attribution_metrics.sanity import parameterised_layers, reinitialise

    class Reordered(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2 * 4 * 4, 2)  # registered first, called last
            self.bn = nn.BatchNorm2d(2)
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))

    net = Reordered().eval()
    x = torch.rand(2, 1, 4, 4)
    assert parameterised_layers(net) == ["fc", "bn", "conv"]
    assert parameterised_layers(net, x) == ["conv", "bn", "fc"]
    assert get_attribution_metric("randomization").cascade(net, x) == ["fc", "bn", "conv"]
    reinitialise(net.bn, seed=3)
    # drawn, not reset to the identity (weight 1, bias 0), which would remove the layer
    assert not torch.allclose(net.bn.weight, torch.ones(2)) and not torch.allclose(net.bn.bias, torch.zeros(2))
