"""The one parser of ``key=value`` options and method specs (`interpret_core.registry.options`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interpret_core import UsageError
from interpret_core.api.errors import UnknownNameError
from interpret_core.registry.loader import open_dataset
from interpret_core.registry.options import (
    parse_method_spec,
    parse_options,
    parse_value,
    split_items,
    split_list,
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("-7", -7),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("FALSE", False),
        ("no", False),
        ("off", False),
        ("None", None),
        ("null", None),
        ("8x8", (8, 8)),
        ("12x8", (12, 8)),
        ("2x3x4", (2, 3, 4)),
        ("[1, 2]", [1, 2]),
        ("(3,4)", (3, 4)),
        ("1,2", (1, 2)),
        ("'a,b'", "a,b"),
        ("text", "text"),
        ("  blur  ", "blur"),
        ("smoothgrad_sq", "smoothgrad_sq"),
        ("NoiseTunnel(Saliency)", "NoiseTunnel(Saliency)"),
        ("8x", "8x"),
        ("", ""),
    ],
)
def test_parse_value(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_split_items_keeps_parentheses_together():
    assert split_items("NoiseTunnel(A, B),nt_samples=8, stdevs=0.1") == ["NoiseTunnel(A, B)", "nt_samples=8", "stdevs=0.1"]
    assert split_items(" a ,, b ,") == ["a", "b"]
    assert split_items("") == []


def test_split_list():
    assert split_list("conv1, conv2") == ["conv1", "conv2"]
    assert split_list(None) is None
    assert split_list(" , ") is None


def test_parse_options_types_and_names():
    assert parse_options(["steps=32", "baseline=blur", "max-batch=8", "window=12x8", "aus=[1, 2]"]) == {
        "steps": 32,
        "baseline": "blur",
        "max_batch": 8,
        "window": (12, 8),
        "aus": [1, 2],
    }
    assert parse_options(None) == {} and parse_options([]) == {}
    assert parse_options(["expr=a=b"]) == {"expr": "a=b"}  # only the first '=' separates


@pytest.mark.parametrize("bad", ["steps", "=3", "1x=3", "two words=3"])
def test_parse_options_errors_name_the_flag(bad):
    with pytest.raises(UsageError) as caught:
        parse_options([bad], where="--dataset-option", example="protocol=peak")
    assert "--dataset-option" in caught.value.message and repr(bad) in caught.value.message
    assert caught.value.hint == "e.g. --dataset-option protocol=peak"


def test_parse_method_spec():
    assert parse_method_spec("deconv") == ("deconv", {})
    assert parse_method_spec(" guided-backprop:max_batch=64 ") == ("guided-backprop", {"max_batch": 64})
    assert parse_method_spec("deconv:max_memory_mb=128") == ("deconv", {"max_memory_mb": 128})
    assert parse_method_spec("captum:Saliency") == ("captum", {"algorithm": "Saliency"})
    assert parse_method_spec("captum:NeuronDeconvolution") == ("captum", {"algorithm": "NeuronDeconvolution"})
    assert parse_method_spec("captum:NoiseTunnel(IntegratedGradients),nt_type=smoothgrad_sq,nt_samples=10,stdevs=0.1") == (
        "captum",
        {"algorithm": "NoiseTunnel(IntegratedGradients)", "nt_type": "smoothgrad_sq", "nt_samples": 10, "stdevs": 0.1},
    )
    assert parse_method_spec("occlusion:window=12x8,baseline=zero") == ("occlusion", {"window": (12, 8), "baseline": "zero"})


@pytest.mark.parametrize("bad", ["", "   ", "Deconv", "deconv_2", "captum:", "captum:steps=3", "deconv:max_batch"])
def test_parse_method_spec_refuses_malformed_specs(bad):
    with pytest.raises(UsageError) as caught:
        parse_method_spec(bad)
    assert caught.value.hint


def test_open_dataset_passes_root_and_options(synthfacs_root):
    with_neutral = open_dataset("synthfacs", synthfacs_root)
    without = open_dataset("synthfacs", str(synthfacs_root), {"include_neutral": False})
    assert "neutral" in with_neutral.class_names and "neutral" not in without.class_names
    assert len(without) < len(with_neutral)
    with pytest.raises(UsageError, match="colour"):
        open_dataset("synthfacs", synthfacs_root, {"colour": 1})
    with pytest.raises(UnknownNameError):
        open_dataset("synthfaces", synthfacs_root)


def test_options_module_does_not_import_torch():
    code = "import sys\nimport interpret_core.registry.options\nassert 'torch' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)
