"""Your own model without a plugin: python:FILE.py:Class, package.module:Class, wrap_module, and the onnx plugin's refusal."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from interpret_core import CapabilityError, UsageError, get_attribution, get_model
from interpret_core.cli import main
from interpret_core.nn.weights import save_weights
from interpret_core.registry.user_models import is_model_spec, wrap_module

NET_SOURCE = textwrap.dedent(
    '''
    """A user's own expression net, nothing interp-specific in it."""
    import torch
    from torch import nn
    import torch.nn.functional as F


    class SmallFaceNet(nn.Module):
        """two convs, global pool, 8 classes"""

        class_names = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")

        def __init__(self, width=6):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 8))

        def forward(self, x):
            return self.head(self.features(x))


    class HiddenReluNet(SmallFaceNet):
        def forward(self, x):
            return self.head(F.relu(self.features[3](self.features[2](self.features[1](self.features[0](x))))))
    '''
)


@pytest.fixture
def user_net(tmp_path):
    source = tmp_path / "my_nets.py"
    source.write_text(NET_SOURCE)
    spec = f"python:{source}:SmallFaceNet"
    torch.manual_seed(0)
    model = get_model(spec)  # untrained: built from the class, seeded
    path = save_weights(model, tmp_path / "small.safetensors", card={"notes": "test net"})
    return spec, path, model


def test_specs_are_told_apart_from_plugin_names():
    assert is_model_spec("python:nets/a.py:Net") and is_model_spec("my_pkg.nets:Net")
    assert not is_model_spec("fer-cnn") and not is_model_spec("fer2013-minixception")


def test_python_file_model_builds_loads_and_names_its_layers(user_net):
    spec, path, reference = user_net
    model = get_model(spec, weights=path)
    assert model.card is not None and model.card["architecture"]["model"] == "python:SmallFaceNet"
    assert model.layers == ["features.1", "features.4"]  # the rectified feature maps, in order
    assert len(model.class_names) == 8
    x = torch.rand(3, 1, 64, 64)
    torch.testing.assert_close(model.module(x), reference.module(x))
    # the card's class is refused for another class, by name
    with pytest.raises(Exception, match="architecture.model"):
        get_model(spec.replace("SmallFaceNet", "HiddenReluNet"), weights=path)
    # weights alone cannot find a Python file: the error says what to pass
    with pytest.raises(UsageError, match="python:FILE.py:SmallFaceNet"):
        get_model(None, weights=path)


def test_module_path_spec_and_bare_safetensors(user_net, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    spec, _, reference = user_net
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in reference.module.state_dict().items()}, bare)
    with pytest.warns(UserWarning, match="no model card"):
        model = get_model("my_nets:SmallFaceNet", weights=bare)
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(model.module(x), reference.module(x))
    with pytest.raises(UsageError, match="no 'Nope'"):
        get_model("my_nets:Nope")
    with pytest.raises(UsageError, match="not found"):
        get_model("python:/nonexistent/net.py:Net")


def test_rectifier_check_applies_to_your_own_model(user_net):
    spec, _, _ = user_net
    hidden = get_model(spec.replace("SmallFaceNet", "HiddenReluNet"))
    with pytest.raises(CapabilityError, match="rectifies outside nn.ReLU"):
        get_attribution("deconv").attribute(hidden.module, torch.rand(1, 1, 64, 64), 0)


def test_wrap_module_is_the_python_route(user_net):
    spec, _, _ = user_net
    from interpret_core.registry.user_models import model_class_from_spec

    module_class = model_class_from_spec(spec).module_class
    torch.manual_seed(0)
    model = wrap_module(module_class, class_names=["a", "b", "c", "d", "e", "f", "g", "h"], width=4)
    assert model.layers == ["features.1", "features.4"]
    images = np.random.default_rng(0).random((2, 64, 64))
    maps = get_attribution("guided-backprop").attribute_units(model.module, model.to_input(images), "features.4", range(8))
    assert maps.shape == (2, 8, 1, 64, 64) and float(maps.abs().sum()) > 0


def test_python_model_runs_through_run_bench_and_visualize(user_net, synthfacs_root, tmp_path, capsys):
    spec, path, _ = user_net
    common = ["--model", spec, "--weights", str(path), "--dataset", "synthfacs", "--data-root", str(synthfacs_root)]
    assert main(["run", *common, "--method", "deconv", "--metric", "au-distance", "--limit", "40",
                 "--top-k", "3", "--out", str(tmp_path / "run"), "--json"]) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["model"]["name"] == spec and result["model"]["trained"] is True
    capsys.readouterr()
    assert main(["bench", *common, "--methods", "saliency", "--metrics", "au-pointing-game", "--limit", "8",
                 "--out", str(tmp_path / "bench"), "--json"]) == 0, capsys.readouterr().err
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert bench["images"]["unmatched_classes"] == []
    capsys.readouterr()
    assert main(["visualize", *common, "--method", "deconv", "--layer", "features.4", "--units", "0,1", "--top-k", "2",
                 "--limit", "20", "--out", str(tmp_path / "vis"), "--json"]) == 0, capsys.readouterr().err
    assert list((tmp_path / "vis").rglob("*.png"))


def test_onnx_plugin_without_its_extra_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # as if the extra were not installed
    (tmp_path / "net.onnx").write_bytes(b"")
    with pytest.raises(CapabilityError) as info:
        get_model("onnx", weights=tmp_path / "net.onnx")
    assert 'interp[onnx]' in info.value.hint


def test_a_module_without_class_names_needs_them(tmp_path):
    source = tmp_path / "bare_net.py"
    source.write_text("from torch import nn\n\nclass Bare(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.conv = nn.Conv2d(1, 2, 3)\n        self.relu = nn.ReLU()\n        self.fc = nn.Linear(2, 3)\n\n"
                      "    def forward(self, x):\n        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))\n")
    with pytest.raises(UsageError, match="needs class_names"):
        get_model(f"python:{source}:Bare")
    model = get_model(f"python:{source}:Bare", class_names=["a", "b", "c"], input_size=(1, 16, 16))
    assert model.layers == ["relu"] and model.module(torch.rand(1, 1, 16, 16)).shape == (1, 3)
