"""The au-distance unit metric: definitions against scipy, q-values, planted mapping, controls."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from interpret_core import get_unit_metric
from interpret_core.api.errors import CapabilityError, DataError, UsageError
from interpret_core.analysis.unit_scan import UnitScan
from interp_metrics.au_distance import AUDistance, au_presence
from interp_metrics.planted import INVISIBLE_AU, SHADOW_AU, PlantedDataset, PlantedModel


@pytest.fixture(scope="module")
def planted():
    model, data = PlantedModel(), PlantedDataset(count=240, seed=0)
    from interpret_core.analysis.unit_scan import scan_units

    return model, data, scan_units(model, data, model.layers, batch_size=64)


def _fake_scan(seed=0, n=80, units=(5, 3)):
    """A scan of random maxima (with ties and a dead unit) and random AUs, no model needed."""
    rng = np.random.default_rng(seed)
    layers = ["a", "b"]
    maxima = {}
    for layer, u in zip(layers, units):
        values = rng.gamma(2.0, size=(n, u)).astype(np.float32)
        values[:, 0] = np.maximum(values[:, 0] - 2.0, 0.0)  # ReLU-like zeros (ties)
        maxima[layer] = values
    maxima["b"][:, 2] = 1.0  # dead unit
    aus = []
    for i in range(n):
        sample = {}
        for au, p in ((1, 0.3), (2, 0.5)):
            if rng.random() < p:
                sample[au] = int(rng.integers(0, 5))
        if i < 3:
            sample[9] = 1  # too rare to score
        aus.append(sample)
    shapes = {layer: (u, 1, 1) for layer, u in zip(layers, units)}
    scan = UnitScan(
        layers=layers,
        indices=np.arange(n),
        maxima=maxima,
        argmax={l: np.zeros((n, shapes[l][0], 2), np.int32) for l in layers},
        topk={l: np.zeros((shapes[l][0], 1), np.int64) for l in layers},
        shapes=shapes,
        aus=aus,
        emotions=rng.integers(0, 3, size=n),
        input_size=(1, 8, 8),
    )
    return scan, aus


def _rows(scores):
    return {(r["layer"], r["unit"], r["au"]): r for r in scores}


@pytest.mark.parametrize("distance", ["delta", "abs-delta", "auc", "smd", "wasserstein"])
def test_distances_p_and_q_values_match_direct_scipy_computations(distance):
    scan, aus = _fake_scan()
    metric = AUDistance(selection="paper", distance=distance, min_observations=5, locate="none")
    table = metric.score(scan, scan.layers, aus, scan.emotions)
    rows = _rows(table["scores"])
    assert {r["au"] for r in table["scores"]} == {1, 2}  # AU9 is too rare
    assert table["skipped_aus"] == [9]
    p_all = []
    for layer in scan.layers:
        values = scan.maxima[layer].astype(np.float64)
        for unit in range(values.shape[1]):
            for au in (1, 2):
                row = rows[(layer, unit, au)]
                has = np.array([au in a for a in aus])
                x, y = values[has, unit], values[~has, unit]
                mw = scipy.stats.mannwhitneyu(x, y, method="asymptotic")
                auc = mw.statistic / (len(x) * len(y))
                if distance == "delta":
                    expected = 2 * auc - 1
                elif distance == "abs-delta":
                    expected = abs(2 * auc - 1)
                elif distance == "auc":
                    expected = auc
                elif distance == "smd":
                    pooled = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
                    expected = (x.mean() - y.mean()) / pooled if pooled > 0 else 0.0
                else:
                    sd = values[:, unit].std()
                    z = (values[:, unit] - values[:, unit].mean()) / sd if sd > 0 else np.zeros(len(values))
                    expected = scipy.stats.wasserstein_distance(z[has], z[~has])
                assert row["distance"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
                assert row["auc"] == pytest.approx(auc)
                expected_p = 1.0 if np.ptp(values[:, unit]) == 0 else mw.pvalue
                assert row["p_value"] == pytest.approx(expected_p, rel=1e-9)
                assert row["n_with"] == has.sum() and row["n_without"] == (~has).sum()
                p_all.append((row, expected_p))
    q = scipy.stats.false_discovery_control([p for _, p in p_all], method="bh")
    for (row, _), expected_q in zip(p_all, q):
        assert row["q_value"] == pytest.approx(expected_q, rel=1e-9)


def test_au_intensity_zero_counts_as_present():
    numbers, presence = au_presence([{1: 0}, {}, {1: 3, 4: 0}])
    assert numbers == [1, 4]
    np.testing.assert_array_equal(presence, [[True, False, True], [False, False, True]])


def test_paper_selection_maps_planted_detectors_with_high_spatial_agreement(planted):
    model, data, scan = planted
    result = AUDistance(selection="paper").evaluate(model, data, ["act1"], scan=scan)
    assert result.extra["statistical_unit"] == "frame" and result.extra["selection"] == "paper"
    mapping = {row["au"]: row for row in result.mapping}
    for unit, au in enumerate((1, 2, 4, 12)):
        row = mapping[au]
        assert (row["layer"], row["unit"]) == ("act1", unit)
        assert row["distance"] > 0.95 and row["significant"] and row["q_value"] < 1e-10
        assert row["spatial_agreement"] > 0.9 and row["chance"] < 0.2 and row["agreement_p"] < 1e-6
        assert row["agreement_images"] == row["n_with"]
    # The invisible AU has no detector; the shadow AU is found only through its partner.
    assert not mapping[INVISIBLE_AU]["significant"] and mapping[INVISIBLE_AU]["verdict"] == "none"
    assert all(mapping[au]["verdict"] == "localised" for au in (1, 2, 4, 12))
    assert all("in-sample" in row["selected_on"] for row in result.mapping)
    shadow = mapping[SHADOW_AU]
    assert shadow["unit"] == 0 and shadow["significant"] and shadow["partner_au"] == 1
    assert abs(shadow["delta_given_partner"]) < 0.2 < 0.9 < mapping[1]["delta_given_partner"]
    assert shadow["spatial_agreement"] < shadow["chance"] + 0.05
    # Units -> AU: each detector's most sensitive AU is its own.
    units = {(r["layer"], r["unit"]): r["au"] for r in result.extra["unit_mapping"]}
    assert [units[("act1", u)] for u in range(4)] == [1, 2, 4, 12]
    # Every (unit, AU) pair has a row with the metric's concept name.
    assert len(result.scores) == 6 * 6 and all(r["concept"] == f"AU{r['au']}" for r in result.scores)


def test_planted_mapping_across_layers_and_units_per_au(planted):
    model, data, scan = planted
    result = AUDistance(selection="paper", units_per_au="2", locate="none").evaluate(model, data, model.layers, scan=scan)
    rows = [r for r in result.mapping if r["au"] == 2]
    # Two units per AU, best first; ties go to the shallower layer, then the lower unit.
    assert [r["rank"] for r in rows] == [0, 1] and (rows[0]["layer"], rows[0]["unit"]) == ("act1", 1)
    distances = {(r["layer"], r["unit"]): r["distance"] for r in result.scores if r["au"] == 2}
    ranked = sorted(distances.values(), reverse=True)
    assert [r["distance"] for r in rows] == ranked[:2]
    # act2 unit 0 is a pooled copy of act1 unit 1, as good a detector.
    assert distances[("act2", 0)] == distances[("act1", 1)] == 1.0
    per_layer = {(r["au"], r["layer"]): r["unit"] for r in result.extra["layer_mapping"]}
    assert per_layer[(1, "act2")] == 1 and per_layer[(2, "act2")] == 0 and per_layer[(12, "act2")] == 3
    assert all(r["spatial_agreement"] is None for r in result.mapping)


def test_projection_locating_agrees_with_receptive_field_on_planted_units(planted):
    from interp_metrics.planted import UnitMaxGradient

    model, data, scan = planted
    with pytest.raises(CapabilityError, match="projection"):
        AUDistance(selection="paper", locate="projection").evaluate(model, data, ["act1"], scan=scan)
    result = AUDistance(selection="paper", locate="projection", controls=False).evaluate(
        model, data, ["act1"], scan=scan, method=UnitMaxGradient())
    mapping = {row["au"]: row for row in result.mapping}
    for au in (1, 2, 4, 12):
        assert mapping[au]["spatial_agreement"] > 0.9 > 0.2 > mapping[au]["chance"]
        assert mapping[au]["agreement_p"] < 1e-6
    assert "delta_within_emotion" not in result.scores[0]


def test_emotion_stratified_control_is_reported_and_bounded(planted):
    model, data, scan = planted
    result = AUDistance(selection="paper", locate="none").evaluate(model, data, ["act1"], scan=scan)
    for row in result.scores:
        assert -1.0 <= row["delta_within_emotion"] <= 1.0
        assert 0.0 <= row["p_within_emotion"] <= 1.0 and 0.0 <= row["q_within_emotion"] <= 1.0
    detector = _rows(result.scores)[("act1", 0, 1)]
    assert detector["delta_within_emotion"] > 0.95


def test_scan_inside_evaluate_equals_passed_scan(planted):
    model, data, scan = planted
    inside = AUDistance(locate="receptive-field", bootstrap=0).evaluate(model, data, ["act1"])
    outside = AUDistance(locate="receptive-field", bootstrap=0).evaluate(model, data, ["act1"], scan=scan)
    assert [r["distance"] for r in inside.scores] == [r["distance"] for r in outside.scores]


def test_options_are_validated_and_strings_accepted():
    metric = get_unit_metric("au-distance", distance="wasserstein", min_observations="3", alpha="0.1", controls="false",
                             include_neutral="true", folds="3", bootstrap="0")
    options = metric.options()
    assert options["min_observations"] == 3 and options["alpha"] == 0.1 and metric.controls is False
    assert options["selection"] == "held-out" and options["unit"] == "sequence" and options["locate"] == "peak"
    assert options["include_neutral"] is True and options["folds"] == 3 and options["bootstrap"] == 0
    paper = AUDistance(selection="paper").options()
    assert (paper["unit"], paper["include_neutral"], paper["locate"]) == ("frame", True, "receptive-field")
    with pytest.raises(UsageError, match="min_observations"):
        AUDistance(min_images=10)
    with pytest.raises(UsageError, match="paper"):
        AUDistance(selection="paper", unit="sequence")
    with pytest.raises(UsageError, match="unknown unit"):
        AUDistance(unit="video")
    with pytest.raises(UsageError, match="selection"):
        AUDistance(selection="best")
    with pytest.raises(UsageError, match="unknown distance"):
        AUDistance(distance="cohen")
    with pytest.raises(UsageError, match="min_observations"):
        AUDistance(min_observations="many")
    with pytest.raises(UsageError, match="alpha"):
        AUDistance(alpha=2)
    with pytest.raises(UsageError, match="locate"):
        AUDistance(locate="centroid")
    with pytest.raises(UsageError, match="unknown_option"):
        AUDistance(unknown_option=1)


def test_too_few_images_is_a_data_error_naming_the_fix():
    scan, aus = _fake_scan(n=12)
    with pytest.raises(DataError, match="min_observations"):
        AUDistance(selection="paper", min_observations=10).score(scan, scan.layers, aus, scan.emotions)


def test_spatial_agreement_maps_a_resized_input_back_to_image_pixels():
    # The model sees the 32x32 images upsampled to 64x64; regions stay in image pixels.
    model, data = PlantedModel(input_size=(1, 64, 64)), PlantedDataset(count=120, seed=1)
    result = AUDistance(selection="paper", min_observations=5, controls=False).evaluate(model, data, ["act1"])
    mapping = {row["au"]: row for row in result.mapping}
    for unit, au in enumerate((1, 2, 4, 12)):
        assert mapping[au]["unit"] == unit
        assert mapping[au]["spatial_agreement"] > 0.9 > 0.2 > mapping[au]["chance"]


def test_a_significant_negative_effect_is_not_a_significant_detector():
    scan, aus = _fake_scan(n=120)
    has = np.array([1 in a for a in aus])
    scan.maxima["a"][:, 1] = np.where(has, 0.0, 5.0) + np.arange(120) * 1e-3  # fires only WITHOUT AU1
    table = AUDistance(selection="paper", min_observations=5, distance="abs-delta", locate="none").score(
        scan, scan.layers, aus, scan.emotions)
    row = next(r for r in table["mapping"] if r["au"] == 1)
    assert (row["layer"], row["unit"]) == ("a", 1) and row["significant"] and row["distance"] == 1.0
    table = AUDistance(selection="paper", min_observations=5, distance="delta", locate="none").score(
        scan, scan.layers, aus, scan.emotions)
    negative = next(r for r in table["scores"] if (r["layer"], r["unit"], r["au"]) == ("a", 1, 1))
    assert negative["distance"] == -1.0 and negative["q_value"] < 1e-10
    units = {(r["layer"], r["unit"]): r for r in table["unit_mapping"]}
    assert not (units[("a", 1)]["au"] == 1 and units[("a", 1)]["significant"])


# -- the default: sequences, held-out selection, verdicts ----------------------------------------------------------
@pytest.fixture(scope="module")
def heldout(planted):
    from interp_metrics.planted import UnitMaxGradient

    model, data, scan = planted
    return AUDistance(localise_per_fold=6, bootstrap=50).evaluate(model, data, model.layers, scan=scan, method=UnitMaxGradient())


def test_held_out_default_recovers_every_planted_au_as_localised(heldout):
    result = heldout
    assert result.extra["statistical_unit"] == "sequence" and result.extra["selection"] == "held-out"
    mapping = {row["au"]: row for row in result.mapping}
    for unit, au in enumerate((1, 2, 4, 12)):
        row = mapping[au]
        assert row["verdict"] == "localised", row["verdict_reason"]
        # act2 unit k' is a pooled copy of act1's detector: either is a correct unit.
        assert (row["layer"], row["unit"]) in {("act1", unit), ("act2", {0: 1, 1: 0}.get(unit, unit))}
        assert row["delta"] > 0.95 and row["q_value"] < 1e-6
        assert row["spatial_agreement"] > 0.9 > 0.3 > row["chance"] and row["agreement_q"] < 1e-6
        assert row["stability"]["selection_frequency"] > 0.9 and row["stability"]["resamples"] == 50
        low, high = row["stability"]["agreement_interval"]
        assert low <= row["spatial_agreement"] <= high
        assert row["oracle"]["spatial_agreement"] >= row["spatial_agreement"] - 1e-12
        assert "folds" in row["selected_on"] and row["statistical_unit"] == "sequence"
    assert mapping[INVISIBLE_AU]["verdict"] != "localised"
    assert mapping[SHADOW_AU]["verdict"] != "localised"
    # The shadow AU discriminates through AU1's unit, whose peak is nowhere near the shadow's region.
    assert mapping[SHADOW_AU]["spatial_agreement"] <= mapping[SHADOW_AU]["chance"]
    for row in result.mapping:
        for key in ("verdict", "selected_on", "delta", "q_value", "spatial_agreement", "chance", "null_agreement",
                    "stability", "oracle", "oracle_unit", "oracle_agreement", "n_with", "n_without"):
            assert key in row, key


def test_counts_are_in_the_statistical_unit_and_neutral_frames_are_left_out(planted):
    from interpret_core.analysis.unit_scan import grouping, observations

    model, data, scan = planted
    metric = AUDistance(locate="receptive-field", bootstrap=0)
    result = metric.evaluate(model, data, ["act1"], scan=scan)
    numbers, presence = au_presence(scan.aus)
    subjects, sequences = grouping(data, scan.indices)
    expressive = scan.emotions != 0  # class 0 is "neutral"
    obs = observations("sequence", subjects, sequences, presence, scan.emotions, expressive)
    with_neutral = AUDistance(locate="receptive-field", bootstrap=0, include_neutral=True).evaluate(model, data, ["act1"], scan=scan)
    all_obs = observations("sequence", subjects, sequences, presence, scan.emotions)
    for summary, full in zip(result.extra["aus"], with_neutral.extra["aus"]):
        a = numbers.index(summary["au"])
        assert summary["n_with"] == obs.presence[a].sum() and summary["n_without"] == len(obs) - obs.presence[a].sum()
        assert full["n_without"] == len(all_obs) - all_obs.presence[a].sum() > summary["n_without"]
    # Per-sequence means, then Mann-Whitney: exactly scipy on the aggregated values.
    values = obs.means(scan.maxima["act1"])
    rows = _rows(result.scores)
    for au in (1, 4):
        has = obs.presence[numbers.index(au)]
        for unit in range(values.shape[1]):
            expected = scipy.stats.mannwhitneyu(values[has, unit], values[~has, unit], method="asymptotic")
            row = rows[("act1", unit, au)]
            assert row["p_value"] == pytest.approx(1.0 if np.ptp(values[:, unit]) == 0 else expected.pvalue, rel=1e-9)
            assert row["statistical_unit"] == "sequence"


def test_held_out_delta_is_van_elteren_over_folds_of_each_folds_selected_unit(planted, heldout):
    """Recompute one AU's held-out statistics from the folds with scipy."""
    from interpret_core.analysis.splits import subject_kfold
    from interpret_core.analysis.unit_scan import grouping, observations

    model, data, scan = planted
    numbers, presence = au_presence(scan.aus)
    subjects, sequences = grouping(data, scan.indices)
    obs = observations("sequence", subjects, sequences, presence, scan.emotions, scan.emotions != 0)
    fold_of = np.empty(len(obs), dtype=np.int64)
    for fold in subject_kfold(obs.subjects, k=5, seed=0):
        fold_of[fold.test] = fold.index
    row = next(r for r in heldout.mapping if r["au"] == 6)
    has = obs.presence[numbers.index(6)]
    statistic = variance = weighted = weights = 0.0
    for entry in row["fold_units"]:
        f = entry["fold"]
        column = obs.means(scan.maxima[entry["layer"]])[:, entry["unit"]][fold_of == f]
        inside = has[fold_of == f]
        x, y = column[inside], column[~inside]
        u = scipy.stats.mannwhitneyu(x, y).statistic
        n, n1, n0 = len(column), len(x), len(y)
        ranks_ties = np.unique(column, return_counts=True)[1]
        var_u = n1 * n0 / 12 * ((n + 1) - (ranks_ties**3 - ranks_ties).sum() / (n * (n - 1)))
        statistic += (u - n1 * n0 / 2) / (n + 1)
        variance += var_u / (n + 1) ** 2
        weighted += u / (n + 1)
        weights += n1 * n0 / (n + 1)
    assert row["delta"] == pytest.approx(2 * weighted / weights - 1, rel=1e-9)
    z = statistic / np.sqrt(variance)
    assert row["p_value"] == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)


def test_repeated_frames_make_a_frame_level_test_call_a_null_unit_significant_and_the_default_does_not():
    """Planted: 40 sequences of 8 near-copies; AU5 leaves no trace, so every unit is null for it."""
    from interpret_core.analysis.unit_scan import scan_units

    model = PlantedModel()
    for seed in (0, 3, 5):
        data = PlantedDataset(count=320, seed=seed, repeats=8)
        scan = scan_units(model, data, model.layers)
        significant = {}
        for unit in ("frame", "sequence"):
            result = AUDistance(unit=unit, locate="receptive-field", bootstrap=0).evaluate(model, data, model.layers, scan=scan)
            significant[unit] = [(r["layer"], r["unit"]) for r in result.scores
                                 if r["au"] == INVISIBLE_AU and r["q_value"] < 0.05 and r["distance"] > 0]
            assert result.extra["statistical_unit"] == unit
            if unit == "sequence":
                assert next(r for r in result.mapping if r["au"] == INVISIBLE_AU)["verdict"] != "localised"
                counts = next(a for a in result.extra["aus"] if a["au"] == INVISIBLE_AU)
                assert counts["n_with"] + counts["n_without"] <= 40  # sequences, not frames
        assert significant["frame"] and not significant["sequence"], (seed, significant)


def test_bootstrap_and_splits_are_deterministic_per_seed(planted):
    model, data, scan = planted
    runs = [AUDistance(locate="receptive-field", bootstrap=40, seed=seed).evaluate(model, data, model.layers, scan=scan)
            for seed in (0, 0, 1)]
    key = lambda result: [(r["au"], r["fold_units"], r["stability"], r["delta"]) for r in result.mapping if r["layer"]]
    assert key(runs[0]) == key(runs[1])
    assert key(runs[0]) != key(runs[2])  # other folds and resamples


def test_pool_all_makes_the_oracle_search_every_unit_and_leaves_selection_and_evidence_alone(planted):
    from interp_metrics.planted import UnitMaxGradient

    model, data, scan = planted
    units = sum(scan.maxima[layer].shape[1] for layer in model.layers)
    options = dict(localise_per_fold=6, bootstrap=50)
    few, every, wide = (AUDistance(**options, **extra).evaluate(model, data, model.layers, scan=scan, method=UnitMaxGradient())
                        for extra in ({}, {"pool": "all"}, {"candidates": units, "candidate_share": 0.0}))
    assert AUDistance(pool="all").options()["pool"] == "all" and "pool" in AUDistance().options()
    excess = lambda oracle: oracle["spatial_agreement"] - oracle["chance"]
    checked = 0
    for a, b, c in zip(few.mapping, every.mapping, wide.mapping):
        assert a["au"] == b["au"] == c["au"]
        # the same selection and held-out evidence: pool= only widens what the oracle and the bootstrap search
        for key in ("layer", "unit", "fold_units", "delta", "p_value", "q_value", "spatial_agreement", "chance",
                    "null_agreement", "agreement_q", "top_delta", "verdict"):
            assert a.get(key) == b.get(key), (a["au"], key)
        if not b["oracle"]:
            continue
        assert b["oracle"]["pool_size"] == units > a["oracle"]["pool_size"]
        assert excess(b["oracle"]) >= excess(a["oracle"]) - 1e-12
        assert 0 <= b["stability"]["selection_frequency"] <= 1 and b["stability"]["resamples"] == 50
        # Independently, through the pool of candidates: make every unit with a non-negative distance a
        # candidate. Where that is every unit, the oracle is the same; elsewhere pool=all searches more.
        if c["oracle"]["pool_size"] == units:
            assert (b["oracle_unit"], b["oracle_agreement"], b["oracle"]["chance"]) == \
                (c["oracle_unit"], c["oracle_agreement"], c["oracle"]["chance"])
            checked += 1
        else:
            assert excess(b["oracle"]) >= excess(c["oracle"]) - 1e-12
    assert checked >= 2
    for unit, au in enumerate((1, 2, 4, 12)):  # each AU's planted detector (or its act2 copy) is the best unit there is
        row = next(r for r in every.mapping if r["au"] == au)
        assert (row["oracle"]["layer"], row["oracle"]["unit"]) in {("act1", unit), ("act2", {0: 1, 1: 0}.get(unit, unit))}
        assert row["oracle_agreement"] > 0.9
    with pytest.raises(UsageError, match="pool"):
        AUDistance(pool="everything")
    with pytest.raises(UsageError, match="held-out"):
        AUDistance(selection="paper", pool="all")


def test_too_few_sequences_or_subjects_is_untestable_not_absent(planted):
    model, data, scan = planted
    result = AUDistance(locate="receptive-field", bootstrap=0, min_subjects=45).evaluate(model, data, ["act1"], scan=scan)
    by_au = {row["au"]: row for row in result.mapping}
    summary = {row["au"]: row for row in result.extra["aus"]}
    for au, row in by_au.items():
        if not summary[au]["scored"]:
            assert row["verdict"] == "untestable" and row["layer"] is None and "subjects" in row["verdict_reason"]
    assert any(not s["scored"] for s in summary.values()) and any(s["scored"] for s in summary.values())


def test_weighted_auc_is_the_auc_of_the_repeated_sample():
    from interpret_core.analysis.stats import percentile_interval, weighted_auc

    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, size=(40, 3)).astype(float)  # many ties
    groups = rng.random((2, 40)) < 0.4
    weights = rng.integers(0, 4, size=(5, 40))
    auc = weighted_auc(values, groups, weights)
    for b in range(5):
        for a in range(2):
            for u in range(3):
                x = np.repeat(values[groups[a], u], weights[b, groups[a]])
                y = np.repeat(values[~groups[a], u], weights[b, ~groups[a]])
                expected = scipy.stats.mannwhitneyu(x, y).statistic / (len(x) * len(y))
                assert auc[b, a, u] == pytest.approx(expected, abs=1e-12)
    samples = rng.standard_normal(500)
    assert percentile_interval(samples) == pytest.approx(tuple(np.percentile(samples, [2.5, 97.5])))


def test_batched_peak_localisation_equals_one_unit_at_a_time(synthfacs_root, monkeypatch):
    """The localiser's few pair-batched projection calls find every peak where per-unit calls do."""
    import interp_metrics.au_heldout as heldout_module
    from interpret_core import get_attribution, get_dataset, get_model
    from interpret_core.analysis.unit_scan import scan_units

    model, method = get_model("fer-cnn"), get_attribution("deconv")
    data = get_dataset("synthfacs", data_root=synthfacs_root, cache=False)
    scan = scan_units(model, data, model.layers, batch_size=64)
    made = []
    original = heldout_module._Localiser.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(heldout_module._Localiser, "__init__", keep)
    calls = []
    pairs = type(method).attribute_unit_pairs
    monkeypatch.setattr(type(method), "attribute_unit_pairs", lambda self, *a, **k: calls.append(a[1]) or pairs(self, *a, **k))
    result = AUDistance(min_observations=3, min_subjects=2, bootstrap=0).evaluate(model, data, model.layers, scan=scan,
                                                                                method=method)
    (localiser,) = made
    located = {key: peaks for key, peaks in localiser.cache.items() if peaks}
    assert sum(len(peaks) for peaks in located.values()) == localiser.projections == result.extra["projections"] > 50
    assert len({layer for layer, _ in located}) >= 2 and len(calls) <= len(model.layers) < len(located)
    for (layer, unit), peaks in located.items():
        frames = sorted(peaks)
        images = data.arrays(scan.indices[frames])[0]
        alone = method.attribute_units(model.module, model.to_input(images), layer, [unit])[:, 0]
        strength = alone.abs().sum(dim=1).numpy()
        ys, xs = np.divmod(strength.reshape(len(frames), -1).argmax(axis=1), strength.shape[2])
        assert [peaks[f] for f in frames] == list(zip(ys.tolist(), xs.tolist())), (layer, unit)


def test_an_au_that_one_fold_cannot_select_is_a_usage_error_not_a_crash(synthfacs_root, tmp_path, capsys):
    # With the minimums lowered, a fold's selection folds can hold no observation with an AU
    # (or none without it); this used to end in KeyError: 0 ("report it").
    from interpret_core.cli import main

    out = tmp_path / "run"
    code = main(["run", "--data-root", str(synthfacs_root), "--limit", "6", "--metric-option", "folds=2",
                 "--metric-option", "min_observations=1", "--metric-option", "min_subjects=1", "-o", str(out)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("error", "hint"))]
    assert code == 2
    assert errors[0].startswith("error: au-distance: AU") and "cannot be selected for held-out fold" in errors[0]
    assert errors[1].startswith("hint: use fewer folds")
    assert not (out / "results.json").exists()
