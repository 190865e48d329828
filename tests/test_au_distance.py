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
    metric = AUDistance(distance=distance, min_images=5, locate="none")
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


def test_planted_detectors_are_mapped_with_high_spatial_agreement(planted):
    model, data, scan = planted
    result = AUDistance().evaluate(model, data, ["act1"], scan=scan)
    mapping = {row["au"]: row for row in result.mapping}
    for unit, au in enumerate((1, 2, 4, 12)):
        row = mapping[au]
        assert (row["layer"], row["unit"]) == ("act1", unit)
        assert row["distance"] > 0.95 and row["significant"] and row["q_value"] < 1e-10
        assert row["spatial_agreement"] > 0.9 and row["chance"] < 0.2 and row["agreement_p"] < 1e-6
        assert row["agreement_images"] == row["n_with"]
    # The invisible AU has no detector; the shadow AU is found only through its partner.
    assert not mapping[INVISIBLE_AU]["significant"]
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
    result = AUDistance(units_per_au="2", locate="none").evaluate(model, data, model.layers, scan=scan)
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
        AUDistance(locate="projection").evaluate(model, data, ["act1"], scan=scan)
    result = AUDistance(locate="projection", controls=False).evaluate(model, data, ["act1"], scan=scan, method=UnitMaxGradient())
    mapping = {row["au"]: row for row in result.mapping}
    for au in (1, 2, 4, 12):
        assert mapping[au]["spatial_agreement"] > 0.9 > 0.2 > mapping[au]["chance"]
        assert mapping[au]["agreement_p"] < 1e-6
    assert "delta_within_emotion" not in result.scores[0]


def test_emotion_stratified_control_is_reported_and_bounded(planted):
    model, data, scan = planted
    result = AUDistance(locate="none").evaluate(model, data, ["act1"], scan=scan)
    for row in result.scores:
        assert -1.0 <= row["delta_within_emotion"] <= 1.0
        assert 0.0 <= row["p_within_emotion"] <= 1.0 and 0.0 <= row["q_within_emotion"] <= 1.0
    detector = _rows(result.scores)[("act1", 0, 1)]
    assert detector["delta_within_emotion"] > 0.95


def test_scan_inside_evaluate_equals_passed_scan(planted):
    model, data, scan = planted
    inside = AUDistance(locate="none").evaluate(model, data, ["act1"])
    outside = AUDistance(locate="none").evaluate(model, data, ["act1"], scan=scan)
    assert [r["distance"] for r in inside.scores] == [r["distance"] for r in outside.scores]


def test_options_are_validated_and_strings_accepted():
    metric = get_unit_metric("au-distance", distance="wasserstein", min_images="3", alpha="0.1", controls="false")
    assert metric.options()["min_images"] == 3 and metric.options()["alpha"] == 0.1 and metric.controls is False
    with pytest.raises(UsageError, match="unknown distance"):
        AUDistance(distance="cohen")
    with pytest.raises(UsageError, match="min_images"):
        AUDistance(min_images="many")
    with pytest.raises(UsageError, match="alpha"):
        AUDistance(alpha=2)
    with pytest.raises(UsageError, match="locate"):
        AUDistance(locate="centroid")
    with pytest.raises(UsageError, match="unknown_option"):
        AUDistance(unknown_option=1)


def test_too_few_images_is_a_data_error_naming_the_fix():
    scan, aus = _fake_scan(n=12)
    with pytest.raises(DataError, match="min_images"):
        AUDistance(min_images=10).score(scan, scan.layers, aus, scan.emotions)


def test_spatial_agreement_maps_a_resized_input_back_to_image_pixels():
    # The model sees the 32x32 images upsampled to 64x64; regions stay in image pixels.
    model, data = PlantedModel(input_size=(1, 64, 64)), PlantedDataset(count=120, seed=1)
    result = AUDistance(min_images=5, controls=False).evaluate(model, data, ["act1"])
    mapping = {row["au"]: row for row in result.mapping}
    for unit, au in enumerate((1, 2, 4, 12)):
        assert mapping[au]["unit"] == unit
        assert mapping[au]["spatial_agreement"] > 0.9 > 0.2 > mapping[au]["chance"]


def test_a_significant_negative_effect_is_not_a_significant_detector():
    scan, aus = _fake_scan(n=120)
    has = np.array([1 in a for a in aus])
    scan.maxima["a"][:, 1] = np.where(has, 0.0, 5.0) + np.arange(120) * 1e-3  # fires only WITHOUT AU1
    table = AUDistance(min_images=5, distance="abs-delta", locate="none").score(scan, scan.layers, aus, scan.emotions)
    row = next(r for r in table["mapping"] if r["au"] == 1)
    assert (row["layer"], row["unit"]) == ("a", 1) and row["significant"] and row["distance"] == 1.0
    table = AUDistance(min_images=5, distance="delta", locate="none").score(scan, scan.layers, aus, scan.emotions)
    negative = next(r for r in table["scores"] if (r["layer"], r["unit"], r["au"]) == ("a", 1, 1))
    assert negative["distance"] == -1.0 and negative["q_value"] < 1e-10
    units = {(r["layer"], r["unit"]): r for r in table["unit_mapping"]}
    assert not (units[("a", 1)]["au"] == 1 and units[("a", 1)]["significant"])
