"""The run and bench reports: per-AU figures with the right faces, tidy CSVs, and pages checked in a real browser."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import interpret_core
from interpret_core.cli import main

from test_bench import _bench, stand_ins  # noqa: F401  (fixture: the bench stand-ins, a tiny model and fake faces)
from test_run import PLANTED_ARGS, planted_plugin  # noqa: F401  (fixture)

YELLOW = (255, 212, 0)  # interpret_core.render.figures.OUTLINE_COLOUR


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _outline_pixels(png: bytes) -> np.ndarray:
    """bool [H, W]: pixels within a small distance of the outline colour."""
    return (np.abs(_pixels(png) - np.array(YELLOW)).sum(axis=2) < 60)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    from test_run import _registered
    from interp_metrics.planted import PlantedDataset, PlantedModel, UnitMaxGradient

    out = tmp_path_factory.mktemp("planted-report") / "run"
    with _registered("test-report-planted", interp_register_datasets=[PlantedDataset],
                     interp_register_models=[PlantedModel], interp_register_attributions=[UnitMaxGradient]):
        assert main(PLANTED_ARGS + ["--out", str(out), "--json"]) == 0
        dataset = interpret_core.get_dataset("planted-aus")
        yield out, json.loads((out / "results.json").read_text()), dataset


def test_per_au_figures_show_one_face_per_sequence_with_the_au(planted_run):
    out, results, dataset = planted_run
    panels = results["figures"]["per_au"]
    primary = [row for row in results["mapping"] if row.get("rank", 0) == 0]
    assert panels and set(panels) == {f"AU{row['au']:02d}" for row in primary}
    for key, panel in panels.items():
        au = int(panel["au"])
        assert 1 <= len(panel["with_au"]) <= 6
        # at most one frame per sequence, and every face shown with the AU lists it; the contrast faces do not
        assert len(set(panel["sequences_with"])) == len(panel["with_au"])
        assert panel["sequences_with"] == [dataset[i].sequence for i in panel["with_au"]]
        assert all(au in dataset[i].aus for i in panel["with_au"])
        assert all(au not in dataset[i].aus for i in panel["without_au"])
        png = (out / panel["file"]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert _outline_pixels(png).sum() > 20, f"{key}: no AU region outlined"


def test_tile_outline_sits_where_the_mask_is():
    from interpret_core.render.figures import Tile, au_tiles_figure

    face = np.full((32, 32), 0.5, dtype=np.float32)
    mask = np.zeros((32, 32), dtype=bool)
    mask[2:10, 2:10] = True  # top-left of the face
    with_mask = au_tiles_figure("t", [Tile(face, np.zeros_like(face), mask, 1.0)], [])
    without = au_tiles_figure("t", [Tile(face, np.zeros_like(face), None, 1.0)], [])
    outline = _outline_pixels(with_mask)
    assert outline.sum() > 20 and _outline_pixels(without).sum() == 0
    # the tile is the only grey area: the outline lies in its top-left quarter
    grey = (np.abs(_pixels(with_mask) - 128).max(axis=2) < 3)
    rows, cols = np.nonzero(grey)
    mid_row, mid_col = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    ys, xs = np.nonzero(outline)
    assert ys.mean() < mid_row and xs.mean() < mid_col


def test_figures_are_deterministic():
    from interpret_core.render.figures import Tile, au_tiles_figure, distance_heatmap

    rng = np.random.default_rng(0)
    tiles = [Tile(rng.random((16, 16)), rng.standard_normal((16, 16)), rng.random((16, 16)) > 0.7, 2.5, "S1") for _ in range(3)]
    assert au_tiles_figure("x", tiles, tiles[:1]) == au_tiles_figure("x", tiles, tiles[:1])
    matrix = rng.uniform(-1, 1, (5, 12))
    args = (matrix, [f"AU{i}" for i in range(5)], [str(i) for i in range(12)])
    assert distance_heatmap(*args, title="t", value_label="delta") == distance_heatmap(*args, title="t", value_label="delta")


def test_csvs_read_tidy_with_pandas(planted_run):
    import pandas
    out, results, _ = planted_run
    scores = pandas.read_csv(out / "scores.csv")
    assert len(scores) == len(results["scores"])
    assert "score" not in scores.columns and "concept" not in scores.columns
    for column in ("au", "unit", "n_with", "n_without"):
        assert str(scores[column].dtype) == "int64", column
    assert str(scores["distance"].dtype) == "float64"
    assert scores["au_label"].str.fullmatch(r"AU\d\d").all()
    mapping = pandas.read_csv(out / "mapping.csv")
    assert len(mapping) == sum(1 for row in results["mapping"] if row.get("rank", 0) == 0)
    assert str(mapping["au"].dtype) == "int64" and str(mapping["unit"].dtype) == "int64"
    assert (mapping["au_label"] == [f"AU{au:02d}" for au in mapping["au"]]).all()
    # an AU column with gaps is written as labels only, so no integer column turns float
    assert not [c for c in scores.columns if c.endswith("_au") and scores[c].dtype == "float64"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for the report tests: apt-get update && apt-get install -y chromium")
    return path


def _check_page(page_path: Path, section_selector: str | None = None) -> dict:
    """Open ``page_path`` in headless Chromium; every <img> must load. Keeps a screenshot when a check fails."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=args)
        try:
            page = browser.new_page()
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate("Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))")
            sections = page.evaluate(
                f"Array.from(document.querySelectorAll({json.dumps(section_selector)})).map(s => ({{id: s.id, imgs: s.querySelectorAll('img').length}}))"
            ) if section_selector else []
            broken = [image["src"] for image in images if not image["ok"]]
            empty = [section["id"] for section in sections if section["imgs"] == 0]
            if broken or empty or not images:
                shots = Path(os.environ.get("INTERP_TEST_ARTIFACTS", tempfile.mkdtemp(prefix="interp-shots-")))
                shots.mkdir(parents=True, exist_ok=True)
                shot = shots / f"{page_path.stem}.png"
                page.screenshot(path=str(shot), full_page=True)
                pytest.fail(f"{page_path.name}: broken images {broken}, sections without a figure {empty}; screenshot {shot}")
            return {"images": images, "sections": sections}
        finally:
            browser.close()


def test_report_html_in_a_real_browser(planted_run):
    out, results, _ = planted_run
    checked = _check_page(out / "report.html", "section.au")
    primary = [row for row in results["mapping"] if row.get("rank", 0) == 0]
    assert {section["id"] for section in checked["sections"]} == {f"AU{row['au']:02d}" for row in primary}
    assert len(checked["images"]) >= len(primary) + 2  # per-AU figures plus the overview plots


def test_bench_html_in_a_real_browser(stand_ins, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(_bench(out, "test-bench-gradient,centre-gaussian", metrics="au-pointing-game,deletion")) == 0
    result = json.loads(capsys.readouterr().out)
    checked = _check_page(out / "bench.html", "figure[data-metric]")
    from interpret_core.workflows.bench import table_columns

    # one chart per table column (a metric and each extra it shows), each with its image
    assert len(checked["sections"]) == len(table_columns(result)) >= len(result["metrics"])
    srcs = {image["src"] for image in checked["images"]}
    assert "bench-figures/ranks.png" in srcs and "bench-figures/examples.png" in srcs
