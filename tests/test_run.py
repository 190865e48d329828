"""`interp run` end to end on the planted ground truth, and on SynthFACS with the real plugins."""

from __future__ import annotations

import contextlib
import csv
import json
import types

import numpy as np
import pytest

from interpret_core import Attribution, hookimpl
from interpret_core.cli import main
from interpret_core.registry.loader import get_registry


class NoUnits(Attribution):
    name = "no-units-standin"

    def attribute(self, module, inputs, target):  # pragma: no cover - not used here
        raise NotImplementedError


@contextlib.contextmanager
def _registered(plugin_name: str, **hooks: list[type]):
    """Register ``classes`` under each hook (``interp_register_datasets=[...]``) for the ``with`` block."""
    plugin = types.SimpleNamespace()
    for hook, classes in hooks.items():
        def register_all(register, classes=classes):
            for cls in classes:
                register(cls)

        setattr(plugin, hook, hookimpl(register_all))
    registry = get_registry()
    assert registry.register_plugin(plugin, plugin_name)
    try:
        yield
    finally:
        registry.unregister_plugin(plugin_name)


@pytest.fixture()
def planted_plugin():
    from interp_metrics.planted import PlantedDataset, PlantedModel, UnitMaxGradient

    with _registered(
        "test-au-planted",
        interp_register_datasets=[PlantedDataset],
        interp_register_models=[PlantedModel],
        interp_register_attributions=[UnitMaxGradient, NoUnits],
    ):
        yield


PLANTED_ARGS = ["run", "--method", "unit-max-gradient", "--metric", "au-distance", "--model", "planted-aus-net",
                "--dataset", "planted-aus", "--top-k", "4"]


def test_run_on_planted_units_writes_every_output(planted_plugin, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(PLANTED_ARGS + ["--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = json.loads(captured.out)
    results = json.loads((out / "results.json").read_text())
    assert printed["out"] == str(out) and printed["mapping"] == results["mapping"]

    # Schema: top-level keys and types.
    for key, kind in (("method", str), ("metric", str), ("model", dict), ("dataset", dict), ("layers", list),
                      ("scores", list), ("mapping", list), ("unit_mapping", list), ("summary", dict),
                      ("metric_options", dict), ("versions", dict), ("aus", list)):
        assert isinstance(results[key], kind), key
    assert results["method"] == "unit-max-gradient" and results["metric"] == "au-distance"
    assert results["layers"] == ["act1", "act2"]
    assert results["model"]["name"] == "planted-aus-net" and results["dataset"]["images"] == 240
    units = {"act1": 6, "act2": 6}
    assert len(results["scores"]) == sum(units.values()) * 6  # 6 scored AUs
    for row in results["scores"]:
        assert isinstance(row["layer"], str) and isinstance(row["unit"], int) and isinstance(row["au"], int)
        for key in ("distance", "p_value", "q_value"):
            assert row[key] is None or isinstance(row[key], float)
        assert 0 <= row["unit"] < units[row["layer"]]
    for row in results["mapping"]:
        for key in ("au", "layer", "unit", "distance", "q_value", "spatial_agreement", "chance"):
            assert key in row

    # The planted detectors are found; AU k's detector in act1 is unit k (ties prefer the shallower layer).
    mapped = {row["au"]: (row["layer"], row["unit"]) for row in results["mapping"]}
    assert mapped[1] == ("act1", 0) and mapped[2] == ("act1", 1) and mapped[4] == ("act1", 2) and mapped[12] == ("act1", 3)
    by_au = {row["au"]: row for row in results["mapping"]}
    for au in (1, 2, 4, 12):
        assert by_au[au]["spatial_agreement"] > 0.9 > 0.2 > by_au[au]["chance"]
    assert not by_au[5]["significant"]

    # CSV: one row per score with the fixed columns first.
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results["scores"])
    assert list(rows[0])[:6] == ["layer", "unit", "au", "distance", "p_value", "q_value"]
    assert float(rows[0]["distance"]) == pytest.approx(results["scores"][0]["distance"])

    # Figures exist, are PNGs, and the report links them relatively.
    report = (out / "report.html").read_text()
    for row in results["mapping"]:
        # the AU's figure (its selected unit on faces with and without it) and where that unit fires
        assert len(row["figures"]) == 2 and row["figures"][0] == f"figures/AU{row['au']:02d}.png"
        for path in row["figures"]:
            assert (out / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="{path}"' in report
    assert "AU12" in (out / "mapping.md").read_text() and "act1/3" in (out / "mapping.md").read_text()
    assert (out / "scan.npz").exists()
    assert not list(out.glob(".*.tmp"))


def test_run_resume_reuses_scan_and_refuses_to_overwrite(planted_plugin, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(PLANTED_ARGS + ["--out", str(out), "--json", "--limit", "120"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["scan"]["reused"] is False and first["dataset"]["images"] == 120
    assert main(PLANTED_ARGS + ["--out", str(out), "--json", "--limit", "120"]) == 2  # would overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(PLANTED_ARGS + ["--out", str(out), "--json", "--limit", "120", "--resume",
                                "--option", "distance=smd"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["scan"]["reused"] is True and second["metric_options"]["distance"] == "smd"
    # SMD is not rank-based, so the copy of a detector in act2 (units 0 and 1 swapped) may win.
    detectors = {1: {("act1", 0), ("act2", 1)}, 2: {("act1", 1), ("act2", 0)}, 4: {("act1", 2), ("act2", 2)},
                 12: {("act1", 3), ("act2", 3)}}
    for results in (first, second):
        mapped = {row["au"]: (row["layer"], row["unit"]) for row in results["mapping"]}
        assert all(mapped[au] in units for au, units in detectors.items())


def test_run_errors_are_one_line_with_hints(planted_plugin, tmp_path, capsys):
    base = ["run", "--model", "planted-aus-net", "--dataset", "planted-aus", "--out", str(tmp_path / "x")]
    assert main(base + ["--method", "no-units-standin"]) == 2
    err = capsys.readouterr().err
    assert "cannot project units" in err and "unit-max-gradient" in err
    assert main(base + ["--method", "unit-max-gradient", "--layers", "act9"]) == 2
    assert "act9" in capsys.readouterr().err
    assert main(base + ["--method", "unit-max-gradient", "--option", "distance=cohen"]) == 2
    assert "unknown distance" in capsys.readouterr().err
    assert main(base + ["--method", "unit-max-gradient", "--option", "min_observations=1000"]) == 1
    assert "min_observations" in capsys.readouterr().err
    assert not (tmp_path / "x" / "results.json").exists()


def test_run_default_out_dir_is_new_each_time(planted_plugin, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = PLANTED_ARGS + ["--limit", "80", "--option", "min_observations=5", "--option", "min_subjects=2", "--layers", "act1"]
    assert main(args) == 0
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "AU12" in table and "act1/3" in table  # the rich table on stdout
    runs = sorted((tmp_path / "interp-runs").iterdir())
    assert len(runs) == 2 and all((r / "results.json").exists() for r in runs)
    assert all("-unit-max-gradient-au-distance" in r.name for r in runs)
    first, second = (json.loads((r / "results.json").read_text()) for r in runs)
    assert first["scores"] == second["scores"] and first["mapping"] == second["mapping"]  # deterministic


def test_run_with_the_real_plugins_on_small_synthfacs(synthfacs_root, tmp_path, capsys):
    """The README's command on the 6-subject fixture: fer-cnn (shipped weights if any) + deconv."""
    out = tmp_path / "sf"
    code = main(["run", "--method", "deconv", "--metric", "au-distance", "--dataset", "synthfacs",
                 "--data-root", str(synthfacs_root), "--out", str(out), "--option", "min_observations=5", "--option", "min_subjects=2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads((out / "results.json").read_text())
    from interpret_core import get_model

    assert results["model"]["name"] == "fer-cnn" and results["layers"] == get_model("fer-cnn").layers
    assert results["dataset"]["images"] == results["dataset"]["of"] > 0
    assert results["mapping"] and all(row["figures"] for row in results["mapping"] if row["layer"] is not None)
    assert results["statistical_unit"] == "sequence" and results["selection"] == "held-out"
    for row in results["mapping"]:
        assert row["verdict"] in ("localised", "elsewhere", "none", "untestable")
        if row["verdict"] == "untestable":
            continue
        # SynthFACS has ground-truth masks, so every mapped AU gets an agreement and a chance level.
        assert 0.0 <= row["spatial_agreement"] <= 1.0 and 0.0 < row["chance"] < 1.0
        assert row["layer"] in results["layers"]
        if row["verdict"] == "localised":
            assert row["spatial_agreement"] > row["chance"]
    scored = {row["au"] for row in results["aus"] if row["scored"]}
    assert {row["au"] for row in results["mapping"] if row["layer"] is not None} == scored
    assert {row["au"] for row in results["mapping"]} == {row["au"] for row in results["aus"]}
    units = sum(shape[0] for shape in results["scan"]["shapes"].values())
    assert len(results["scores"]) == len(scored) * units
    # A method without unit projections is refused before any work.
    assert main(["run", "--method", "saliency", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
                 "--out", str(tmp_path / "no")]) == 2
    assert "cannot project units" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_run_with_a_third_party_unit_metric(planted_plugin, tmp_path, capsys):
    """A metric that knows nothing of scans: run maps each concept to its best-scoring unit."""
    from interpret_core import UnitMetric, UnitMetricResult

    class MeanActivationGap(UnitMetric):
        name = "mean-gap-standin"

        def evaluate(self, model, dataset, layers, **kwargs):
            from interpret_core.analysis.unit_scan import scan_units

            scan = scan_units(model, dataset, layers)
            has = np.array([1 in s.aus for s in dataset])
            rows = []
            for layer in layers:
                gap = scan.maxima[layer][has].mean(axis=0) - scan.maxima[layer][~has].mean(axis=0)
                rows += [{"layer": layer, "unit": u, "concept": "AU1", "score": float(g)} for u, g in enumerate(gap)]
            return UnitMetricResult(scores=rows)

    out = tmp_path / "tp"
    with _registered("test-au-third-party-metric", interp_register_unit_metrics=[MeanActivationGap]):
        args = ["run", "--method", "unit-max-gradient", "--metric", "mean-gap-standin", "--model", "planted-aus-net",
                "--dataset", "planted-aus", "--layers", "act1", "--out", str(out), "--json"]
        assert main(args) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert [(r["au"], r["layer"], r["unit"]) for r in results["mapping"]] == [(1, "act1", 0)]
    first = results["scores"][0]
    # the metric's "concept"/"score" become the schema's "au"/"distance", without duplicate columns
    assert first["au"] == 1 and isinstance(first["distance"], float) and "score" not in first and "concept" not in first
    assert results["mapping"][0]["figures"] and "AU1" in (out / "report.html").read_text()


def test_run_takes_method_specs_and_dataset_options(planted_plugin, tmp_path, monkeypatch, capsys):
    """`--method NAME:key=value` is parsed, units are checked on the instance, the spec is recorded."""
    from interp_metrics.planted import UnitMaxGradient

    class OptionalUnits(UnitMaxGradient):
        """Projects units only when asked to (like the Captum adapter, whose class decides per instance)."""

        name = "optional-units-standin"
        supports_units = False

        def __init__(self, units: bool = False):
            super().__init__()
            self.supports_units = units

    monkeypatch.chdir(tmp_path)
    base = ["run", "--metric", "au-distance", "--model", "planted-aus-net", "--dataset", "planted-aus", "--top-k", "4",
            "--layers", "act1", "--option", "min_observations=5", "--option", "min_subjects=2"]
    with _registered("test-run-optional-units", interp_register_attributions=[OptionalUnits]):
        assert main(base + ["--method", "optional-units-standin", "--out", "refused"]) == 2
        err = capsys.readouterr().err
        assert "cannot project units" in err and "unit-max-gradient" in err
        assert main(base + ["--method", "optional-units-standin:colour=red", "--out", "refused"]) == 2
        assert "colour" in capsys.readouterr().err
        assert main(base + ["--method", "unit-max-gradient", "--dataset-option", "count", "--out", "refused"]) == 2
        assert "--dataset-option 'count'" in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()

        spec = "optional-units-standin:units=true"
        assert main(base + ["--method", spec, "--dataset-option", "count=120", "--json"]) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    (out,) = (tmp_path / "interp-runs").iterdir()
    assert out.name.endswith("-optional-units-standin-units-true-au-distance")  # no ':' or '=' in the folder name
    results = json.loads((out / "results.json").read_text())
    assert results == {k: v for k, v in printed.items() if k != "out"}
    assert results["method"] == spec
    assert results["dataset"]["images"] == results["dataset"]["of"] == 120 and results["dataset"]["options"] == {"count": 120}
    assert results["mapping"] and all(len(row["figures"]) == 2 for row in results["mapping"])
    assert spec in (out / "report.html").read_text()
