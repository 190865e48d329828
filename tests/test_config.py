"""`interp config`: the defaults commands use, seeded by the built-in plugins, changed by the user."""

from __future__ import annotations

import json

import pytest

from interpret_core import UsageError
from interpret_core.cli import main
from interpret_core.registry import defaults


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh INTERP_HOME per test: settings written here touch no other test."""
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    return tmp_path


def _json(capsys, args):
    assert main(args + ["--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_built_in_plugins_seed_every_default(home, capsys):
    rows = {row["key"]: row for row in _json(capsys, ["config", "list"])}
    assert list(rows) == ["model", "dataset", "method", "metric", "explain-model", "photo-dataset"]
    assert {key: row["value"] for key, row in rows.items()} == {
        "model": "fer-cnn", "dataset": "synthfacs", "method": "deconv", "metric": "au-distance",
        "explain-model": "fer2013-minixception", "photo-dataset": "faces"}
    assert rows["model"]["source"] == "plugin interp-models" and rows["metric"]["kind"] == "unit-metric"
    assert main(["config", "get", "dataset"]) == 0 and capsys.readouterr().out == "synthfacs\n"
    assert not (home / "config.json").exists()  # reading writes nothing


def test_set_get_unset_round_trip_through_the_user_file(home, capsys):
    row = _json(capsys, ["config", "set", "model", "fer-resnet"])
    assert row == {"key": "model", "value": "fer-resnet", "source": f"user config {home / 'config.json'}", "kind": "model"}
    assert json.loads((home / "config.json").read_text()) == {"model": "fer-resnet"}
    assert defaults.default("model") == "fer-resnet"
    assert _json(capsys, ["config", "get", "model"])["value"] == "fer-resnet"
    assert _json(capsys, ["config", "set", "method", "guided-backprop:max_batch=64"])["value"] == "guided-backprop:max_batch=64"
    assert _json(capsys, ["config", "unset", "model"])["source"] == "plugin interp-models"
    assert json.loads((home / "config.json").read_text()) == {"method": "guided-backprop:max_batch=64"}
    assert main(["config", "path"]) == 0 and capsys.readouterr().out == f"{home / 'config.json'}\n"


def test_bad_keys_names_and_files_are_clear_errors(home, capsys):
    assert main(["config", "set", "model", "fer-resnett"]) == 2
    err = capsys.readouterr().err
    assert "fer-resnett" in err and "did you mean 'fer-resnet'" in err
    assert main(["config", "get", "modl"]) == 2 and "did you mean 'model'" in capsys.readouterr().err
    assert main(["config", "set", "dataset", "fer-cnn"]) == 2  # a model is not a data set
    assert not (home / "config.json").exists()
    (home / "config.json").write_text("[1, 2]")
    assert main(["config", "list"]) == 1
    assert "config.json" in capsys.readouterr().err
    with pytest.raises(UsageError, match="unknown setting"):
        defaults.setting("colour")


def test_commands_use_the_configured_defaults(home, capsys):
    """`interp run` with no plugin named runs what `interp config` says."""
    from interp_metrics.planted import PlantedDataset, PlantedModel, UnitMaxGradient

    from test_run import _registered

    with _registered("test-config-planted", interp_register_datasets=[PlantedDataset],
                     interp_register_models=[PlantedModel], interp_register_attributions=[UnitMaxGradient]):
        for key, value in (("model", "planted-aus-net"), ("dataset", "planted-aus"), ("method", "unit-max-gradient")):
            assert main(["config", "set", key, value]) == 0, capsys.readouterr().err
        capsys.readouterr()
        results = _json(capsys, ["run", "--layers", "act1", "--limit", "80", "--top-k", "3",
                                 "--metric-option", "min_observations=5", "--metric-option", "min_subjects=2", "--out", str(home / "run")])
    assert (results["model"]["name"], results["dataset"]["name"], results["method"], results["metric"]) == (
        "planted-aus-net", "planted-aus", "unit-max-gradient", "au-distance")
    mapped = {row["au"]: (row["layer"], row["unit"]) for row in results["mapping"]}
    assert mapped[12] == ("act1", 3)  # the planted AU12 detector, found with the configured plugins


def test_a_default_nobody_declares_asks_for_a_name(home, monkeypatch):
    monkeypatch.setattr(defaults, "_seeds", lambda: {})
    with pytest.raises(UsageError, match="no default model") as caught:
        defaults.default("model")
    assert "interp config set model" in caught.value.hint
