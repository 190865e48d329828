"""``interp visualize`` and interpret_core.workflows.visualize on fer-cnn and a small SynthFACS set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interpret_core import get_attribution, get_dataset, get_model
from interpret_core.cli import main
from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.nn.receptive_field import receptive_field
from interpret_core.analysis.sampling import even_indices
from interpret_core.workflows.visualize import crop_window, unit_grids, unit_tile


def _links(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"#]+)"', page.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model():
    import torch

    torch.manual_seed(0)
    return get_model("fer-cnn")


def test_cli_unit_grids(synthfacs_root, tmp_path, capsys):
    out = tmp_path / "vis"
    code = main([
        "visualize", "--method", "deconv", "--layer", "conv2", "--units", "0,3-4", "--top-k", "4",
        "--data-root", str(synthfacs_root), "--limit", "40", "--out", str(out), "--json",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert [u["unit"] for u in summary["units"]] == [0, 3, 4]
    field = receptive_field(get_model("fer-cnn").module, "conv2", (1, 64, 64))
    for entry in summary["units"]:
        assert len(entry["images"]) == 4 and entry["maxima"] == sorted(entry["maxima"], reverse=True)
        with Image.open(out / entry["png"]) as image:
            width, height = image.size
            assert image.mode == "RGB" and [width, height] == entry["size"]
        # 2 x 2 tiles of (patch | projection), each patch enlarged to >= 90 px.
        assert height >= 2 * 90 and width >= 2 * 2 * 90
        for window, position in zip(entry["windows"], entry["positions"]):
            assert tuple(window) == field.window(*position)
        assert (out / entry["full_png"]).stat().st_size > 1000
    page = out / "index.html"
    links = _links(page)
    assert {u["png"] for u in summary["units"]} <= set(links)
    assert all((out / link).is_file() for link in links)
    assert not any(link.startswith("/") for link in links)
    assert json.loads((out / "summary.json").read_text())["units"] == summary["units"]
    assert "conv2 unit 3" in page.read_text()


def test_cli_resume_reuses_scan_and_finished_units(synthfacs_root, tmp_path, capsys, monkeypatch):
    import interpret_core.analysis.unit_scan as unit_analysis
    import interpret_core.workflows.visualize as visualize

    out = tmp_path / "vis"
    args = [
        "visualize", "--layer", "conv1", "--units", "1,2", "--top-k", "2", "--limit", "12",
        "--data-root", str(synthfacs_root), "--out", str(out), "--json",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    (out / "conv1" / "unit_002.png").unlink()  # as if interrupted while drawing unit 2

    drawn = []
    real_grids = visualize.unit_grids

    def counting_grids(*a, **k):
        drawn.append(a[4])
        return real_grids(*a, **k)

    def no_scan(*a, **k):
        raise AssertionError("the scan should have been reused")

    monkeypatch.setattr(unit_analysis, "scan_units", no_scan)
    monkeypatch.setattr(visualize, "unit_grids", counting_grids)
    assert main(args + ["--resume"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert drawn == [[2]]  # only the unfinished unit is projected again
    assert second["units"] == first["units"]
    # A different method does not reuse the finished units.
    assert main(args + ["--resume", "--method", "guided-backprop"]) == 0
    capsys.readouterr()
    assert drawn == [[2], [1], [2]]


def test_cli_class_overlays_and_errors(synthfacs_root, tmp_path, capsys):
    out = tmp_path / "overlays"
    code = main([
        "visualize", "--method", "captum:Saliency", "--data-root", str(synthfacs_root),
        "--limit", "3", "--target", "label", "--out", str(out), "--json",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert len(summary["images"]) == 3 and summary["overlays"] == "overlays.png"
    with Image.open(out / "overlays.png") as image:
        assert image.size[0] >= 2 * 3 * 128 and image.size[1] >= 2 * 128
    assert all((out / link).is_file() for link in _links(out / "index.html"))

    # A class-only method cannot draw unit grids: one line and a hint, exit 2.
    code = main(["visualize", "--method", "grad-cam", "--layer", "conv1", "--data-root", str(synthfacs_root), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot project units" in err and "hint" in err
    code = main(["visualize", "--layer", "conv1", "--units", "99", "--limit", "5", "--data-root", str(synthfacs_root), "--out", str(tmp_path / "y")])
    assert code == 2 and "out of range" in capsys.readouterr().err
    code = main(["visualize", "--units", "1,x", "--layer", "conv1", "--out", str(tmp_path / "z")])
    assert code == 2 and "not a unit number" in capsys.readouterr().err
    code = main(["visualize", "--dataset-option", "colour=1", "--data-root", str(synthfacs_root), "--out", str(tmp_path / "w")])
    assert code == 2 and "colour" in capsys.readouterr().err


def test_cli_dataset_options_reach_the_data_set(synthfacs_root, tmp_path, capsys):
    out = tmp_path / "no-neutral"
    every = len(get_dataset("synthfacs", data_root=synthfacs_root))
    emotional = len(get_dataset("synthfacs", data_root=synthfacs_root, include_neutral=False))
    assert emotional < every
    code = main([
        "visualize", "--method", "deconv", "--data-root", str(synthfacs_root), "--dataset-option", "include_neutral=false",
        "--limit", "2", "--out", str(out), "--json",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["dataset"]["options"] == {"include_neutral": False} and len(summary["images"]) == 2
    assert f"(2 of {emotional} images)" in captured.err


def test_unit_grids_use_the_scan_ranking(synthfacs_root, model):
    from interpret_core.analysis.unit_scan import scan_units

    data = get_dataset("synthfacs", data_root=synthfacs_root)
    indices = even_indices(len(data), 30)
    scan = scan_units(model, data, ["conv3"], top_k=3, indices=indices)
    figures = unit_grids(model, data, "conv3", get_attribution("guided-backprop"), [5], top_k=3, scan=scan)
    assert figures[0].indices == [int(i) for i in scan.topk["conv3"][5]]
    assert figures[0].rgb.dtype == np.uint8 and figures[0].rgb.ndim == 3
    with pytest.raises(CapabilityError):
        unit_grids(model, data, "conv3", get_attribution("saliency"), [0], scan=scan)


def test_tiles_crop_the_receptive_field():
    image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    projection = np.zeros((64, 64), dtype=np.float32)
    projection[10, 12] = 1.0
    patch = crop_window(image, (-3, 7, 5, 15), fill=-1.0)
    assert patch.shape == (10, 10)
    assert (patch[:3] == -1).all() and patch[3, 0] == image[0, 5]
    cropped, full = unit_tile(image, projection, (5, 15, 7, 17), tile=100)
    assert cropped.shape == (100, 2 * 100 + 3, 3)  # 10 px enlarged 10x, twice, plus the spacer
    assert full.shape[0] == 128  # 64 px enlarged 2x
    # The projection's single positive pixel is red at its place in the crop.
    right = cropped[:, 103:]
    red = np.argwhere((right[..., 0] > 150) & (right[..., 2] < 100))
    assert red[:, 0].min() // 10 == 5 and red[:, 1].min() // 10 == 5
    assert list(even_indices(10, 4)) == [0, 3, 6, 9] and len(even_indices(5, None)) == 5
    with pytest.raises(UsageError):
        even_indices(10, 0)


def test_label_targets_map_dataset_classes_to_model_classes_by_name(synthfacs_root, tmp_path, capsys):
    # A 7-class data set (no neutral) explained by the 8-class model: labels are matched by name.
    out = tmp_path / "labels"
    code = main([
        "visualize", "--method", "saliency", "--data-root", str(synthfacs_root),
        "--dataset-option", "include_neutral=false", "--limit", "4", "--target", "label", "--out", str(out), "--json",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    dataset = get_dataset("synthfacs", data_root=synthfacs_root, include_neutral=False)
    assert "neutral" not in dataset.class_names
    rows = json.loads(captured.out)["images"]
    assert len(rows) == 4
    for row in rows:
        expected = dataset.class_names[dataset[row["index"]].emotion]
        assert row["label"] == expected
        assert row["class"] == expected  # the explained class is the labelled emotion, not its neighbour
