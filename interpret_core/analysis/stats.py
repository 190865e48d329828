"""Two-sample statistics vectorised over units and concepts.

Everything here compares, for many units at once, the values of images
inside a group (e.g. images showing an AU) with the values of the images
outside it. Values are ``[N, U]`` (images x units); groups are boolean
``[A, N]`` (concepts x images). The pooled sample is the same for every
concept, so each unit's values are ranked once and every concept's rank sum
is one matrix product: ``groups @ ranks``.

Conventions follow scipy: :func:`mann_whitney` matches
``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` (two-sided, tie
correction, continuity correction), :func:`bh_qvalues` matches
``scipy.stats.false_discovery_control(p, method="bh")``, and
:func:`wasserstein_normalised` matches ``scipy.stats.wasserstein_distance``
on per-unit z-scored values. Definitions and reasoning: docs/metrics.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "rank_columns",
    "RankSumTest",
    "mann_whitney",
    "cliffs_delta",
    "standardized_mean_difference",
    "wasserstein_normalised",
    "stratified_rank_test",
    "bh_qvalues",
    "presence_phi",
    "chance_excess_p",
    "group_means",
    "weighted_auc",
    "subject_bootstrap_auc",
    "percentile_interval",
]


def _as_groups(groups: np.ndarray, count: int) -> np.ndarray:
    groups = np.asarray(groups, dtype=bool)
    if groups.ndim == 1:
        groups = groups[None]
    if groups.ndim != 2 or groups.shape[1] != count:
        raise ValueError(f"groups must be bool [A, {count}], got shape {groups.shape}")
    return groups


def _as_values(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"values must be [N, U], got shape {values.shape}")
    return values


def rank_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share their mean rank) of each column.

    Args:
        values: [N, U].

    Returns:
        ranks float64 [N, U], and the tie term ``sum(t**3 - t)`` over tie
        groups of each column, float64 [U] (0 without ties).
    """
    values = _as_values(values)
    count, units = values.shape
    if count == 0:
        return np.zeros((0, units)), np.zeros(units)
    # Work on rows of the transpose: sorting contiguous rows is much faster.
    rows = np.ascontiguousarray(values.T)
    order = np.argsort(rows, axis=1)  # ties are averaged below, so stability is not needed
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones((units, count), dtype=bool)  # a tie group starts where the sorted value changes
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((units, count), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    position = np.arange(count)
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, count - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((units, count))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    sizes = (last - first + 1).astype(np.float64)
    tie_term = np.where(starts, sizes**3 - sizes, 0.0).sum(axis=1)
    return ranks.T, tie_term


@dataclasses.dataclass
class RankSumTest:
    """Mann-Whitney U results for A concepts x U units.

    Attributes:
        u: float64 [A, U] U statistic of the in-group (``x`` in scipy terms).
        auc: float64 [A, U] ``u / (n1 * n0)``: P(in > out) + P(in = out) / 2.
        z: float64 [A, U] signed normal deviate (positive: in-group higher),
            without continuity correction.
        p: float64 [A, U] two-sided p-value (normal approximation, tie and
            continuity corrected, as scipy's ``method="asymptotic"``).
        n1, n0: int64 [A] sizes of the in- and out-group.
    """

    u: np.ndarray
    auc: np.ndarray
    z: np.ndarray
    p: np.ndarray
    n1: np.ndarray
    n0: np.ndarray


def _normal_sf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(-z)


def _u_variance(n1: np.ndarray, n0: np.ndarray, tie_term: np.ndarray) -> np.ndarray:
    """Variance of U under H0 with the tie correction: [A, U] from [A], [A], [U]."""
    n = (n1 + n0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        correction = np.where(n[:, None] > 1, tie_term[None, :] / (n * (n - 1))[:, None], 0.0)
    return (n1 * n0)[:, None] / 12.0 * ((n + 1)[:, None] - correction)


def mann_whitney(
    values: np.ndarray,
    groups: np.ndarray,
    *,
    use_continuity: bool = True,
    ranks: tuple[np.ndarray, np.ndarray] | None = None,
) -> RankSumTest:
    """Mann-Whitney U test of in-group vs out-group, for every concept and unit.

    Args:
        values: [N, U] (e.g. each unit's maximal activation per image).
        groups: bool [A, N] (or [N]); True marks the in-group.
        use_continuity: subtract 0.5 from |U - mean| for the p-value (scipy's default).
        ranks: precomputed :func:`rank_columns` of ``values``.

    Returns:
        A :class:`RankSumTest`; entries where a group is empty are NaN.
    """
    values = _as_values(values)
    groups = _as_groups(groups, values.shape[0])
    rank_matrix, tie_term = ranks if ranks is not None else rank_columns(values)
    n1 = groups.sum(axis=1).astype(np.int64)
    n0 = values.shape[0] - n1
    rank_sum = groups.astype(np.float64) @ rank_matrix  # [A, U]
    u = rank_sum - (n1 * (n1 + 1) / 2.0)[:, None]
    pairs = (n1 * n0).astype(np.float64)[:, None]
    mean = pairs / 2.0
    sd = np.sqrt(np.maximum(_u_variance(n1, n0, tie_term), 0.0))
    deviation = u - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u / pairs
        z = np.where(sd > 0, deviation / sd, 0.0)
        numerator = np.abs(deviation) - (0.5 if use_continuity else 0.0)
        z_test = np.where(sd > 0, numerator / sd, -np.inf)
    p = np.clip(2.0 * _normal_sf(z_test), 0.0, 1.0)
    empty = (pairs[:, 0] == 0)
    for array in (u, auc, z, p):
        array[empty] = np.nan
    return RankSumTest(u=u, auc=auc, z=z, p=p, n1=n1, n0=n0)


def cliffs_delta(auc: np.ndarray) -> np.ndarray:
    """Cliff's delta from the AUC: ``2 * AUC - 1`` = P(in > out) - P(in < out), in [-1, 1]."""
    return 2.0 * np.asarray(auc, dtype=np.float64) - 1.0


def standardized_mean_difference(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cohen's d: (mean_in - mean_out) / pooled SD, float64 [A, U].

    The pooled SD is ``sqrt((SS_in + SS_out) / (n - 2))``. Where it is 0 the
    result is 0 if the means agree and +-inf otherwise; NaN where a group has
    fewer than one member or n < 3.
    """
    values = _as_values(values)
    groups = _as_groups(groups, values.shape[0])
    g = groups.astype(np.float64)
    n1 = g.sum(axis=1)[:, None]
    n0 = values.shape[0] - n1
    # Centre first so the sums of squares do not lose precision.
    centred = values - values.mean(axis=0, keepdims=True)
    total_sum = centred.sum(axis=0)[None, :]
    total_sq = (centred**2).sum(axis=0)[None, :]
    sum1 = g @ centred
    sq1 = g @ (centred**2)
    sum0 = total_sum - sum1
    sq0 = total_sq - sq1
    with np.errstate(divide="ignore", invalid="ignore"):
        mean1 = sum1 / n1
        mean0 = sum0 / n0
        ss1 = np.maximum(sq1 - n1 * mean1**2, 0.0)
        ss0 = np.maximum(sq0 - n0 * mean0**2, 0.0)
        pooled = np.sqrt((ss1 + ss0) / (n1 + n0 - 2))
        difference = mean1 - mean0
        d = difference / pooled
    # Relative tolerance: a zero spread up to rounding.
    scale = np.abs(values).max(axis=0, initial=0.0)[None, :]
    flat = pooled <= 1e-12 * np.maximum(scale, 1e-300)
    same = np.abs(difference) <= 1e-12 * np.maximum(scale, 1e-300)
    with np.errstate(invalid="ignore"):
        d = np.where(flat, np.where(same, 0.0, np.sign(difference) * np.inf), d)
    invalid = (n1 < 1) | (n0 < 1) | (n1 + n0 < 3)
    return np.where(invalid, np.nan, d)


def wasserstein_normalised(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance between in- and out-group, per unit z-scored, [A, U].

    Each unit's values are z-scored over all N images (mean 0, SD 1; a unit
    with SD 0 gives distance 0), then ``W1 = integral |F_in(t) - F_out(t)| dt``
    between the two empirical distributions. Unsigned, >= 0; NaN where a
    group is empty.
    """
    values = _as_values(values)
    groups = _as_groups(groups, values.shape[0])
    count, _ = values.shape
    sd = values.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (values - values.mean(axis=0)) / sd, 0.0)
    order = np.argsort(z, axis=0, kind="stable")
    ordered = np.take_along_axis(z, order, axis=0)
    gaps = np.diff(ordered, axis=0)  # [N-1, U]
    result = np.empty((groups.shape[0], values.shape[1]))
    for a, group in enumerate(groups):
        n1 = int(group.sum())
        n0 = count - n1
        if n1 == 0 or n0 == 0:
            result[a] = np.nan
            continue
        member = group[order]  # [N, U] in sorted order
        cdf_in = np.cumsum(member, axis=0)[:-1] / n1
        cdf_out = np.cumsum(~member, axis=0)[:-1] / n0
        result[a] = (np.abs(cdf_in - cdf_out) * gaps).sum(axis=0)
    return result


@dataclasses.dataclass
class StratifiedTest:
    """Van Elteren stratified rank-sum test for A concepts x U units.

    Attributes:
        auc: float64 [A, U] weighted mean of within-stratum AUCs (weights
            ``n1_s * n0_s / (n_s + 1)``, the van Elteren weights on the U scale);
            NaN where no stratum holds both groups.
        delta: ``2 * auc - 1``.
        z: float64 [A, U] van Elteren statistic (tie corrected, no continuity).
        p: float64 [A, U] two-sided p-value.
        strata_used: int64 [A] strata that held both groups.
    """

    auc: np.ndarray
    delta: np.ndarray
    z: np.ndarray
    p: np.ndarray
    strata_used: np.ndarray


def stratified_rank_test(values: np.ndarray, groups: np.ndarray, strata: np.ndarray) -> StratifiedTest:
    """Compare in- and out-group only within strata (e.g. emotions), then pool.

    Within stratum s, ``U_s`` is the Mann-Whitney U of the in-group; van
    Elteren's statistic is ``T = sum_s (U_s - E U_s) / (n_s + 1)`` with
    variance ``sum_s Var(U_s) / (n_s + 1)**2`` (tie corrected within s). The
    pooled effect size is ``sum_s U_s / (n_s + 1) / sum_s n1_s n0_s / (n_s + 1)``,
    a weighted mean of within-stratum AUCs: a concept that merely co-occurs
    with a stratum (an emotion) no longer moves it.

    Args:
        values: [N, U].
        groups: bool [A, N].
        strata: [N] stratum label of each image (any hashable ints).
    """
    values = _as_values(values)
    groups = _as_groups(groups, values.shape[0])
    strata = np.asarray(strata)
    if strata.shape != (values.shape[0],):
        raise ValueError(f"strata must be [N={values.shape[0]}], got {strata.shape}")
    concepts, units = groups.shape[0], values.shape[1]
    labels, stratum_of = np.unique(strata, return_inverse=True)
    stratum_of = stratum_of.reshape(-1)
    count = len(labels)
    if np.isnan(values).any():  # NaNs: each stratum ranked apart, as rank_columns orders them
        ranks = np.zeros(values.shape)
        tie_term = np.zeros((count, units))
        for index in range(count):
            members = stratum_of == index
            ranks[members], tie_term[index] = rank_columns(values[members])
    else:  # every stratum ranked in one sort
        ranks, tie_term = _ranks_within(values, stratum_of, count)
    # All strata at once, [S, A, U]; every rank sum is of halves (exact), every other step elementwise.
    member = stratum_of[None, :] == np.arange(count)[:, None]  # [S, N]
    inner = groups[None, :, :] & member[:, None, :]  # [S, A, N]
    n1 = inner.sum(axis=2).astype(np.int64)
    size = member.sum(axis=1)
    n0 = size[:, None] - n1
    both = ((n1 > 0) & (n0 > 0))[:, :, None]  # strata of fewer than 2 never hold both groups
    u = inner.astype(np.float64) @ ranks - (n1 * (n1 + 1) / 2.0)[:, :, None]
    weight = [1.0 / (n + 1) for n in size.tolist()]
    pairs = (n1 * n0).astype(np.float64)[:, :, None]
    n = (n1 + n0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # _u_variance per stratum
        correction = np.where(n[:, :, None] > 1, tie_term[:, None, :] / (n * (n - 1))[:, :, None], 0.0)
    u_variance = (n1 * n0)[:, :, None] / 12.0 * ((n + 1)[:, :, None] - correction)
    statistic = np.zeros((concepts, units))
    variance = np.zeros((concepts, units))
    weighted_u = np.zeros((concepts, units))
    weight_sum = np.zeros((concepts, 1))
    for index, w in enumerate(weight):  # summed stratum by stratum, in label order
        statistic += np.where(both[index], w * (u[index] - pairs[index] / 2.0), 0.0)
        variance += np.where(both[index], w**2 * u_variance[index], 0.0)
        weighted_u += np.where(both[index], w * u[index], 0.0)
        weight_sum += np.where(both[index], w * pairs[index], 0.0)
    used = both[:, :, 0].sum(axis=0).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where(weight_sum > 0, weighted_u / weight_sum, np.nan)
        z = np.where(variance > 0, statistic / np.sqrt(variance), 0.0)
    p = np.clip(2.0 * _normal_sf(np.abs(z)), 0.0, 1.0)
    none = used == 0
    z[none] = np.nan
    p[none] = np.nan
    return StratifiedTest(auc=auc, delta=cliffs_delta(auc), z=z, p=p, strata_used=used)


def _ranks_within(values: np.ndarray, stratum_of: np.ndarray, strata: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_columns` within each stratum, from one sort: (ranks [N, U], tie terms [strata, U]).

    ``stratum_of`` int [N] in ``0..strata-1``. Row i's rank equals that of
    ``rank_columns(values[stratum_of == s])`` (s its stratum), exactly: both
    are integer positions halved. Values must not be NaN (rank_columns orders
    NaNs by its own sort).
    """
    count, units = values.shape
    order = np.lexsort((values, np.broadcast_to(stratum_of[:, None], (count, units))), axis=0)  # by stratum, then value
    ordered = np.take_along_axis(values, order, axis=0)
    ordered_stratum = stratum_of[order]
    starts = np.ones((count, units), dtype=bool)  # a tie group starts where the value or the stratum changes
    starts[1:] = (ordered[1:] != ordered[:-1]) | (ordered_stratum[1:] != ordered_stratum[:-1])
    ends = np.ones((count, units), dtype=bool)
    ends[:-1] = starts[1:]
    position = np.arange(count)[:, None]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends, position, count - 1)[::-1], axis=0)[::-1]
    offset = np.concatenate([[0], np.cumsum(np.bincount(stratum_of, minlength=strata))])[ordered_stratum]
    ranks = np.empty((count, units))
    np.put_along_axis(ranks, order, ((first - offset) + (last - offset)) / 2.0 + 1.0, axis=0)
    sizes = (last - first + 1).astype(np.float64)
    tie_term = np.zeros((strata, units))
    np.add.at(tie_term, (ordered_stratum, np.broadcast_to(np.arange(units), (count, units))), np.where(starts, sizes**3 - sizes, 0.0))
    return ranks, tie_term


def bh_qvalues(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same shape as the input.

    NaN p-values are left out of the family and stay NaN. Matches
    ``scipy.stats.false_discovery_control(p, method="bh")`` on finite input.
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    q = np.full(flat.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(flat))
    m = finite.size
    if m == 0:
        return q.reshape(p.shape)
    if np.any((flat[finite] < 0) | (flat[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(flat[finite], kind="stable")
    ranked = flat[finite][order] * m / np.arange(1, m + 1)
    # q_(i) = min over j >= i of p_(j) m / j: a running minimum from the end.
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[finite[order]] = np.minimum(ranked, 1.0)
    return q.reshape(p.shape)


def presence_phi(groups: np.ndarray) -> np.ndarray:
    """Phi coefficient (Pearson correlation of 0/1 indicators) between concepts, [A, A].

    Concepts that are always or never present correlate 0 with everything.
    """
    g = _as_groups(groups, np.asarray(groups).shape[-1]).astype(np.float64)
    centred = g - g.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = (centred @ centred.T) / np.outer(norms, norms)
    return np.nan_to_num(phi, nan=0.0)


def chance_excess_p(hits: np.ndarray, chance: np.ndarray) -> float:
    """One-sided p-value that hits exceed chance (Poisson-binomial, normal approx.).

    Args:
        hits: bool or [0, 1] float [n], one outcome (or soft score) per image.
        chance: [n] each image's probability of a hit by chance.

    Returns:
        P(S >= observed) under independent Bernoulli(chance_i), with a 0.5
        continuity correction; NaN for n = 0; 1 when the variance is 0 and
        the observation does not exceed the mean, 0 when it does.
    """
    hits = np.asarray(hits, dtype=np.float64)
    chance = np.clip(np.asarray(chance, dtype=np.float64), 0.0, 1.0)
    if hits.size == 0:
        return float("nan")
    expected = chance.sum()
    variance = (chance * (1 - chance)).sum()
    observed = hits.sum()
    if variance <= 0:
        return 0.0 if observed > expected else 1.0
    z = (observed - expected - 0.5) / np.sqrt(variance)
    return float(_normal_sf(np.asarray(z)))


def group_means(values: np.ndarray, group_of: np.ndarray, count: int) -> np.ndarray:
    """Mean of the rows of each group: ``[G, U]`` from ``values [N, U]`` and ``group_of [N]``.

    ``group_of[n]`` is row n's group in ``0..count-1``, or -1 to leave the row
    out. A group without rows is NaN. This is how frames become one value per
    sequence (or subject) before any test: near-copies of one face must not
    count as independent observations.
    """
    values = _as_values(values)
    group_of = np.asarray(group_of, dtype=np.int64)
    if group_of.shape != (values.shape[0],):
        raise ValueError(f"group_of must be [N={values.shape[0]}], got {group_of.shape}")
    keep = group_of >= 0
    sums = np.zeros((count, values.shape[1]))
    np.add.at(sums, group_of[keep], values[keep])
    sizes = np.bincount(group_of[keep], minlength=count).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / sizes[:, None]


def weighted_auc(values: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with observation weights, for many weight vectors at once: ``[B, A, U]``.

    With integer weights (bootstrap counts) this is exactly the AUC of the
    sample in which observation g appears ``weights[b, g]`` times, so a
    subject bootstrap needs no copying: rank once, then every resample is a
    cumulative sum. Weight 0 leaves an observation out (e.g. another fold).

    For in-group weight ``W1`` the weighted U is
    ``sum_{i in} w_i C(i) - W1**2 / 2`` with
    ``C(i) = sum_j w_j ([x_j < x_i] + [x_j = x_i] / 2)`` over all observations
    (the in-group's own pairs contribute exactly ``W1**2 / 2``);
    AUC = ``U / (W1 W0)``, NaN where a group has no weight.

    Args:
        values: [G, U] one value per observation and unit.
        groups: bool [A, G] in-group of each concept.
        weights: [B, G] non-negative weight of each observation per resample.
    """
    values = _as_values(values)
    count, units = values.shape
    groups = _as_groups(groups, count)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 1:
        weights = weights[None]
    if weights.shape[1] != count:
        raise ValueError(f"weights must be [B, {count}], got {weights.shape}")
    order = np.argsort(values, axis=0, kind="stable")  # [G, U]
    ordered = np.take_along_axis(values, order, axis=0)
    starts = np.ones((count, units), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    # Everything below runs in sorted order per unit (no permutation back):
    # with integer weights every sum is exact, so the order does not matter.
    sorted_weights = weights[:, order]  # [B, G, U]
    cumulative = np.cumsum(sorted_weights, axis=1)
    if starts.all():  # no ties: weight strictly below = cumulative minus own, tied = own
        credit = cumulative - 0.5 * sorted_weights
    else:
        ends = np.ones((count, units), dtype=bool)
        ends[:-1] = starts[1:]
        position = np.arange(count)[:, None]
        first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
        last = np.minimum.accumulate(np.where(ends, position, count - 1)[::-1], axis=0)[::-1]
        padded = np.concatenate([np.zeros((weights.shape[0], 1, units)), cumulative], axis=1)
        columns = np.arange(units)[None, :]
        below = padded[:, first, columns]  # weight strictly below the tie group
        credit = below + 0.5 * (padded[:, last + 1, columns] - below)
    credit *= sorted_weights  # w_i C(i), sorted
    sorted_groups = groups.astype(np.float64)[:, order]  # [A, G, U]
    w1 = weights @ groups.T.astype(np.float64)  # [B, A]
    w0 = weights.sum(axis=1)[:, None] - w1
    u = np.einsum("bgu,agu->bau", credit, sorted_groups) - 0.5 * (w1**2)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u / (w1 * w0)[:, :, None]
    return np.where(((w1 > 0) & (w0 > 0))[:, :, None], auc, np.nan)


def subject_bootstrap_auc(
    values: np.ndarray,
    group: np.ndarray,
    owner: np.ndarray,
    counts: np.ndarray,
    block_of: np.ndarray,
    subsets: np.ndarray,
) -> np.ndarray:
    """Mann-Whitney AUC of subject-bootstrap resamples, each restricted to unions of subject blocks: ``[R, B, U]``.

    In a subject bootstrap, resample b repeats subject s ``counts[b, s]`` times
    and every observation inherits its subject's count. Its U statistic is
    then a quadratic form in the counts: ``U_b = c_b^T M c_b`` with
    ``M[s, t] = sum_{i in group, owner s} sum_{j out of group, owner t} ([x_j < x_i] + [x_j = x_i] / 2)``.
    M is computed once per unit, so all resamples cost one matrix product over
    subjects, however many observations there are (:func:`weighted_auc` does
    the same with a cumulative sum over every resample and observation).
    Subjects fall into blocks (e.g. the folds of a subject k-fold); subset r
    keeps the subjects of the blocks ``subsets[r]``, i.e. the blocks [f, g]
    of the form with f and g both kept.

    With integer counts every sum is of integers and halves, so the result
    equals ``weighted_auc(values[rows], group[rows], counts[:, owner[rows]])``
    over the subset's rows bit for bit (ties and NaNs ordered as there).

    Args:
        values: [G, U] one value per observation and unit.
        group: bool [G] in-group observations.
        owner: int [G] subject of each observation, in ``0..S-1``.
        counts: [B, S] non-negative times each subject is drawn, per resample.
        block_of: int [S] block of each subject, in ``0..K-1``.
        subsets: bool [R, K] blocks kept in each subset.

    Returns:
        float64 [R, B, U]; NaN where a subset's resample has no in-group or no out-group weight.
    """
    values = _as_values(values)
    count, units = values.shape
    group = np.asarray(group, dtype=bool)
    owner = np.asarray(owner, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim == 1:
        counts = counts[None]
    block_of = np.asarray(block_of, dtype=np.int64)
    subsets = np.asarray(subsets, dtype=bool)
    if group.shape != (count,) or owner.shape != (count,):
        raise ValueError(f"group and owner must be [G={count}], got {group.shape} and {owner.shape}")
    if block_of.shape != (counts.shape[1],):
        raise ValueError(f"block_of must be [S={counts.shape[1]}], got {block_of.shape}")
    blocks = subsets.shape[1]
    # Tie groups as weighted_auc sees them: a stable sort, a new group where the sorted value changes (NaN != NaN).
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    starts = np.ones((count, units), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    tie_rank = np.empty((count, units), dtype=np.int64)
    np.put_along_axis(tie_rank, order, np.cumsum(starts, axis=0), axis=0)
    inside = np.flatnonzero(group)
    inside = inside[np.argsort(owner[inside], kind="stable")]
    outside = np.flatnonzero(~group)
    subjects_in, first_in = np.unique(owner[inside], return_index=True)
    subjects_out, column_out = np.unique(owner[outside], return_inverse=True)
    # Twice M (integers), restricted to subjects with in-group rows x subjects with out-group rows: [U, S1, S0].
    twice_m = np.zeros((units, subjects_in.size, subjects_out.size))
    if inside.size and outside.size:
        for unit in range(units):
            rank_out = tie_rank[outside, unit]
            by_rank = np.argsort(rank_out, kind="stable")
            # below[p, t]: out-group rows of subject t among the p lowest-ranked out-group rows.
            below = np.zeros((outside.size + 1, subjects_out.size))
            below[np.arange(1, outside.size + 1), column_out[by_rank]] = 1.0
            np.cumsum(below, axis=0, out=below)
            rank_in = tie_rank[inside, unit]
            sorted_out = rank_out[by_rank]
            strictly = np.searchsorted(sorted_out, rank_in, side="left")
            through = np.searchsorted(sorted_out, rank_in, side="right")
            twice_m[unit] = np.add.reduceat(below[strictly] + below[through], first_in, axis=0)
    counts_in, counts_out = counts[:, subjects_in], counts[:, subjects_out]
    block_in, block_out = block_of[subjects_in], block_of[subjects_out]
    out_blocks = (block_out[:, None] == np.arange(blocks)[None]).astype(np.float64)  # [S0, K]
    resamples = counts.shape[0]
    pair_sums = np.zeros((units, resamples, blocks, blocks))  # twice U of (in-group block f, out-group block g)
    for f in range(blocks):
        rows = block_in == f
        if rows.any():
            partial = counts_in[:, rows] @ twice_m[:, rows, :]  # [U, B, S0]
            pair_sums[:, :, f, :] = (partial * counts_out[None]) @ out_blocks
    block_matrix = (block_of[:, None] == np.arange(blocks)[None]).astype(np.float64)  # [S, K]
    n_in = np.bincount(owner[inside], minlength=counts.shape[1]).astype(np.float64)
    n_out = np.bincount(owner[outside], minlength=counts.shape[1]).astype(np.float64)
    keep = subsets.astype(np.float64)
    w1 = counts @ (block_matrix * n_in[:, None]) @ keep.T  # [B, R]
    w0 = counts @ (block_matrix * n_out[:, None]) @ keep.T
    u = 0.5 * np.einsum("ubfg,rf,rg->rbu", pair_sums, keep, keep)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u / (w1 * w0).T[:, :, None]
    return np.where(((w1 > 0) & (w0 > 0)).T[:, :, None], auc, np.nan)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """The central ``level`` percentile interval of the finite ``samples`` (None, None if there are none)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)
