"""The one "load model + data set" step: same mistake, same exit code and hint; --weights alone; --model-option."""

from __future__ import annotations

import json

import pytest

from interpret_core.api.errors import UsageError
from interpret_core.cli import main
from interpret_core.workflows.setup import ModelChoice, load_model, model_name

#: Every command that opens a data set, with what else it needs to get that far.
DATA_COMMANDS = {
    "run": ["run"],
    "bench": ["bench"],
    "visualize": ["visualize", "--out", "{tmp}/vis"],
    "train": ["train", "--dataset", "synthfacs", "--out", "{tmp}/train"],
    "data inspect": ["data", "inspect", "--dataset", "synthfacs"],
    "data preview": ["data", "preview", "--dataset", "synthfacs", "--out", "{tmp}/grid.png"],
}
MODEL_COMMANDS = ("run", "bench", "visualize")


def _args(command: str, tmp_path, *extra: str) -> list[str]:
    return [a.format(tmp=tmp_path) for a in DATA_COMMANDS[command]] + list(extra)


@pytest.mark.parametrize("command", sorted(DATA_COMMANDS))
def test_a_data_root_that_does_not_exist_is_the_same_usage_error_everywhere(command, tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    code = main(_args(command, tmp_path, "--data-root", str(missing)))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert lines == [
        f"error: --data-root {missing}: no such folder",
        "hint: give the root folder of your synthfacs copy; "
        "`interp data inspect --dataset synthfacs --data-root DIR` checks one",
    ]


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_weights_that_do_not_exist_are_the_same_usage_error_everywhere(command, tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    code = main(_args(command, tmp_path, "--weights", str(missing)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"error: --weights {missing}: no such file" in err and "hint: give a .safetensors file" in err


@pytest.fixture
def resnet_weights(tmp_path):
    """Weights of the (untrained) fer-resnet with their card: another model than the default."""
    from interpret_core import get_model
    from interpret_core.nn.weights import save_weights

    model = get_model("fer-resnet", seed=3)
    return save_weights(model, tmp_path / "resnet" / "model.safetensors")


def test_weights_alone_name_their_model(resnet_weights):
    assert model_name(None, resnet_weights) == "fer-resnet"
    assert model_name("fer-cnn", None) == "fer-cnn"
    model = load_model(ModelChoice(weights=str(resnet_weights)))
    assert model.name == "fer-resnet" and model.card is not None


def test_visualize_with_weights_alone_uses_the_carded_model(resnet_weights, synthfacs_root, tmp_path, capsys):
    out = tmp_path / "vis"
    code = main(["visualize", "--weights", str(resnet_weights), "--layer", "stem", "--units", "0", "--top-k", "2",
                 "--limit", "4", "--data-root", str(synthfacs_root), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads((out / "summary.json").read_text())["model"]["name"] == "fer-resnet"
    # A --model that disagrees with the card is refused, with the card's model as the hint.
    code = main(["visualize", "--model", "fer-cnn", "--weights", str(resnet_weights), "--layer", "conv1",
                 "--data-root", str(synthfacs_root), "--out", str(tmp_path / "vis2")])
    err = capsys.readouterr().err
    assert code == 1 and "--model fer-resnet" in err


def test_model_option_reaches_the_model_plugin(capsys, tmp_path):
    model = load_model(ModelChoice(name="fer-resnet", options={"class_names": ["a", "b", "c"]}))
    assert model.class_names == ["a", "b", "c"] and model.card is None
    with pytest.raises(UsageError):
        load_model(ModelChoice(name="fer-cnn", options={"no_such_option": 1}))
    code = main(["bench", "--model", "fer-cnn", "--model-option", "no_such_option=1", "--out", str(tmp_path / "b")])
    assert code == 2 and "no_such_option" in capsys.readouterr().err
    code = main(["train", "--dataset", "synthfacs", "--model-option", "class_names=['a']", "--out", str(tmp_path / "t")])
    assert code == 2 and "takes the class names from the data set" in capsys.readouterr().err


def test_metric_option_names_its_metric_where_one_runs(capsys, tmp_path):
    code = main(["run", "--metric", "au-distance", "--metric-option", "deletion.steps=3", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "is for metric 'deletion'" in err


@pytest.mark.parametrize("dataset, says, never", [("synthfacs", "SynthFACS release", "CK+"), ("ckplus", "CK+ release", "SynthFACS")])
def test_a_folder_that_is_not_a_release_gets_its_own_data_sets_hint(dataset, says, never, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["data", "inspect", "--dataset", dataset, "--data-root", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert code == 1 and "no cohn-kanade-images folder" in err  # a data problem: exit 1 in every command
    hint = [line for line in err.splitlines() if line.startswith("hint:")][0]
    assert says in hint and never not in hint
