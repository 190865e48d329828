"""``interp explain``: photos to prediction, map over the aligned face, and relevance per AU region."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from interpret_core.cli import main
from interpret_core.workflows.explain import outline, region_shares


def test_region_shares_give_chance_for_a_flat_map_and_all_for_a_concentrated_one():
    region = np.zeros((8, 8), dtype=bool)
    region[2:4, 2:6] = True
    flat = region_shares(np.ones((8, 8)), {12: region})[12]
    assert flat["share"] == pytest.approx(flat["area_fraction"]) and flat["ratio"] == pytest.approx(1.0)
    assert flat["area_fraction"] == pytest.approx(8 / 64)
    inside = np.where(region, -2.0, 0.0)  # sign does not matter: |map|
    assert region_shares(inside, {12: region})[12]["share"] == pytest.approx(1.0)
    assert np.isnan(region_shares(np.zeros((8, 8)), {12: region})[12]["share"])


def test_outline_is_the_boundary():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:5, 1:5] = True
    edge = outline(mask)
    assert edge.sum() == 12 and not edge[2:4, 2:4].any()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.jpg", quality=95)
    Image.new("RGB", (240, 200), (90, 120, 150)).save(folder / "wall.png")
    return folder


def test_explain_the_astronaut_says_happy(photos, tmp_path, capsys):
    out = tmp_path / "explained"
    code = main(["explain", str(photos / "astronaut.jpg"), str(photos / "wall.png"), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["model"]["name"] == "fer2013-minixception" and summary["model"]["trained"] is True
    (photo,) = summary["photos"]
    assert photo["predicted"] == "happy" and photo["probability"] > 0.9
    assert sum(photo["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    regions = photo["au_regions"]
    assert {"AU1", "AU4", "AU6", "AU12", "AU25"} <= set(regions)
    for values in regions.values():
        assert 0.0 <= values["share"] <= 1.0 and 0.0 < values["area_fraction"] < 1.0
    shares = [v["share"] for v in regions.values()]
    assert shares == sorted(shares, reverse=True)  # ranked
    assert [row["path"] for row in summary["skipped"]] == ["wall.png"]
    assert "wall.png" in captured.err and "no face" in captured.err
    picture = Image.open(out / "astronaut.png")
    assert picture.size[0] > 2 * 64 * 4 and picture.mode == "RGB"
    saved = json.loads((out / "astronaut.json").read_text())
    assert saved["predicted"] == "happy" and len(saved["landmarks"]) == 68
    assert json.loads((out / "explain.json").read_text())["photos"][0]["png"] == "astronaut.png"


def test_explain_errors(photos, tmp_path, capsys):
    assert main(["explain", str(photos / "missing.jpg"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    assert main(["explain", str(photos / "wall.png"), "--out", str(tmp_path / "y")]) == 1
    assert "no face" in capsys.readouterr().err
    assert main(["explain", str(photos / "astronaut.jpg"), "--target", "pain", "--out", str(tmp_path / "z")]) == 2
    assert "angry" in capsys.readouterr().err  # lists the model's classes
