"""``--model onnx``: fer-cnn exported to ONNX and imported back through onnx2torch gives the same logits and maps."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from interpret_core import get_attribution, get_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    reference = get_model("fer-cnn")
    path = tmp_path_factory.mktemp("onnx") / "fer-cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(reference.module, torch.rand(1, 1, 64, 64), str(path), input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
                          opset_version=17)  # onnx2torch 1.5 has no converter for opset 19's Constant
    return reference, path


@pytest.fixture(scope="module")
def faces():
    torch.manual_seed(0)
    # Crops of real structure: the shipped model's conv3 has units that stay off on noise.
    return torch.rand(4, 1, 64, 64)


def test_onnx_round_trip_gives_the_same_logits(exported, faces):
    reference, path = exported
    model = get_model("onnx", weights=path, class_names=",".join(reference.class_names))
    assert model.class_names == reference.class_names and model.input_size == (1, 64, 64)
    assert model.card["weights"]["format"] == "onnx"
    with torch.no_grad():
        torch.testing.assert_close(model.module(faces), reference.module(faces), atol=1e-5, rtol=1e-5)
    # the rectified maps of the three conv blocks, then fc1's ReLU is not a feature map
    assert len(model.layers) == 3


@pytest.mark.parametrize("method", ["deconv", "guided-backprop"])
def test_onnx_round_trip_gives_the_same_maps(exported, faces, method):
    reference, path = exported
    model = get_model("onnx", weights=path, class_names=",".join(reference.class_names))
    attribution = get_attribution(method)
    for ours, theirs in zip(model.layers, reference.layers):
        units = [0, 3, 7]
        mine = attribution.attribute_units(model.module, faces, ours, units)
        original = attribution.attribute_units(reference.module, faces, theirs, units)
        assert original.abs().amax() > 0
        torch.testing.assert_close(mine, original, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attribution.attribute(model.module, faces, 5), attribution.attribute(reference.module, faces, 5),
                               atol=1e-5, rtol=1e-4)


def test_a_card_beside_the_onnx_file_names_the_classes(exported, tmp_path):
    reference, path = exported
    copy = tmp_path / "net.onnx"
    copy.write_bytes(path.read_bytes())
    (tmp_path / "net.json").write_text(json.dumps({"format": "interp-model-card", "architecture": reference.architecture(),
                                                   "dataset": {"name": "synthfacs"}}))
    model = get_model("onnx", weights=copy)
    assert model.class_names == reference.class_names and model.card["dataset"]["name"] == "synthfacs"
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(path.read_bytes())
    with pytest.warns(UserWarning, match="no class names"):
        unnamed = get_model("onnx", weights=bare)
    assert unnamed.class_names == [f"class_{i}" for i in range(8)]
