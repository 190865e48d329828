"""interpret_core.analysis.stats against direct scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from interpret_core.analysis import stats


def _data(seed=0, n=60, units=7, ties=True):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, units))
    if ties:
        values[:, 0] = rng.integers(0, 4, size=n)  # heavy ties
        values[:, 1] = np.maximum(values[:, 1], 0.0)  # ReLU-like: many zeros
        values[:, 2] = 3.0  # a dead unit
    groups = np.stack([rng.random(n) < p for p in (0.2, 0.5, 0.8)])
    values[groups[0], 3] += 3.0  # an effect for concept 0 on unit 3
    return values, groups


def test_rank_columns_match_scipy_rankdata_and_tie_term():
    values, _ = _data()
    ranks, tie_term = stats.rank_columns(values)
    np.testing.assert_allclose(ranks, scipy.stats.rankdata(values, axis=0))
    for unit in range(values.shape[1]):
        _, counts = np.unique(values[:, unit], return_counts=True)
        assert tie_term[unit] == pytest.approx(float((counts**3 - counts).sum()))


@pytest.mark.parametrize("continuity", [True, False])
def test_mann_whitney_matches_scipy_asymptotic(continuity):
    values, groups = _data(seed=1)
    result = stats.mann_whitney(values, groups, use_continuity=continuity)
    for a, group in enumerate(groups):
        for unit in range(values.shape[1]):
            x, y = values[group, unit], values[~group, unit]
            ref = scipy.stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=continuity)
            assert result.u[a, unit] == pytest.approx(ref.statistic)
            if unit == 2:  # all values tied: no information
                assert result.p[a, unit] == 1.0
            else:
                assert result.p[a, unit] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
            # AUC through ranks equals the ROC AUC of a direct pairwise count.
            greater = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
            assert result.auc[a, unit] == pytest.approx(greater / (len(x) * len(y)))
    assert result.p[0, 3] < 1e-3  # the planted effect is found
    np.testing.assert_array_equal(result.n1 + result.n0, values.shape[0])


def test_mann_whitney_sign_and_empty_group():
    values = np.arange(10.0)[:, None]
    high = np.arange(10) >= 5
    result = stats.mann_whitney(values, np.stack([high, ~high, np.zeros(10, bool)]))
    assert result.auc[0, 0] == 1.0 and result.z[0, 0] > 0
    assert result.auc[1, 0] == 0.0 and result.z[1, 0] < 0
    assert np.isnan(result.p[2, 0]) and np.isnan(result.auc[2, 0])
    np.testing.assert_allclose(stats.cliffs_delta(result.auc[:2]), [[1.0], [-1.0]])


def test_standardized_mean_difference_by_hand():
    values, groups = _data(seed=2, ties=False)
    d = stats.standardized_mean_difference(values, groups)
    for a, group in enumerate(groups):
        for unit in range(values.shape[1]):
            x, y = values[group, unit], values[~group, unit]
            pooled = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
            assert d[a, unit] == pytest.approx((x.mean() - y.mean()) / pooled, rel=1e-9)


def test_standardized_mean_difference_degenerate():
    values = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 2.0], [0.0, 2.0]])
    group = np.array([True, True, False, False])
    d = stats.standardized_mean_difference(values, group)
    assert d[0, 0] == np.inf  # perfect separation, no spread
    assert d[0, 1] == 0.0  # constant unit


def test_wasserstein_on_normalised_values_matches_scipy():
    values, groups = _data(seed=3)
    w = stats.wasserstein_normalised(values, groups)
    sd = values.std(axis=0)
    for a, group in enumerate(groups):
        for unit in range(values.shape[1]):
            if sd[unit] == 0:
                assert w[a, unit] == 0.0
                continue
            z = (values[:, unit] - values[:, unit].mean()) / sd[unit]
            ref = scipy.stats.wasserstein_distance(z[group], z[~group])
            assert w[a, unit] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # Scale-free: rescaling a unit does not change its distance.
    scaled = values * np.array([1, 2, 3, 10, 0.1, 5, 7.0])
    np.testing.assert_allclose(stats.wasserstein_normalised(scaled, groups), w, atol=1e-12)


def test_bh_qvalues_match_scipy():
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.random(200), rng.random(20) * 1e-4, [0.0, 1.0, 0.05, 0.05]])
    np.testing.assert_allclose(stats.bh_qvalues(p), scipy.stats.false_discovery_control(p, method="bh"))
    # Shape is kept and NaNs stay out of the family.
    grid = p[:24].reshape(4, 6).copy()
    grid[1, 2] = np.nan
    q = stats.bh_qvalues(grid)
    assert q.shape == grid.shape and np.isnan(q[1, 2])
    finite = ~np.isnan(grid)
    np.testing.assert_allclose(q[finite], scipy.stats.false_discovery_control(grid[finite], method="bh"))
    with pytest.raises(ValueError):
        stats.bh_qvalues(np.array([0.5, 1.5]))


def test_stratified_single_stratum_is_mann_whitney_without_continuity():
    values, groups = _data(seed=5)
    strat = stats.stratified_rank_test(values, groups, np.zeros(values.shape[0], int))
    plain = stats.mann_whitney(values, groups, use_continuity=False)
    live = np.arange(values.shape[1]) != 2
    np.testing.assert_allclose(strat.auc, plain.auc)
    np.testing.assert_allclose(strat.p[:, live], plain.p[:, live], rtol=1e-9)
    assert (strat.strata_used == 1).all()


def test_stratified_matches_direct_per_stratum_scipy_sums():
    values, groups = _data(seed=6, n=90)
    strata = np.random.default_rng(7).integers(0, 3, size=values.shape[0])
    result = stats.stratified_rank_test(values, groups, strata)
    for a, group in enumerate(groups):
        for unit in (0, 1, 3, 4):
            stat = var = num = den = 0.0
            for s in range(3):
                m = strata == s
                x, y = values[m & group, unit], values[m & ~group, unit]
                if len(x) == 0 or len(y) == 0:
                    continue
                n = m.sum()
                u = scipy.stats.mannwhitneyu(x, y, method="asymptotic").statistic
                _, counts = np.unique(values[m, unit], return_counts=True)
                tie = (counts**3 - counts).sum()
                v = len(x) * len(y) / 12 * ((n + 1) - tie / (n * (n - 1)))
                stat += (u - len(x) * len(y) / 2) / (n + 1)
                var += v / (n + 1) ** 2
                num += u / (n + 1)
                den += len(x) * len(y) / (n + 1)
            assert result.auc[a, unit] == pytest.approx(num / den)
            z = stat / np.sqrt(var)
            assert result.z[a, unit] == pytest.approx(z)
            assert result.p[a, unit] == pytest.approx(2 * scipy.stats.norm.sf(abs(z)))


def test_stratification_removes_a_confounded_effect():
    # The unit responds to the stratum (emotion), and the concept co-occurs with it.
    rng = np.random.default_rng(8)
    strata = rng.integers(0, 2, size=400)
    concept = np.where(strata == 1, rng.random(400) < 0.9, rng.random(400) < 0.1)
    unit = strata * 2.0 + rng.normal(size=400) * 0.5
    naive = stats.mann_whitney(unit[:, None], concept)
    strat = stats.stratified_rank_test(unit[:, None], concept, strata)
    assert stats.cliffs_delta(naive.auc)[0, 0] > 0.5 and naive.p[0, 0] < 1e-10
    assert abs(strat.delta[0, 0]) < 0.15 and strat.p[0, 0] > 0.01


def test_presence_phi_and_chance_excess():
    a = np.array([1, 1, 0, 0, 1, 0], bool)
    groups = np.stack([a, a, ~a, np.ones(6, bool)])
    phi = stats.presence_phi(groups)
    assert phi[0, 1] == pytest.approx(1.0) and phi[0, 2] == pytest.approx(-1.0) and phi[0, 3] == 0.0
    np.testing.assert_allclose(phi[0, 0], np.corrcoef(a, a)[0, 1])
    chance = np.full(100, 0.2)
    assert stats.chance_excess_p(np.ones(100), chance) < 1e-10
    assert stats.chance_excess_p(np.zeros(100), chance) > 0.99
    assert np.isnan(stats.chance_excess_p(np.zeros(0), np.zeros(0)))


def _subject_sample(seed, observations=90, subjects=17, units=4, resamples=30, blocks=4):
    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, subjects, observations))
    owner[:subjects] = np.arange(subjects)  # every subject has an observation
    owner.sort()
    values = rng.normal(size=(observations, units))
    values[:, 0] = rng.integers(0, 4, size=observations)  # heavy ties
    values[:, 1] = np.maximum(values[:, 1], 0.0)  # ReLU-like: many zeros
    group = rng.random(observations) < 0.3
    group[owner == 0] = True  # a subject only in the group
    group[owner == 1] = False  # and one only outside it
    draws = rng.integers(0, subjects, size=(resamples, subjects))
    counts = np.stack([np.bincount(row, minlength=subjects) for row in draws]).astype(float)
    block_of = rng.permutation(np.arange(subjects) % blocks)
    subsets = np.concatenate([~np.eye(blocks, dtype=bool), np.eye(blocks, dtype=bool), np.ones((1, blocks), bool)])
    return values, group, owner, counts, block_of, subsets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subject_bootstrap_auc_equals_the_observation_weighted_auc_bit_for_bit(seed):
    """The quadratic form over subjects gives exactly weighted_auc's numbers on each subset's rows."""
    values, group, owner, counts, block_of, subsets = _subject_sample(seed)
    values[3, 2] = values[7, 2] = np.nan  # NaNs are ordered as weighted_auc orders them
    auc = stats.subject_bootstrap_auc(values, group, owner, counts, block_of, subsets)
    assert auc.shape == (len(subsets), len(counts), values.shape[1])
    for r, keep in enumerate(subsets):
        rows = keep[block_of[owner]]
        expected = stats.weighted_auc(values[rows], group[None, rows], counts[:, owner[rows]])[:, 0, :]
        np.testing.assert_array_equal(auc[r], expected)
    assert np.isfinite(auc).mean() > 0.5


def test_subject_bootstrap_auc_is_scipys_auc_of_the_repeated_subjects():
    values, group, owner, counts, block_of, subsets = _subject_sample(5, resamples=6)
    auc = stats.subject_bootstrap_auc(values, group, owner, counts, block_of, subsets)
    for r, keep in enumerate(subsets):
        for b in range(len(counts)):
            repeats = counts[b, owner].astype(int) * keep[block_of[owner]]
            for unit in range(values.shape[1]):
                x = np.repeat(values[group, unit], repeats[group])
                y = np.repeat(values[~group, unit], repeats[~group])
                if len(x) == 0 or len(y) == 0:
                    assert np.isnan(auc[r, b, unit])
                    continue
                expected = scipy.stats.mannwhitneyu(x, y).statistic / (len(x) * len(y))
                assert auc[r, b, unit] == pytest.approx(expected, abs=1e-12)


def test_subject_bootstrap_auc_without_in_group_weight_is_nan():
    values, group, owner, counts, block_of, subsets = _subject_sample(4)
    counts[:, np.unique(owner[group])] = 0  # no drawn subject has an in-group observation
    assert np.isnan(stats.subject_bootstrap_auc(values, group, owner, counts, block_of, subsets)).all()
    none = stats.subject_bootstrap_auc(values, np.zeros_like(group), owner, counts, block_of, subsets)
    assert np.isnan(none).all()


def test_ranks_within_strata_equal_rank_columns_of_each_stratum_exactly():
    values, _ = _data(seed=7, n=80)
    rng = np.random.default_rng(7)
    strata = rng.integers(0, 9, size=len(values))
    strata[:3] = 20  # a small stratum; labels need not be consecutive
    strata[3] = 30  # and a singleton
    labels, stratum_of = np.unique(strata, return_inverse=True)
    ranks, tie_term = stats._ranks_within(values, stratum_of, len(labels))
    for index in range(len(labels)):
        members = stratum_of == index
        expected_ranks, expected_ties = stats.rank_columns(values[members])
        np.testing.assert_array_equal(ranks[members], expected_ranks)
        np.testing.assert_array_equal(tie_term[index], expected_ties)


def test_stratified_test_with_nan_values_ranks_each_stratum_apart():
    values, groups = _data(seed=8)
    strata = np.arange(len(values)) % 3
    with_nan = values.copy()
    with_nan[5, 4] = np.nan
    result = stats.stratified_rank_test(with_nan, groups, strata)
    clean = stats.stratified_rank_test(values, groups, strata)
    untouched = [u for u in range(values.shape[1]) if u != 4]
    np.testing.assert_array_equal(result.z[:, untouched], clean.z[:, untouched])
    assert np.isfinite(result.z).all()


def _stratified_one_stratum_at_a_time(values, groups, strata):
    """The stratum-by-stratum loop stratified_rank_test replaced (kept here as the reference it must equal)."""
    concepts, units = groups.shape[0], values.shape[1]
    statistic, variance = np.zeros((concepts, units)), np.zeros((concepts, units))
    weighted_u, weight_sum = np.zeros((concepts, units)), np.zeros((concepts, 1))
    used = np.zeros(concepts, dtype=np.int64)
    for label in np.unique(strata):
        members = strata == label
        n = int(members.sum())
        inner = groups[:, members]
        n1 = inner.sum(axis=1).astype(np.int64)
        n0 = n - n1
        both = (n1 > 0) & (n0 > 0)
        if n < 2 or not both.any():
            continue
        ranks, tie_term = stats.rank_columns(values[members])
        u = inner.astype(np.float64) @ ranks - (n1 * (n1 + 1) / 2.0)[:, None]
        weight = 1.0 / (n + 1)
        pairs = (n1 * n0).astype(np.float64)[:, None]
        statistic += np.where(both[:, None], weight * (u - pairs / 2.0), 0.0)
        variance += np.where(both[:, None], weight**2 * stats._u_variance(n1, n0, tie_term), 0.0)
        weighted_u += np.where(both[:, None], weight * u, 0.0)
        weight_sum += np.where(both[:, None], weight * pairs, 0.0)
        used += both
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where(weight_sum > 0, weighted_u / weight_sum, np.nan)
        z = np.where(variance > 0, statistic / np.sqrt(variance), 0.0)
    z[used == 0] = np.nan
    return auc, z, used


@pytest.mark.parametrize("seed", range(6))
def test_stratified_test_over_all_strata_at_once_equals_the_stratum_loop_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(5, 150))
    values = rng.normal(size=(count, 4)) if seed % 2 else rng.integers(0, 4, size=(count, 4)).astype(float)
    if seed == 3:
        values[2, 1] = np.nan
    groups = rng.random((3, count)) < rng.uniform(0.1, 0.9)
    strata = rng.integers(0, int(rng.integers(1, 12)), size=count) * 3 - 5  # singletons and one-group strata too
    result = stats.stratified_rank_test(values, groups, strata)
    auc, z, used = _stratified_one_stratum_at_a_time(values, groups, strata)
    np.testing.assert_array_equal(result.auc, auc)
    np.testing.assert_array_equal(result.z, z)
    np.testing.assert_array_equal(result.strata_used, used)
