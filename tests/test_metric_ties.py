"""Ties and undefined maps: one rule for every attribution metric (plugins/.../attribution_metrics/base.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from interpret_core import get_attribution_metric, get_model, get_registry
from interp_metrics.attribution_metrics.kernels import (
    defined_maps,
    descending_order,
    dilate,
    expected_top_k_inside,
    tie_keys,
)

torch.set_num_threads(1)


class TwoClass(nn.Module):
    """A tiny conv net with a rectified spatial block, so every metric (and 'auto' tolerance) can run."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(self.pool(self.block(x)).flatten(1))


def _kwargs(attributions, masks=None):
    attributions = torch.as_tensor(np.asarray(attributions), dtype=torch.float32)
    if attributions.ndim == 3:
        attributions = attributions[:, None]
    n = attributions.shape[0]
    torch.manual_seed(1)
    inputs = torch.rand(n, 1, 8, 8)
    if masks is None:
        masks = np.zeros((n, 8, 8), dtype=bool)
        masks[:, 2:5, 2:5] = True
    return dict(inputs=inputs, targets=torch.zeros(n, dtype=torch.int64), attributions=attributions,
                masks=torch.as_tensor(masks), model=TwoClass().eval(), method=None)


class _Claiming:
    """random-map's maps, from a method that claims completeness (so the completeness metric applies)."""

    name = "claiming-random-map"
    claims_completeness = True

    def __init__(self):
        from interpret_core import get_attribution

        self.random_map = get_attribution("random-map")

    def attribute(self, module, inputs, target):
        return self.random_map.attribute(module, inputs, target)

    def completeness_baseline(self, inputs):
        return torch.zeros_like(inputs)


def test_defined_maps_flags_nan_inf_and_constant_maps():
    good = torch.arange(16.0).reshape(1, 1, 4, 4)
    maps = torch.cat([good, torch.zeros_like(good), torch.full_like(good, 3.0), good.clone(), good.clone()])
    maps[3, 0, 0, 0] = float("nan")
    maps[4, 0, 1, 1] = float("inf")
    assert defined_maps(maps).tolist() == [True, False, False, False, False]
    # channels are summed first: two channels that cancel everywhere leave a constant map
    cancel = torch.stack([good[0, 0], -good[0, 0]])[None]
    assert defined_maps(cancel).tolist() == [False]


@pytest.mark.parametrize("broken", ["nan", "inf", "zero", "constant"])
def test_every_registered_metric_gives_undefined_maps_nan_and_flags_them(broken):
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8))
    maps[1] = {"nan": np.nan, "inf": np.inf, "zero": 0.0, "constant": 0.7}[broken]
    if broken in ("nan", "inf"):  # one bad pixel is enough
        maps[1] = rng.random((8, 8))
        maps[1, 4, 4] = np.nan if broken == "nan" else np.inf
    # the method the sanity/robustness checks re-run: its own maps are fine, the explained map is broken
    method = _Claiming()
    # 8x8 maps: the perturbation metrics need subsets and groups smaller than the image
    small = {"faithfulness-correlation": {"subset_size": 8, "runs": 10}, "monotonicity-correlation": {"features_in_step": 4}}
    for name in get_registry().names("attribution-metric"):
        metric = get_attribution_metric(name, **small.get(name, {}))
        kwargs = _kwargs(maps)
        kwargs["method"] = method
        measured = metric.evaluate(**kwargs)
        scores = measured.scores
        assert math.isnan(scores[1]), (name, broken)
        assert np.isfinite(scores[[0, 2]]).all(), (name, broken, scores)
        assert measured.undefined.tolist() == [False, True, False], name


def test_tie_keys_are_seeded_by_the_map_not_its_position():
    rng = np.random.default_rng(1)
    maps = torch.as_tensor(rng.integers(0, 3, size=(4, 6, 6)).astype(np.float64))
    keys = tie_keys(maps)
    again = tie_keys(maps[[2, 0]])
    torch.testing.assert_close(again, keys[[2, 0]])
    assert not torch.equal(tie_keys(maps, seed=1), keys)
    assert not torch.equal(keys[0], tie_keys(maps[:1] + 1)[0])  # another map, another order


def test_descending_order_breaks_ties_at_random_not_in_raster_order():
    maps = torch.zeros(1, 32, 32, dtype=torch.float64)
    maps[0, 31, 31] = 1.0  # one top pixel, then 1023 tied zeros
    order = descending_order(maps)[0]
    assert order[0] == 31 * 32 + 31
    rest = order[1:]
    assert sorted(rest.tolist()) == list(range(1023))
    # raster order would put the first row first; a random order spreads the first 100 over the image
    rows = (rest[:100] // 32).to(torch.float64)
    assert rows.mean() > 8 and rows.max() > 20


def test_expected_top_k_inside_equals_the_average_over_random_tie_orders():
    rng = np.random.default_rng(2)
    values = torch.as_tensor(rng.integers(0, 4, size=(5, 30)).astype(np.float64))
    inside = torch.as_tensor(rng.random((5, 30)) > 0.5)
    k = torch.tensor([0, 3, 10, 17, 30])
    exact = expected_top_k_inside(values, inside, k)
    draws = []
    for seed in range(4000):
        order = descending_order(values, seed=seed)
        taken = torch.arange(30).view(1, -1) < k.view(-1, 1)
        draws.append((torch.gather(inside, 1, order) & taken).sum(dim=1).to(torch.float64))
    monte_carlo = torch.stack(draws).mean(dim=0)
    torch.testing.assert_close(exact, monte_carlo, atol=0.08, rtol=0)
    assert exact[0] == 0 and exact[-1] == inside[-1].sum()


def test_pointing_game_scores_the_share_of_tied_maxima_that_hit():
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 0:2, 0:2] = True
    attribution = np.zeros((1, 8, 8))
    attribution[0, 0, 0] = attribution[0, 7, 7] = attribution[0, 7, 0] = 5.0  # one of three maxima hits
    metric = get_attribution_metric("au-pointing-game", tolerance=0)
    measured = metric.evaluate(**_kwargs(attribution, masks))
    assert measured.scores[0] == pytest.approx(1 / 3)
    assert measured.extras["chance"][0] == pytest.approx(4 / 64)


def test_relevance_rank_ties_score_their_expectation():
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 0, 0:4] = True  # K = 4
    attribution = np.zeros((1, 8, 8))
    attribution[0, 0, 0] = 2.0  # one sure hit; 3 places left among 63 tied zeros, 3 of them inside
    score = get_attribution_metric("au-relevance-rank")(**_kwargs(attribution, masks))
    assert score[0] == pytest.approx((1 + 3 * 3 / 63) / 4)


def test_dilate_is_a_euclidean_disk():
    mask = torch.zeros(1, 9, 9, dtype=torch.bool)
    mask[0, 4, 4] = True
    grown = dilate(mask, 2.0)[0]
    ys, xs = np.nonzero(grown.numpy())
    distances = np.hypot(ys - 4, xs - 4)
    assert distances.max() <= 2.0 and grown.sum() == 13  # the 13 lattice points of a radius-2 disk
    assert torch.equal(dilate(mask, 0.5), mask)


def test_pointing_tolerance_defaults_to_half_the_stride_of_the_last_spatial_block():
    model = get_model("fer-cnn")
    metric = get_attribution_metric("au-pointing-game")
    assert metric.tolerance == "auto" and metric.needs_model
    inputs = torch.rand(2, 1, 64, 64)
    assert metric.tolerance_px(model.module, inputs) == 2.0  # conv3: 16x16 on 64 px, stride 4
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 3, 3] = True
    # the tiny net's block is 8x8 on 8 px (stride 1): tolerance 0.5 px, chance = 1/64
    tiny = get_attribution_metric("au-pointing-game")
    measured = tiny.evaluate(**_kwargs(np.random.default_rng(0).random((1, 8, 8)), masks))
    assert measured.extras["tolerance_px"][0] == 0.5 and measured.extras["chance"][0] == pytest.approx(1 / 64)


def test_deletion_tie_order_is_deterministic_and_batch_independent():
    rng = np.random.default_rng(3)
    maps = np.where(rng.random((5, 8, 8)) > 0.8, rng.random((5, 8, 8)), 0.0)  # mostly tied zeros
    kwargs = _kwargs(maps)
    first = get_attribution_metric("deletion", steps=8, baseline="zero")(**kwargs)
    metric = get_attribution_metric("deletion", steps=8, baseline="zero")
    metric.batch_size = 2
    np.testing.assert_array_equal(metric(**kwargs), first)


def test_new_metrics_on_maps_whose_answer_is_known():
    one = np.zeros((1, 8, 8)); one[0, 3, 3] = 1.0
    flat = np.ones((1, 8, 8)); flat[0, 0, 0] = 1.001  # (almost) uniform, but not constant
    assert get_attribution_metric("sparseness")(**_kwargs(one))[0] == pytest.approx(63 / 64)
    assert get_attribution_metric("sparseness")(**_kwargs(flat))[0] == pytest.approx(0, abs=1e-4)
    assert get_attribution_metric("complexity")(**_kwargs(one))[0] == pytest.approx(0)
    assert get_attribution_metric("complexity")(**_kwargs(flat))[0] == pytest.approx(math.log(64), abs=1e-4)
    masks = np.zeros((1, 8, 8), dtype=bool); masks[0, 2:5, 2:5] = True
    perfect = masks.astype(float) + 0.0
    assert get_attribution_metric("au-auc")(**_kwargs(perfect, masks))[0] == 1.0
    assert get_attribution_metric("au-auc")(**_kwargs(1 - perfect, masks))[0] == 0.0
    # 9 region pixels, k = 2 % of 64 = 1 pixel: the top pixel is one of the 9 tied ones inside
    assert get_attribution_metric("au-top-k-intersection")(**_kwargs(perfect, masks))[0] == 1.0


def test_robustness_is_zero_for_a_map_that_ignores_the_input():
    from interpret_core import get_attribution

    method = get_attribution("centre-gaussian")
    maps = method.attribute(None, torch.zeros(2, 1, 8, 8), 0)
    for name in ("max-sensitivity", "local-lipschitz"):
        kwargs = _kwargs(maps.numpy())
        kwargs["method"] = method
        np.testing.assert_allclose(get_attribution_metric(name, samples=3)(**kwargs), 0.0, atol=1e-12)


def test_faithfulness_correlation_subsets_are_seeded_by_the_map_and_drawn_without_replacement():
    rng = np.random.default_rng(2)
    maps = torch.as_tensor(rng.normal(size=(3, 8, 8)))
    metric = get_attribution_metric("faithfulness-correlation", runs=200, subset_size=5)
    subsets = metric.subsets(maps)  # [N, R, S]
    assert subsets.shape == (3, 200, 5)
    torch.testing.assert_close(metric.subsets(maps[[2, 0]]), subsets[[2, 0]])  # position in the batch does not matter
    assert all(len(set(run.tolist())) == 5 for run in subsets.reshape(-1, 5))  # no pixel twice in one subset
    assert not torch.equal(get_attribution_metric("faithfulness-correlation", runs=200, subset_size=5, seed=1).subsets(maps), subsets)
    assert not torch.equal(subsets[0], subsets[1])  # runs of different maps are different draws
    # every pixel equally likely: 200 runs x 5 px over 64 px = 15.6 per pixel; no pixel far off
    counts = torch.bincount(subsets[0].reshape(-1), minlength=64)
    assert counts.min() >= 3 and counts.max() <= 32
