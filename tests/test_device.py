"""`--device` / `device=`: one resolver, a usage error for a device the machine lacks, CPU results unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from interpret_core.api.errors import UsageError
from interpret_core.cli import main
from interpret_core.nn.device import available_devices, resolve_device

from test_run import PLANTED_ARGS, planted_plugin  # noqa: F401 - the fixture is used by name


@pytest.fixture()
def two_gpus(monkeypatch):
    """This machine as if it had CUDA devices cuda:0 and cuda:1 (and no MPS)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture()
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_and_auto_without_accelerators(cpu_only):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert available_devices() == ["cpu"]


def test_auto_prefers_cuda_then_mps(two_gpus, monkeypatch):
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("mps") == torch.device("mps")


def test_cuda_index_is_checked_against_the_device_count(two_gpus):
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UsageError) as caught:
        resolve_device("cuda:2")
    assert "cuda:2" in caught.value.message and "cpu, cuda:0, cuda:1" in caught.value.message
    assert "--device auto" in caught.value.hint


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "mps"])
def test_a_device_the_machine_lacks_names_the_available_ones(cpu_only, spec):
    with pytest.raises(UsageError) as caught:
        resolve_device(spec)
    assert f"--device {spec}" in caught.value.message and caught.value.message.endswith("available here: cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu:0", ""])
def test_an_unknown_spec_lists_the_accepted_ones(cpu_only, spec):
    with pytest.raises(UsageError) as caught:
        resolve_device(spec)
    assert "unknown device" in caught.value.message and "auto|cpu|cuda|cuda:N|mps" in caught.value.hint


@pytest.mark.parametrize("command", ["run", "train"])
def test_cli_device_cuda_without_cuda_is_a_one_line_usage_error(planted_plugin, cpu_only, tmp_path, capsys, command):  # noqa: F811
    args = PLANTED_ARGS if command == "run" else ["train", "--model", "planted-aus-net", "--dataset", "planted-aus"]
    assert main(args + ["--out", str(tmp_path / "x"), "--device", "cuda"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[0].startswith("error: --device cuda: CUDA is not available; available here: cpu"), lines
    assert len(lines) == 2 and lines[1].startswith("hint:"), lines
    assert not (tmp_path / "x").exists()  # refused before anything ran


def test_device_cpu_gives_the_same_results_as_no_flag(planted_plugin, tmp_path, capsys):  # noqa: F811
    results = []
    for name, extra in (("default", []), ("cpu", ["--device", "cpu"]), ("auto", ["--device", "auto"])):
        assert main(PLANTED_ARGS + ["--out", str(tmp_path / name)] + extra) == 0, capsys.readouterr().err
        results.append(json.loads((tmp_path / name / "results.json").read_text()))
    for key in ("scores", "mapping", "unit_mapping", "summary"):
        assert results[0][key] == results[1][key] == results[2][key], key
    assert (tmp_path / "default" / "scan.npz").read_bytes() == (tmp_path / "cpu" / "scan.npz").read_bytes()


def test_get_model_moves_the_module_and_to_input_follows_it():
    from interpret_core.registry.loader import get_model

    model = get_model("fer-cnn", device="cpu")
    assert model.device == torch.device("cpu")
    images = torch.rand(2, 48, 48)
    on_cpu = model.to_input(images)
    assert on_cpu.device == torch.device("cpu")
    # The meta device stands in for an accelerator this machine lacks: no numbers, but devices are real.
    model.module.to("meta")
    assert model.device == torch.device("meta")
    moved = model.to_input(images)
    assert moved.device == torch.device("meta") and moved.shape == on_cpu.shape and moved.dtype == torch.float32


def test_the_training_device_is_not_part_of_the_recipe():
    from interpret_core.workflows.training import TrainConfig

    assert TrainConfig(model="fer-cnn", dataset="synthfacs", device="cuda:1").recipe() == TrainConfig(
        model="fer-cnn", dataset="synthfacs"
    ).recipe()


def test_explain_device_cuda_without_cuda_is_a_usage_error(cpu_only, tmp_path, capsys):
    photo = tmp_path / "face.png"
    photo.write_bytes(b"not read: the device is refused before any photo is opened")
    assert main(["explain", str(photo), "--out", str(tmp_path / "x"), "--device", "cuda:1"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda:1: CUDA is not available; available here: cpu" in err
    assert not (tmp_path / "x").exists()
