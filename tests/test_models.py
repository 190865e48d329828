"""Model plugins (fer-cnn, fer-resnet), weights files and model cards, `interp models`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import interpret_core
from interp_datasets.emotions import EMOTIONS
from interpret_core import WeightsError, get_model
from interpret_core.cli import main
from interpret_core.nn.weights import card_path, read_card, save_weights, sha256_file

MODELS = ["fer-cnn", "fer-resnet"]
SEVEN = [name for name in EMOTIONS if name != "neutral"]


def untrained(name: str, **options):
    cls = interpret_core.get_registry().get_class("model", name)
    torch.manual_seed(0)
    return cls(**options)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("classes", [list(EMOTIONS), SEVEN])
def test_forward_shape_and_layers(name, classes):
    model = untrained(name, class_names=classes)
    modules = dict(model.module.named_modules())
    assert model.layers, "a model must name analysable layers"
    for layer in model.layers:
        assert layer in modules, f"{layer} not in named_modules()"
    inputs = model.to_input(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32))
    assert inputs.shape == (3, 1, 64, 64)
    captured = {}
    hooks = [modules[layer].register_forward_hook(lambda m, i, o, n=layer: captured.__setitem__(n, o)) for layer in model.layers]
    with torch.no_grad():
        logits = model.module(inputs)
    for hook in hooks:
        hook.remove()
    assert logits.shape == (3, len(classes))
    sizes = []
    for layer in model.layers:
        output = captured[layer]
        assert output.ndim == 4 and output.shape[0] == 3
        assert (output >= 0).all(), f"{layer} output is not rectified"
        sizes.append(output.shape[-1])
    assert sizes == sorted(sizes, reverse=True), "layers go shallow to deep"


def test_fer_cnn_is_the_paper_layout():
    model = untrained("fer-cnn")
    net = model.module
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3), (3, 3)]
    widths = [c.out_channels for c in convs]
    assert widths == sorted(widths) and len(set(widths)) == 3, "channels widen block by block"
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 3
    assert any(isinstance(m, nn.Dropout) for m in net.modules())
    # a few MB at most
    assert sum(p.numel() for p in net.parameters()) * 4 < 4e6


@pytest.mark.parametrize("name", MODELS)
def test_global_brightness_and_contrast_do_not_change_the_logits(name):
    # the per-image standardisation makes the nets invariant to x -> a x + b (a > 0)
    model = untrained(name)
    model.module.eval()
    images = torch.rand(3, 1, 64, 64) * 0.5 + 0.2
    with torch.no_grad():
        torch.testing.assert_close(model.module(images), model.module(0.6 * images + 0.3), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_every_relu_is_its_own_non_inplace_module(name):
    model = untrained(name)
    relus = [m for m in model.module.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(not r.inplace for r in relus)
    assert any(isinstance(m, nn.MaxPool2d) for m in model.module.modules())
    # Each ReLU instance runs exactly once per forward pass: none is reused,
    # so a hook on one ReLU module sees exactly one rectification.
    calls = {id(r): 0 for r in relus}
    hooks = [r.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1)) for r in relus]
    with torch.no_grad():
        model.module(torch.rand(2, 1, 64, 64))
    for hook in hooks:
        hook.remove()
    assert set(calls.values()) == {1}


def test_plugin_modules_do_not_import_torch():
    code = (
        "import sys, interp_models.plugin, interp_models.models; "
        "import interpret_core; interpret_core.get_registry().names('model'); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- weights -----------------------------------------------------------------------------


def _saved(tmp_path, name="fer-cnn", **options):
    model = untrained(name, **options)
    path = save_weights(model, tmp_path / f"{name}.safetensors", {"dataset": {"name": "test"}, "seed": 0, "metrics": {"mean_accuracy": 0.5}})
    return model, path


@pytest.mark.parametrize("name", MODELS)
def test_weights_round_trip(tmp_path, name):
    model, path = _saved(tmp_path, name)
    model.module.eval()
    loaded = get_model(name, weights=path)
    inputs = torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.module(inputs), loaded.module(inputs))
    assert not loaded.module.training
    card = loaded.card
    assert card["architecture"] == model.architecture()
    assert card["weights"]["sha256"] == sha256_file(path)
    assert card["dataset"] == {"name": "test"} and card["metrics"]["mean_accuracy"] == 0.5
    for package in ("interp", "torch", "numpy", "python"):
        assert card["versions"][package]


def test_seven_class_weights_load_without_options(tmp_path):
    _, path = _saved(tmp_path, class_names=SEVEN)
    loaded = get_model("fer-cnn", weights=path)
    assert loaded.class_names == SEVEN
    assert loaded.module(torch.rand(1, 1, 64, 64)).shape == (1, 7)
    with pytest.raises(WeightsError, match="architecture.class_names"):
        get_model("fer-cnn", weights=path, class_names=list(EMOTIONS))


def _edit_card(path, edit):
    card_file = card_path(path)
    card = json.loads(card_file.read_text())
    edit(card)
    card_file.write_text(json.dumps(card))


@pytest.mark.parametrize(
    "field, edit",
    [
        ("architecture.model", lambda c: c["architecture"].__setitem__("model", "fer-resnet")),
        ("architecture.class_names", lambda c: c["architecture"].__setitem__("class_names", list(reversed(EMOTIONS)))),
        ("architecture.input_size", lambda c: c["architecture"].__setitem__("input_size", [1, 48, 48])),
        ("weights.sha256", lambda c: c["weights"].__setitem__("sha256", "0" * 64)),
    ],
)
def test_mismatching_card_is_refused_naming_the_field(tmp_path, field, edit):
    _, path = _saved(tmp_path)
    _edit_card(path, edit)
    model = untrained("fer-cnn")
    with pytest.raises(WeightsError) as caught:
        interpret_core.nn.weights.load_weights_into(model, path)
    assert field in caught.value.message
    assert str(card_path(path)) in caught.value.message, "the message names the card file"
    assert caught.value.hint


def test_tampered_tensors_fail_the_sha_check(tmp_path):
    _, path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="weights.sha256"):
        get_model("fer-cnn", weights=path)


def test_card_for_other_architecture_is_refused_by_get_model(tmp_path):
    _, path = _saved(tmp_path, "fer-resnet")
    with pytest.raises(WeightsError, match="architecture.model") as caught:
        get_model("fer-cnn", weights=path)
    assert "fer-resnet" in caught.value.hint


def test_tensor_names_and_shapes_are_checked(tmp_path):
    from safetensors.torch import save_file

    model, path = _saved(tmp_path)
    state = {k: v.contiguous() for k, v in model.module.state_dict().items()}
    state["fc2.weight"] = torch.zeros(8, 7)
    save_file(state, str(path))
    _edit_card(path, lambda c: c["weights"].__setitem__("sha256", sha256_file(path)))
    with pytest.raises(WeightsError, match="fc2.weight"):
        get_model("fer-cnn", weights=path)
    state.pop("fc2.weight")
    save_file(state, str(path))
    _edit_card(path, lambda c: c["weights"].__setitem__("sha256", sha256_file(path)))
    with pytest.raises(WeightsError, match="missing"):
        get_model("fer-cnn", weights=path)


def test_missing_card_pickles_and_missing_files(tmp_path):
    _, path = _saved(tmp_path)
    card_path(path).unlink()
    with pytest.raises(WeightsError, match="model card"):
        get_model("fer-cnn", weights=path)
    pickle_file = tmp_path / "model.pt"
    torch.save({"x": torch.zeros(1)}, pickle_file)
    with pytest.raises(WeightsError, match="never unpickles"):
        get_model("fer-cnn", weights=pickle_file)
    with pytest.raises(WeightsError, match="not found"):
        get_model("fer-cnn", weights=tmp_path / "absent.safetensors")


def test_save_is_atomic_and_refuses_other_suffixes(tmp_path):
    model = untrained("fer-cnn")
    with pytest.raises(WeightsError, match=".safetensors"):
        save_weights(model, tmp_path / "model.pt", {})
    path = save_weights(model, tmp_path / "m.safetensors", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    assert read_card(path)["weights"]["bytes"] == path.stat().st_size
    # The same tensors give the same bytes (so a retrained model's sha is reproducible).
    again = save_weights(model, tmp_path / "n.safetensors", {})
    assert sha256_file(again) == sha256_file(path)


def test_default_weights_are_loaded_from_the_package(tmp_path, monkeypatch):
    from interp_models.models import FerCNNModel

    package = tmp_path / "fake_weights_pkg"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    model, _ = _saved(package / "weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(FerCNNModel, "default_weights", "fake_weights_pkg:weights/fer-cnn.safetensors")
    loaded = get_model("fer-cnn")
    assert loaded.card is not None and loaded.card["metrics"]["mean_accuracy"] == 0.5
    inputs = torch.rand(2, 1, 64, 64)
    model.module.eval()
    with torch.no_grad():
        assert torch.equal(model.module(inputs), loaded.module(inputs))
    # A model built for other classes than the shipped weights stays untrained, with a warning.
    with pytest.warns(UserWarning, match="untrained"):
        other = get_model("fer-cnn", class_names=SEVEN)
    assert other.card is None
    # No shipped file: untrained, no error.
    monkeypatch.setattr(FerCNNModel, "default_weights", "fake_weights_pkg:weights/absent.safetensors")
    assert get_model("fer-cnn").card is None


def test_fer_resnet_ships_no_weights():
    assert get_model("fer-resnet").card is None


def test_interp_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert set(MODELS) <= set(by_name)
    assert by_name["fer-cnn"]["layers"] == ["conv1", "conv2", "conv3"]
    assert by_name["fer-resnet"]["layers"] == ["stem", "layer1", "layer2", "layer3"]
    for name in MODELS:
        row = by_name[name]
        assert row["status"] == "ok" and row["parameters"] > 0 and row["input_size"] == [1, 64, 64]
        if row["card"] is not None:
            assert row["mean_accuracy"] == row["card"]["metrics"]["mean_accuracy"]
    assert main(["models"]) == 0
    assert "fer-cnn" in capsys.readouterr().out


def test_the_shipped_default_model(synthfacs_root):
    from interp_models.models import FerCNNModel
    from interpret_core.nn.weights import default_weights_path

    path = default_weights_path(FerCNNModel.default_weights)
    assert path is not None, "fer-cnn ships default weights"
    assert path.stat().st_size < 5e6, "a few MB at most"
    model = get_model("fer-cnn")  # checks the card and the sha256
    card = model.card
    assert card["weights"]["sha256"] == sha256_file(path)
    assert card["metrics"]["mean_accuracy"] >= 0.90 and card["metrics"]["std_accuracy"] > 0
    assert card["protocol"]["folds"] == 10 and card["seed"] == 0
    assert card["dataset"]["name"] == "synthfacs" and card["dataset"]["data_root"] is None
    assert card["command"].startswith("interp train --model fer-cnn --dataset synthfacs --folds 10 ")
    # Sanity check against the data reader of today: the fixture's subjects
    # come from the same generator, so a shipped model that no longer fits the
    # generator's images (time to retrain) shows up here. Not a test score.
    dataset = interpret_core.get_dataset("synthfacs", data_root=synthfacs_root)
    images, emotions = dataset.arrays(np.arange(len(dataset)))
    with torch.no_grad():
        predicted = model.module(model.to_input(images)).argmax(1).numpy()
    labelled = emotions >= 0
    assert np.mean(predicted[labelled] == emotions[labelled]) > 0.7


def test_untrained_model_is_seeded_and_leaves_the_callers_rng_alone():
    import torch

    from interpret_core import get_model

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = get_model("fer-resnet").module.state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    again = get_model("fer-resnet").module.state_dict()
    other = get_model("fer-resnet", seed=1).module.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())
