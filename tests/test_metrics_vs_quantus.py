"""Every metric Quantus 0.6.0 also has, against Quantus on identical arrays (Quantus is a test dependency).

Tie rules: ours break ties by their expectation or a seeded random order
(attribution_metrics/base.py), Quantus by numpy's sort order; the maps here
are continuous, so there are no ties and the two must agree. Where Quantus
draws at random (faithfulness correlation's subsets, the robustness noise),
the test hands Quantus our draws.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from interpret_core import get_attribution, get_attribution_metric

import quantus  # noqa: E402  (the test extra installs it; a missing one must fail, not skip)
torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.block(x)).flatten(1))


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 8, 8)).astype(np.float32)
    a = rng.normal(size=(6, 1, 8, 8)).astype(np.float32)
    s = np.zeros((6, 1, 8, 8), dtype=bool)
    s[:, :, 2:5, 1:6] = True
    s[3, :, 5:8, 5:8] = True
    model = Net().eval()
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return model, x, y, a, s


def _ours(name, arrays, method=None, **options):
    model, x, y, a, s = arrays
    metric = get_attribution_metric(name, **options)
    return metric(inputs=torch.from_numpy(x), targets=torch.from_numpy(y), attributions=torch.from_numpy(a),
                  masks=torch.from_numpy(s[:, 0]), model=model, method=method), metric


def _quantus(metric, arrays, **kwargs):
    model, x, y, a, s = arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(metric(model=model, x_batch=x, y_batch=y, a_batch=a.copy(), s_batch=s, device="cpu", **kwargs),
                          dtype=np.float64)


def test_sparseness_equals_quantus(arrays):
    ours, _ = _ours("sparseness", arrays)
    theirs = _quantus(quantus.Sparseness(disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_complexity_equals_quantus(arrays):
    ours, _ = _ours("complexity", arrays)
    theirs = _quantus(quantus.Complexity(disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_top_k_intersection_equals_quantus(arrays):
    ours, _ = _ours("au-top-k-intersection", arrays, k=10)
    theirs = _quantus(quantus.TopKIntersection(k=10, abs=True, disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_auc_equals_quantus(arrays):
    ours, _ = _ours("au-auc", arrays)
    theirs = _quantus(quantus.AUC(abs=True, disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_pointing_game_relevance_mass_and_rank_equal_quantus(arrays):
    ours, _ = _ours("au-pointing-game", arrays, tolerance=0)
    theirs = _quantus(quantus.PointingGame(abs=True, disable_warnings=True), arrays)
    np.testing.assert_array_equal(ours, theirs)
    ours, _ = _ours("au-relevance-mass", arrays, saliency="abs")
    theirs = _quantus(quantus.RelevanceMassAccuracy(abs=True, normalise=False, disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    ours, _ = _ours("au-relevance-rank", arrays)
    theirs = _quantus(quantus.RelevanceRankAccuracy(abs=True, disable_warnings=True), arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_faithfulness_correlation_equals_quantus_on_our_subsets(arrays, monkeypatch):
    model, x, y, a, s = arrays
    ours, metric = _ours("faithfulness-correlation", arrays, runs=12, subset_size=9, baseline="zero")
    subsets = metric.subsets(torch.from_numpy(a[:, 0]).to(torch.float64)).numpy()  # [N, R, S]
    replay = iter([subsets[i, r] for r in range(12) for i in range(len(x))])  # Quantus draws run by run, image by image
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(replay))
    theirs = _quantus(quantus.FaithfulnessCorrelation(nr_runs=12, subset_size=9, perturb_baseline=0.0, abs=False, return_aggregate=False,
                                                       normalise=False, disable_warnings=True), arrays, softmax=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_monotonicity_correlation_equals_quantus(arrays):
    ours, _ = _ours("monotonicity-correlation", arrays, features_in_step=4, baseline="zero")
    theirs = _quantus(quantus.MonotonicityCorrelation(features_in_step=4, nr_samples=1, perturb_baseline=0.0, abs=False,
                                                       normalise=False, disable_warnings=True), arrays, softmax=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def _explain(method):
    def explain(model, inputs, targets, **_):
        maps = method.attribute(model, torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets))
        return maps.detach().numpy()

    return explain


@pytest.mark.parametrize("name, quantus_class, noise_option", [
    ("max-sensitivity", "MaxSensitivity", "radius"),
    ("local-lipschitz", "LocalLipschitzEstimate", "sigma"),
])
def test_robustness_equals_quantus_on_our_noise(arrays, name, quantus_class, noise_option):
    # Normalisation off on both sides: Quantus 0.6's normalise=True divides the whole *batch* by one
    # maximum (normalise_by_max's default axes include the batch axis), so its score of an image
    # depends on the other images of its batch; ours divides each map by its own maximum.
    model, x, y, a, s = arrays
    method = get_attribution("test-quantus-ixg") if False else _InputTimesGradient()
    a_method = method.attribute(model, torch.from_numpy(x), torch.from_numpy(y)).numpy()
    arrays_with_maps = (model, x, y, a_method, s)
    ours, metric = _ours(name, arrays_with_maps, method=method, samples=5, normalise=False, **{noise_option: 0.05})
    steps = metric.perturbations(torch.from_numpy(x)).numpy()  # [samples, N, C, H, W]
    replay = iter(list(steps))

    def perturb(arr, **_):
        return (arr + next(replay).reshape(arr.shape)).astype(arr.dtype)

    cls = getattr(quantus, quantus_class)
    options = dict(nr_samples=5, perturb_func=perturb, normalise=False, abs=False, disable_warnings=True, return_nan_when_prediction_changes=False)
    if quantus_class == "MaxSensitivity":
        options.update(norm_numerator=quantus.norm_func.fro_norm, norm_denominator=quantus.norm_func.fro_norm)
    theirs = _quantus(cls(**options), arrays_with_maps, explain_func=_explain(method))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


class _InputTimesGradient:
    """A smooth method (input x gradient) so that the robustness scores are not trivially 0."""

    name = "input-x-gradient-test"

    def attribute(self, model, inputs, target):
        inputs = inputs.detach().clone().requires_grad_(True)
        logits = model(inputs)
        chosen = logits.gather(1, torch.as_tensor(target).view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(chosen, inputs)
        return (grad * inputs).detach()


def test_road_imputation_and_scores_equal_quantus_noisy_linear_imputation(arrays):
    from quantus.functions.perturb_func import noisy_linear_imputation

    from interp_metrics.attribution_metrics.faithfulness import linear_imputation

    model, x, y, a, s = arrays
    rng = np.random.default_rng(5)
    removed = rng.random((8, 8)) > 0.5
    theirs = noisy_linear_imputation(x[0].astype(np.float64).copy(), np.flatnonzero(removed.reshape(-1)), noise=0.0)
    np.testing.assert_allclose(linear_imputation(x[0], removed), theirs.reshape(x[0].shape), atol=1e-12)
    # the whole metric, noise off: the class probability after imputing the top p %, averaged over p
    ours, _ = _ours("road", arrays, percentages="25,50", noise=0.0)
    expected = []
    for i in range(len(x)):
        order = np.argsort(-np.abs(a[i, 0]).reshape(-1))
        probabilities = []
        for share in (0.25, 0.5):
            filled = noisy_linear_imputation(x[i].astype(np.float64).copy(), order[: int(round(share * 64))], noise=0.0)
            logits = model(torch.tensor(filled.reshape(1, 1, 8, 8), dtype=torch.float32)).detach().double()
            probabilities.append(float(torch.softmax(logits, dim=1)[0, y[i]]))
        expected.append(np.mean(probabilities))
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
