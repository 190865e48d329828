"""Pictures of what units and classes respond to: Zeiler-Fergus grids and heatmap overlays.

* :func:`unit_grids` -- for each unit of a layer, its top-k images of a data
  set (ranked by the unit's maximal activation, from
  :func:`interpret_core.analysis.unit_scan.scan_units`), each drawn as the image
  patch under the receptive field of the maximum beside the unit's projection
  (``deconv`` by default), cropped the same way.
* :func:`class_overlays` -- each image beside its class-level attribution,
  overlaid as a heatmap.
* :func:`write_unit_grids` and :func:`write_class_overlays` -- either, as PNGs
  plus an ``index.html`` page with relative links and ``summary.json``; the
  unit grids keep their ranking scan for ``resume`` through the same
  :func:`~interpret_core.analysis.unit_scan.cached_scan` as ``interp run``.
  :func:`write_visualization` picks one (what ``interp visualize`` writes).

Every map is normalised on its own; signed maps use the diverging blue-white-
red colour map (red = positive), unsigned ones a heat ramp; everything is
enlarged with nearest-neighbour so single pixels stay visible. No torch at
import time.
"""

from __future__ import annotations

import dataclasses
import html
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.analysis.sampling import even_indices  # noqa: F401  (re-exported: part of this module's API)
from interpret_core.util.paths import slug
from interpret_core.util.progress import ProgressLike, start_task
from interpret_core.render.imaging import diverging_rgb, grey_to_rgb, grid, heat_rgb, overlay, save_png, upscale

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Attribution, Dataset, Model
    from interpret_core.nn.receptive_field import ReceptiveField
    from interpret_core.analysis.unit_scan import UnitScan

__all__ = [
    "UnitFigure",
    "unit_grids",
    "unit_tile",
    "class_overlays",
    "write_visualization",
    "write_unit_grids",
    "write_class_overlays",
    "crop_window",
    "map_rgb",
    "even_indices",
]

SPACER = 3  # white pixels between an image and its map


@dataclasses.dataclass
class UnitFigure:
    """One unit's grid.

    Attributes:
        layer, unit: which unit.
        rgb: uint8 [H, W, 3], the grid of (patch | projection) tiles.
        full_rgb: uint8 [H, W, 3], the same images uncropped (whole input | projection).
        indices: data-set indices of the top-k images, best first.
        maxima: the unit's maximal activation on each of them.
        positions: (row, col) of each maximum in the layer's output grid.
        windows: (y0, y1, x0, x1) receptive-field window of each maximum (unclipped).
    """

    layer: str
    unit: int
    rgb: np.ndarray
    full_rgb: np.ndarray
    indices: list[int]
    maxima: list[float]
    positions: list[tuple[int, int]]
    windows: list[tuple[int, int, int, int]]


def crop_window(values: np.ndarray, window: tuple[int, int, int, int], fill: float) -> np.ndarray:
    """``values[y0:y1, x0:x1]``; parts of the window past the array are ``fill``."""
    y0, y1, x0, x1 = window
    height, width = values.shape
    patch = np.full((y1 - y0, x1 - x0), fill, dtype=np.float32)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)
    if sy1 > sy0 and sx1 > sx0:
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = values[sy0:sy1, sx0:sx1]
    return patch


def map_rgb(values: np.ndarray, signed: bool) -> np.ndarray:
    """A map [H, W] normalised on its own: diverging if signed, heat ramp of |values| if not."""
    return diverging_rgb(values) if signed else heat_rgb(np.abs(values))


def _zoom_for(shape: tuple[int, int], tile: int) -> int:
    return max(2, int(round(tile / max(shape))))


def unit_tile(image: np.ndarray, projection: np.ndarray, window: tuple[int, int, int, int] | None,
              signed: bool = True, tile: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(patch | projection, whole image | projection) RGB tiles for one image.

    ``image`` and ``projection`` are [H, W]; ``window`` is the receptive field
    of the maximum (None: whole image). Outside the image the patch shows the
    image's mean grey and the projection 0. Both tiles are enlarged so their
    longer side is about ``tile`` pixels (nearest neighbour).
    """
    if window is None:
        window = (0, image.shape[0], 0, image.shape[1])
    patch = crop_window(image, window, fill=float(image.mean()))
    patch_map = crop_window(projection, window, fill=0.0)
    zoom = _zoom_for(patch.shape, tile)
    left, right = upscale(grey_to_rgb(patch), zoom), upscale(map_rgb(patch_map, signed), zoom)
    spacer = np.full((left.shape[0], SPACER, 3), 255, dtype=np.uint8)
    cropped = np.concatenate([left, spacer, right], axis=1)
    zoom_full = _zoom_for(image.shape, tile)
    full_left = upscale(grey_to_rgb(image), zoom_full)
    full_right = upscale(map_rgb(projection, signed), zoom_full)
    y0, y1, x0, x1 = (max(v, 0) * zoom_full for v in window)
    _outline(full_left, y0, min(y1, full_left.shape[0]), x0, min(x1, full_left.shape[1]))
    spacer = np.full((full_left.shape[0], SPACER, 3), 255, dtype=np.uint8)
    return cropped, np.concatenate([full_left, spacer, full_right], axis=1)


def _outline(rgb: np.ndarray, y0: int, y1: int, x0: int, x1: int, colour=(255, 200, 0)) -> None:
    """Draw the receptive-field box on the whole image (one-pixel yellow frame)."""
    if y1 <= y0 or x1 <= x0:
        return
    rgb[y0, x0:x1] = colour
    rgb[y1 - 1, x0:x1] = colour
    rgb[y0:y1, x0] = colour
    rgb[y0:y1, x1 - 1] = colour


def _images(dataset: Dataset, indices: Sequence[int]) -> np.ndarray:
    from interpret_core.analysis.unit_scan import load_batch

    images, _, _ = load_batch(dataset, np.asarray(list(indices), dtype=np.int64))
    return images


def unit_grids(
    model: Model,
    dataset: Dataset,
    layer: str,
    method: Attribution,
    units: Sequence[int] | None = None,
    *,
    top_k: int = 9,
    scan: UnitScan | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
    tile: int = 96,
    columns: int | None = None,
    progress: ProgressLike = None,
) -> list[UnitFigure]:
    """Zeiler-Fergus grids for ``units`` of ``layer`` (default: all units).

    Args:
        method: an attribution with ``supports_units`` (e.g. ``deconv``).
        scan: a :class:`UnitScan` of ``layer``; computed over ``indices`` if None.
        indices: data-set indices to rank (default all).
        tile: approximate side in pixels of each enlarged image.
        columns: tiles per grid row (default ceil(sqrt(k))).
        progress: a :class:`~interpret_core.util.progress.Progress` (a task is added), ``callable(done, total)`` or None.
    """
    from interpret_core.nn.receptive_field import receptive_field
    from interpret_core.analysis.unit_scan import scan_units

    _require_units(method)
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}", "e.g. --top-k 9")
    if scan is None or layer not in scan.layers:
        scan = scan_units(model, dataset, [layer], batch_size=batch_size, top_k=top_k, indices=indices, progress=progress)
    total_units = scan.units(layer)
    unit_list = list(range(total_units)) if units is None else [int(u) for u in units]
    bad = [u for u in unit_list if not 0 <= u < total_units]
    if bad:
        raise UsageError(f"unit(s) {bad} out of range: layer {layer!r} has {total_units} units", f"use 0..{total_units - 1}")
    try:
        field: ReceptiveField | None = receptive_field(model.module, layer, tuple(model.input_size))
    except CapabilityError:
        field = None
    row_of = {int(index): n for n, index in enumerate(scan.indices)}
    task = start_task(progress, f"projecting {layer}", len(unit_list))
    figures = []
    for unit in unit_list:
        top = [int(i) for i in scan.topk[layer][unit][:top_k]]
        images = _images(dataset, top)
        inputs = model.to_input(images)
        projection = method.attribute_units(model.module, inputs, layer, [unit])
        maps = projection.detach()[:, 0].sum(dim=1).cpu().numpy()  # [k, H, W], summed over channels
        shown = inputs.detach().mean(dim=1).cpu().numpy()  # what the network saw, [k, H, W]
        patch_tiles, full_tiles, windows, positions, maxima = [], [], [], [], []
        for n, index in enumerate(top):
            row, col = (int(v) for v in scan.argmax[layer][row_of[index], unit])
            window = field.window(row, col) if field is not None else (0, shown.shape[1], 0, shown.shape[2])
            cropped, full = unit_tile(shown[n], maps[n], window, signed=method.signed, tile=tile)
            patch_tiles.append(cropped)
            full_tiles.append(full)
            windows.append(tuple(int(v) for v in window))
            positions.append((row, col))
            maxima.append(float(scan.maxima[layer][row_of[index], unit]))
        cols = columns or int(np.ceil(np.sqrt(len(top))))
        figures.append(
            UnitFigure(
                layer=layer,
                unit=unit,
                rgb=grid(patch_tiles, columns=cols, pad=6),
                full_rgb=grid(full_tiles, columns=cols, pad=6),
                indices=top,
                maxima=maxima,
                positions=positions,
                windows=windows,
            )
        )
        task.advance()
    return figures


def class_overlays(
    model: Model,
    dataset: Dataset,
    method: Attribution,
    indices: Sequence[int],
    *,
    target: str | int = "predicted",
    tile: int = 128,
    batch_size: int = 32,
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Each image beside its class-level attribution overlaid as a heatmap.

    Args:
        target: ``"predicted"`` (the model's top class), ``"label"`` (the
            sample's emotion; falls back to predicted if unlabelled) or a class index.

    Returns:
        (tiles, rows): one uint8 RGB tile per image ([image | overlay | map]),
        and per image {index, target, class, predicted, label}.
    """
    import torch

    tiles: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    from interpret_core.api.class_names import match_classes

    class_names = list(model.class_names)
    # A sample's emotion indexes the data set's classes, which may differ from the
    # model's (CK+'s "anger" is FER2013's "angry"): map them by name, through the
    # one synonym table, and say which classes have no counterpart.
    dataset_names = list(dataset.class_names)
    class_match = match_classes(class_names, dataset_names)
    model_class = class_match.model_index
    if target == "label" and class_match.unmatched_dataset:
        warnings.warn(
            (class_match.warning(f"model {model.name!r}", f"data set {dataset.name!r}") or "")
            + "; images of those classes are explained for the predicted class",
            stacklevel=2,
        )

    for begin in range(0, len(indices), batch_size):
        chunk = [int(i) for i in indices[begin : begin + batch_size]]
        samples = [dataset[i] for i in chunk]
        images = np.stack([np.asarray(s.image, dtype=np.float32) for s in samples])
        inputs = model.to_input(images)
        with torch.no_grad():
            predicted = model.module(inputs).argmax(dim=1)
        if target == "predicted":
            targets = predicted
        elif target == "label":
            labels = [model_class(s.emotion) for s in samples]
            targets = torch.tensor([p if l is None else l for l, p in zip(labels, predicted.tolist())], device=inputs.device)
        else:
            t = int(target)
            if not 0 <= t < len(class_names):
                raise UsageError(f"target class {t} out of range 0..{len(class_names) - 1}", "use a class index or 'predicted'")
            targets = torch.full((len(chunk),), t, dtype=torch.long, device=inputs.device)
        maps = method.attribute(model.module, inputs, targets).detach().sum(dim=1).cpu().numpy()
        shown = inputs.detach().mean(dim=1).cpu().numpy()
        for n, index in enumerate(chunk):
            zoom = _zoom_for(shown[n].shape, tile)
            spacer = np.full((shown[n].shape[0] * zoom, SPACER, 3), 255, dtype=np.uint8)
            tiles.append(
                np.concatenate(
                    [
                        upscale(grey_to_rgb(shown[n]), zoom),
                        spacer,
                        upscale(overlay(shown[n], maps[n], signed=method.signed), zoom),
                        spacer,
                        upscale(map_rgb(maps[n], method.signed), zoom),
                    ],
                    axis=1,
                )
            )
            label = samples[n].emotion
            label_name = dataset_names[label] if label is not None and 0 <= label < len(dataset_names) else None
            rows.append(
                {
                    "index": index,
                    "target": int(targets[n]),
                    "class": class_names[int(targets[n])],
                    "predicted": class_names[int(predicted[n])],
                    "label": label_name,
                }
            )
    return tiles, rows


def _require_units(method: Attribution) -> None:
    if not method.supports_units:
        raise CapabilityError(
            f"attribution {method.name!r} cannot project units",
            "use a method with unit projections (supports_units; see `interp plugins`)",
        )


def _summary_head(method: Attribution, method_spec: str, meta: dict[str, Any] | None, layer: str | None) -> dict[str, Any]:
    return {
        "method": method_spec,
        "model": (meta or {}).get("model"),
        "dataset": (meta or {}).get("dataset"),
        "layer": layer,
        "signed": bool(method.signed),
        "index": "index.html",
    }


def _write_page(out: Path, summary: dict[str, Any], title: str, note: str, body: str) -> dict[str, Any]:
    """``index.html`` (the page) and ``summary.json``; returns ``summary``."""
    from interpret_core.util.io import write_json, write_text

    from markupsafe import Markup

    from interpret_core.render.pages import render_page

    # ``body`` is HTML its callers built with every value escaped; the template escapes ``title`` and ``note``
    write_text(out / "index.html", render_page("visualize_index.html", title=title, note=note, body=Markup(body)))
    write_json(out / "summary.json", summary)
    return summary


def _unit_entry(
    out: Path, folder: str, unit: int, draw: Callable[[int], UnitFigure], method_spec: str, images: list[int], resume: bool
) -> dict[str, Any]:
    """One unit's PNGs and sidecar JSON: reused with ``resume`` when drawn by the same method on the same images."""
    from interpret_core.util.io import read_json, write_json

    name = f"{folder}/unit_{unit:03d}.png"
    full_name = f"{folder}/unit_{unit:03d}_full.png"
    sidecar = out / folder / f"unit_{unit:03d}.json"
    if resume and sidecar.exists() and (out / name).exists() and (out / full_name).exists():
        previous = read_json(sidecar)
        if previous.get("method") == method_spec and previous.get("images") == images:
            return previous
    figure = draw(unit)
    save_png(out / name, figure.rgb)
    save_png(out / full_name, figure.full_rgb)
    entry = {
        "unit": unit,
        "method": method_spec,
        "png": name,
        "full_png": full_name,
        "size": [int(figure.rgb.shape[1]), int(figure.rgb.shape[0])],
        "full_size": [int(figure.full_rgb.shape[1]), int(figure.full_rgb.shape[0])],
        "images": figure.indices,
        "maxima": figure.maxima,
        "positions": [list(p) for p in figure.positions],
        "windows": [list(w) for w in figure.windows],
    }
    write_json(sidecar, entry)
    return entry


def _unit_section(layer: str, entry: dict[str, Any], method_spec: str) -> str:
    esc, unit, maxima = html.escape, entry["unit"], entry["maxima"]
    inactive = (
        "" if entry["active"] else
        " <strong>The unit is not active on any of these images (maximum &le; 0): its ranking and "
        "projections carry no information.</strong>"
    )
    name, full_name = entry["png"], entry["full_png"]
    return (
        f'<h2 id="unit-{unit}">{esc(layer)} unit {unit}</h2>\n'
        f'<figure><a href="{esc(name)}"><img src="{esc(name)}" alt="{esc(layer)} unit {unit}, receptive-field crops"></a>'
        f"<figcaption>Top {len(entry['images'])} images by maximal activation "
        f"(max {max(maxima):.3g} .. {min(maxima):.3g}): image patch under the receptive "
        f"field of the maximum | {esc(method_spec)} projection.{inactive}</figcaption></figure>\n"
        f'<figure><a href="{esc(full_name)}"><img src="{esc(full_name)}" alt="{esc(layer)} unit {unit}, whole images" width="{entry["full_size"][0] // 2}"></a>'
        f"<figcaption>Whole images (receptive field framed in yellow) | projection.</figcaption></figure>\n"
    )


def write_unit_grids(
    out: str | os.PathLike,
    model: Model,
    dataset: Dataset,
    method: Attribution,
    layer: str,
    *,
    method_spec: str,
    units: Sequence[int] | None = None,
    top_k: int = 9,
    indices: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
    progress: ProgressLike = None,
    meta: dict[str, Any] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """One Zeiler-Fergus grid per unit of ``layer`` as PNGs, plus ``index.html`` and ``summary.json``.

    Writes ``<layer>/unit_<u>.png`` (receptive-field crops) and
    ``<layer>/unit_<u>_full.png`` (whole images) for ``units`` (default all),
    ranked over ``indices`` (default all images). The ranking scan is kept in
    ``<layer>/scan.npz`` (:func:`~interpret_core.analysis.unit_scan.cached_scan`,
    as ``interp run`` keeps its own) and every finished unit in
    ``<layer>/unit_<u>.json``; with ``resume`` an interrupted run reuses both
    when the model, data, images and method match (``meta`` identifies model
    and data). Returns the JSON-able summary.
    """
    from interpret_core.analysis.unit_scan import cached_scan

    _require_units(method)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folder = slug(layer)
    chosen = np.arange(len(dataset), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    scan, _ = cached_scan(
        out / folder / "scan.npz", model, dataset, [layer], indices=chosen,
        meta={**(meta or {}), "layer": layer, "top_k": int(top_k)}, resume=resume,
        batch_size=batch_size, top_k=top_k, progress=progress,
    )
    total_units = scan.units(layer)
    unit_list = list(range(total_units)) if units is None else [int(u) for u in units]
    bad = [u for u in unit_list if not 0 <= u < total_units]
    if bad:
        raise UsageError(f"unit(s) {bad} out of range: layer {layer!r} has {total_units} units", f"use 0..{total_units - 1}")

    def draw(unit: int) -> UnitFigure:
        (figure,) = unit_grids(model, dataset, layer, method, [unit], top_k=top_k, scan=scan)
        return figure

    task = start_task(progress, f"projecting {layer}", len(unit_list))
    entries, sections = [], []
    for unit in unit_list:
        images = [int(i) for i in scan.topk[layer][unit][:top_k]]
        entry = _unit_entry(out, folder, unit, draw, method_spec, images, resume)
        entry["active"] = bool(max(entry["maxima"]) > 0)
        entries.append(entry)
        sections.append(_unit_section(layer, entry, method_spec))
        task.advance()
    summary = _summary_head(method, method_spec, meta, layer)
    summary["units"] = entries
    toc = " ".join(f'<a href="#unit-{u}">{u}</a>' for u in unit_list)
    colour = "red = positive, blue = negative, white = 0" if method.signed else "black = 0, yellow/white = large"
    note = (
        f"Each unit's top-{top_k} images of the data set, ranked by the unit's maximal activation; each image "
        f"patch under the receptive field of the maximum beside the projection of that single activation back "
        f"to pixel space. Each projection is normalised on its own ({colour})."
    )
    return _write_page(out, summary, f"{method_spec}: {layer}", note, f"<p>Units: {toc}</p>\n" + "".join(sections))


def write_class_overlays(
    out: str | os.PathLike,
    model: Model,
    dataset: Dataset,
    method: Attribution,
    *,
    method_spec: str,
    indices: Sequence[int] | np.ndarray | None = None,
    target: str | int = "predicted",
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Class-level overlays of ``indices`` (default: the first 16 images) as ``overlays.png``, plus the page.

    ``target`` as in :func:`class_overlays`. Returns the JSON-able summary.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(range(min(16, len(dataset)))) if indices is None else [int(i) for i in indices]
    tiles, rows = class_overlays(model, dataset, method, chosen, target=target)
    if not tiles:
        raise UsageError("no images to draw", "check --limit and the data set")
    save_png(out / "overlays.png", grid(tiles, columns=2, pad=6))
    summary = _summary_head(method, method_spec, meta, None)
    summary["overlays"] = "overlays.png"
    summary["images"] = rows
    esc = html.escape
    items = ", ".join(f"#{r['index']}: {esc(r['class'])}" for r in rows)
    body = (
        f'<figure><a href="overlays.png"><img src="overlays.png" alt="class-level overlays"></a>'
        f"<figcaption>Image | overlay | map, for the target class of each image ({esc(items)}).</figcaption></figure>\n"
    )
    note = (
        f"Target: {esc(str(target))}. Each map is normalised on its own; "
        + ("red = positive, blue = negative." if method.signed else "brighter = larger magnitude.")
    )
    return _write_page(out, summary, f"{method_spec}: class-level maps", note, body)


def write_visualization(
    out: str | os.PathLike,
    model: Model,
    dataset: Dataset,
    method: Attribution,
    *,
    method_spec: str,
    layer: str | None = None,
    target: str | int = "predicted",
    **options: Any,
) -> dict[str, Any]:
    """What ``interp visualize`` writes: :func:`write_unit_grids` of ``layer``, or without one :func:`write_class_overlays`.

    ``options`` go to the chosen one: ``units``, ``top_k``, ``indices``,
    ``batch_size``, ``progress``, ``meta``, ``resume`` for unit grids;
    ``indices`` and ``meta`` for overlays (the others do not apply there).
    """
    if layer is not None:
        return write_unit_grids(out, model, dataset, method, layer, method_spec=method_spec, **options)
    overlay_options = {key: options[key] for key in ("indices", "meta") if key in options}
    return write_class_overlays(out, model, dataset, method, method_spec=method_spec, target=target, **overlay_options)
