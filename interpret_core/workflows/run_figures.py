"""The figures of an ``interp run`` report, one question each, per AU rather than per unit.

- ``figures/AU<nn>.png``: the AU's selected unit on its top faces *with* the AU
  (at most one frame per sequence, spread over subjects) and, as the contrast,
  on the faces where it fires most *without* the AU; the AU's region outlined,
  the unit's projection overlaid, its activation written.
- ``figures/distance_<layer>.png``: AU x unit heatmap of the distance.
- ``figures/agreement.png``: held-out spatial agreement per AU against chance,
  with its interval and the verdict.
- ``figures/layers.png``: layer-by-layer summary.
- ``figures/density_<layer>_u<unit>.png``: where a selected unit fires across
  the data set, over the mean face, with the regions of the AUs it was
  selected for.

Everything is computed from the run's scan, the metric's score rows and
mapping; only the faces shown are decoded and projected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import CapabilityError
from interpret_core.util.io import write_bytes
from interpret_core.util.paths import slug

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.analysis.unit_scan import UnitScan
    from interpret_core.api.interfaces import Attribution, Dataset, Model

__all__ = ["FigureSet", "AUPanel", "draw_run_figures", "au_label", "au_order", "select_faces"]

#: faces per row of a per-AU figure
FACES_PER_AU = 6
#: regions in the order figures list AUs (brows first, chin last); unknown regions come after
REGION_ORDER = ("brow", "eyes", "cheeks", "nose", "mouth", "jaw", "head")


def au_label(au: Any) -> str:
    """``AU01``-style label (py-feat's convention); non-numeric concepts as they are."""
    try:
        return f"AU{int(au):02d}"
    except (TypeError, ValueError):
        return str(au)


def au_order(aus: Sequence[Any], dataset: Dataset) -> list[Any]:
    """AUs grouped by face region (:data:`REGION_ORDER`), then by number."""
    def key(au: Any) -> tuple[int, float, str]:
        info = dataset.au_table.get(int(au)) if str(au).isdigit() else None
        region = REGION_ORDER.index(info.region) if info is not None and info.region in REGION_ORDER else len(REGION_ORDER)
        number = float(au) if str(au).isdigit() else float("inf")
        return region, number, str(au)

    return sorted(aus, key=key)


@dataclasses.dataclass
class AUPanel:
    """What the per-AU figure of one AU shows (kept in results.json, and tested).

    Attributes:
        au: the AU number.
        layer, unit: the unit shown (the mapping's selected unit).
        with_au, without_au: data-set indices of the faces shown, best first.
        sequences_with: sequence id of each face in ``with_au``.
        file: the PNG, relative to the run folder.
    """

    au: Any
    layer: str
    unit: int
    with_au: list[int]
    without_au: list[int]
    sequences_with: list[str]
    file: str


@dataclasses.dataclass
class FigureSet:
    """Relative paths of a run's figures."""

    per_au: dict[str, AUPanel] = dataclasses.field(default_factory=dict)
    heatmaps: dict[str, str] = dataclasses.field(default_factory=dict)
    agreement: str | None = None
    layers: str | None = None
    densities: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)

    def files(self) -> set[str]:
        """Every figure's path, relative to the run folder."""
        return ({panel.file for panel in self.per_au.values()} | set(self.heatmaps.values())
                | set(self.densities.values()) | {name for name in (self.agreement, self.layers) if name})

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_au": {key: dataclasses.asdict(panel) for key, panel in self.per_au.items()},
            "heatmaps": dict(self.heatmaps),
            "agreement": self.agreement,
            "layers": self.layers,
            "densities": dict(self.densities),
            "notes": dict(self.notes),
        }


def _presence(scan: UnitScan, dataset: Dataset, au: Any) -> np.ndarray:
    """bool [N]: which scanned images list ``au``."""
    if scan.aus is not None:
        return np.array([int(au) in {int(a) for a in row} for row in scan.aus], dtype=bool)
    numbers, presence = dataset.au_presence([int(au)])
    return presence[scan.indices, 0]


def select_faces(
    scan: UnitScan, dataset: Dataset, layer: str, unit: int, au: Any, k: int = FACES_PER_AU,
    *, sequences: Sequence[str] | None = None, subjects: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """(faces with the AU, faces without it): data-set indices of the unit's strongest images, best first.

    At most one frame per sequence; subjects are spread (one per subject first,
    see :func:`interpret_core.analysis.sampling.spread_top`).
    """
    from interpret_core.analysis.sampling import spread_top

    sequences = dataset.sequences if sequences is None else sequences  # per sample; pass them to reuse across AUs
    subjects = dataset.subjects if subjects is None else subjects
    values = scan.maxima[layer][:, int(unit)]
    order = np.argsort(-values, kind="stable")
    present = _presence(scan, dataset, au)
    ranked_with = [int(scan.indices[n]) for n in order if present[n]]
    ranked_without = [int(scan.indices[n]) for n in order if not present[n]]
    group, subject = (lambda i: sequences[i]), (lambda i: subjects[i])
    return (spread_top(ranked_with, group, k, subject_of=subject),
            spread_top(ranked_without, group, k, subject_of=subject))


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask.astype(bool)
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.NEAREST)
    return np.asarray(image) > 127


class _Projections:
    """The unit projections the figures show, each computed once: one attribution call per (AU, unit) for all its faces.

    Several AUs often select the same unit and share faces; a face already
    projected for that unit is not projected again.
    """

    def __init__(self, model: Model, dataset: Dataset, method: Attribution, scan: UnitScan):
        self.model, self.dataset, self.method, self.scan = model, dataset, method, scan
        self.row_of = {int(index): n for n, index in enumerate(scan.indices)}
        self.done: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}  # -> (face shown, map)
        # A face is read once for all the tiles it appears in: a streaming data set renders it on every read.
        self.samples: dict[int, Any] = {}

    def _sample(self, index: int) -> Any:
        if index not in self.samples:
            self.samples[index] = self.dataset[index]
        return self.samples[index]

    def tiles(self, layer: str, unit: int, au: Any, indices: list[int]) -> list[Any]:
        """Figure tiles for ``indices``: the face the network saw, the unit's projection, the AU region, the activation."""
        import torch

        from interpret_core.render.figures import Tile
        from interpret_core.render.imaging import unit_range

        missing = [i for i in dict.fromkeys(indices) if (layer, unit, i) not in self.done]
        if missing:
            images = np.stack([np.asarray(self._sample(i).image, dtype=np.float32) for i in missing])
            inputs = self.model.to_input(images)
            with torch.enable_grad():
                projection = self.method.attribute_units(self.model.module, inputs, layer, [int(unit)])
            maps = projection.detach()[:, 0].sum(dim=1).cpu().numpy()
            shown = unit_range(inputs.detach().mean(dim=1).cpu().numpy())
            for n, index in enumerate(missing):
                self.done[(layer, unit, index)] = (shown[n], maps[n])
        tiles = []
        for index in indices:
            sample = self._sample(index)
            face, values = self.done[(layer, unit, index)]
            masks = sample.localisation_masks() or {}
            mask = masks.get(int(au)) if str(au).isdigit() else None
            mask = None if mask is None else _resize_mask(np.asarray(mask), face.shape)
            activation = float(self.scan.maxima[layer][self.row_of[index], int(unit)])
            tiles.append(Tile(face, values, mask, activation, f"{sample.subject} {sample.sequence}"))
        return tiles


def _primary(mapping: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in mapping if row.get("rank", 0) == 0 and row.get("layer") is not None and row.get("unit") is not None]


def _interval(row: dict[str, Any], name: str) -> tuple[float | None, float | None]:
    """A row's percentile interval ``<name>_interval`` (e.g. ``agreement``), in the row or its ``stability``."""
    for holder in (row, row.get("stability") or {}):
        value = holder.get(f"{name}_interval") if isinstance(holder, dict) else None
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return value[0], value[1]
    return None, None


def draw_run_figures(
    model: Model,
    dataset: Dataset,
    scan: UnitScan,
    scores: Sequence[dict[str, Any]],
    mapping: Sequence[dict[str, Any]],
    method: Attribution,
    out: Path,
    *,
    value_label: str = "distance",
    signed: bool = True,
    faces: int = FACES_PER_AU,
    progress: Any = None,
) -> FigureSet:
    """Draw every figure of the run report into ``out/figures`` (atomically, one PNG each).

    ``progress``: a :class:`~interpret_core.util.progress.Progress`, ``callable(done, total)`` or None.
    """
    from interpret_core.render import figures as fig
    from interpret_core.util.progress import start_task

    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    result = FigureSet()
    primary = _primary(mapping)

    def save(name: str, png: bytes) -> str:
        relative = f"figures/{name}"
        write_bytes(out / relative, png)
        return relative

    # per AU: the selected unit on faces with and without the AU
    task = start_task(progress, "projecting each AU's unit on its top images", len(primary))
    projections = _Projections(model, dataset, method, scan)
    sequences, subjects = dataset.sequences, dataset.subjects
    for row in primary:
        au, layer, unit = row["au"], row["layer"], int(row["unit"])
        key = au_label(au)
        try:
            with_au, without_au = select_faces(scan, dataset, layer, unit, au, faces, sequences=sequences, subjects=subjects)
            tiles = projections.tiles(layer, unit, au, with_au + without_au)
            tiles_with, tiles_without = tiles[: len(with_au)], tiles[len(with_au) :]
        except CapabilityError as exc:
            result.notes[key] = exc.message
            task.advance()
            continue
        name = dataset.au_name(au) if str(au).isdigit() else ""
        verdict = row.get("verdict")
        title = f"{key} {name}: {layer}/{unit}" + (f" (verdict: {verdict})" if verdict else "")
        png = fig.au_tiles_figure(title, tiles_with, tiles_without, method=method.name)
        result.per_au[key] = AUPanel(au, layer, unit, with_au, without_au, [sequences[i] for i in with_au],
                                     save(f"{slug(key, unique=False)}.png", png))
        task.advance()
    task.close()

    # AU x unit heatmap per layer
    selected_of = {(row["layer"], int(row["unit"])) for row in primary}
    layers = list(dict.fromkeys(str(r["layer"]) for r in scores))
    best_per_layer: dict[str, list[float]] = {}
    for layer in layers:
        rows = [r for r in scores if r["layer"] == layer and r.get("distance") is not None]
        aus = au_order(sorted({r["au"] for r in rows}, key=str), dataset)
        units = sorted({int(r["unit"]) for r in rows})
        if not aus or not units:
            continue
        a_of = {au: i for i, au in enumerate(aus)}
        u_of = {u: j for j, u in enumerate(units)}
        matrix = np.full((len(aus), len(units)), np.nan)
        for r in rows:
            matrix[a_of[r["au"]], u_of[int(r["unit"])]] = float(r["distance"])
        best_per_layer[layer] = [float(np.nanmax(np.abs(line))) if np.isfinite(line).any() else 0.0 for line in matrix]
        order = fig.cluster_order(matrix)
        matrix = matrix[:, order]
        unit_labels = [str(units[j]) for j in order]
        column_of = {units[j]: c for c, j in enumerate(order)}
        boxed = [(a_of[row["au"]], column_of[int(row["unit"])]) for row in primary
                 if row["layer"] == layer and row["au"] in a_of and int(row["unit"]) in column_of]
        labels = [f"{au_label(au)} {dataset.au_name(au) if str(au).isdigit() else ''}".strip() for au in aus]
        png = fig.distance_heatmap(matrix, labels, unit_labels, title=f"{value_label} of every {layer} unit per AU "
                                   "(boxed: the selected unit)", value_label=value_label, selected=boxed, signed=signed)
        result.heatmaps[layer] = save(f"distance_{slug(layer, unique=False)}.png", png)

    # held-out agreement vs chance
    chart_rows = []
    for row in au_order([r["au"] for r in primary], dataset):
        match = next(r for r in primary if r["au"] == row)
        low, high = _interval(match, "agreement")
        chart_rows.append({
            "label": f"{au_label(row)} {match['layer']}/{match['unit']}",
            "agreement": match.get("spatial_agreement"),
            "low": low,
            "high": high,
            "chance": match.get("chance"),
            "null": match.get("null_agreement"),
            "verdict": match.get("verdict"),
        })
    if any(r["agreement"] is not None for r in chart_rows):
        result.agreement = save("agreement.png", fig.agreement_chart(
            chart_rows, title="Does the selected unit fire where the AU is? (held-out agreement vs chance)"))

    # layer-by-layer summary
    if best_per_layer:
        counts: dict[str, int] = {}
        for row in primary:
            counts[row["layer"]] = counts.get(row["layer"], 0) + 1
        result.layers = save("layers.png", fig.layer_summary(best_per_layer, counts, title="Which layers carry AU units",
                                                             value_label=f"best |{value_label}| per AU"))

    # where each selected unit fires across the data set
    result.densities = _densities(model, dataset, scan, primary, selected_of, save)
    return result


def _densities(model, dataset, scan, primary, selected, save) -> dict[str, str]:
    from interpret_core.analysis.sampling import even_indices
    from interpret_core.nn.receptive_field import receptive_field
    from interpret_core.render import figures as fig

    shown = scan.indices[even_indices(len(scan), 256)]
    images, _ = dataset.arrays(shown)
    mean_face = images.mean(axis=0)
    region_cache: dict[Any, np.ndarray] = {}

    def region(au: Any) -> np.ndarray | None:
        if au not in region_cache:
            present = _presence(scan, dataset, au)
            picks = scan.indices[np.flatnonzero(present)][:: max(1, int(present.sum()) // 24)][:24]
            masks = [(dataset[int(i)].localisation_masks() or {}).get(int(au)) for i in picks]
            masks = [m for m in masks if m is not None]
            region_cache[au] = (np.mean(masks, axis=0) >= 0.5) if masks else None
        return region_cache[au]

    fields: dict[str, Any] = {}  # per layer: tracing one costs ~0.8 s at 224x224 (fer-resnet18)
    files: dict[str, str] = {}
    for layer, unit in sorted(selected):
        if layer not in fields:
            try:
                fields[layer] = receptive_field(model.module, layer, tuple(model.input_size))
            except CapabilityError:
                fields[layer] = None
        field = fields[layer]
        if field is None:
            continue
        cells = scan.argmax[layer][:, unit]
        centres = np.array([field.centre(int(r), int(c)) for r, c in cells])
        scale = np.array(mean_face.shape, dtype=float) / np.array(model.input_size[1:], dtype=float)
        positions = np.round(centres * scale).astype(np.int64)
        aus = [row["au"] for row in primary if row["layer"] == layer and int(row["unit"]) == unit]
        regions = {au_label(au): r for au in aus if str(au).isdigit() and (r := region(au)) is not None}
        png = fig.unit_density(mean_face, positions, regions,
                               title=f"{layer}/{unit}: where its maximum falls\n({len(positions)} images)")
        files[f"{layer}/{unit}"] = save(f"density_{slug(layer, unique=False)}_u{unit}.png", png)
    return files
