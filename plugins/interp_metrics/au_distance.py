"""The ``au-distance`` unit metric: which feature maps detect which action units.

For every AU with enough images with and without it, and every unit of the
chosen layers, compare the distribution of the unit's maximal activation on
images showing the AU with images not showing it (Fan, Yuan & Zhu 2019). Each
score gets a Mann-Whitney p-value and a Benjamini-Hochberg q-value; the
mapping names, per AU, the unit(s) with the largest distance and, per unit,
the AU it is most sensitive to. Beyond the paper: spatial agreement of the
mapped unit's maximal activation with the AU's region (against chance), and
co-occurrence controls (within-emotion and within-partner-AU strata).

Definitions and reasoning: docs/metrics.md. No torch at import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import CapabilityError, DataError, UsageError
from interpret_core.api.interfaces import UnitMetric, UnitMetricResult

from .au_distance_report import REPORT_TEXT, report_tables

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Attribution, Dataset, Model
    from interpret_core.analysis.unit_scan import UnitScan

__all__ = ["AUDistance", "DISTANCES", "LOCATE_MODES"]

#: distance option -> one-line definition (docs/metrics.md has the reasoning).
DISTANCES: dict[str, str] = {
    "delta": "Cliff's delta 2*AUC-1 of max activation, AU vs no AU (signed, in [-1, 1])",
    "abs-delta": "|2*AUC-1|: sensitivity in either direction (in [0, 1])",
    "auc": "ROC AUC of max activation as a score for the AU (0.5 = chance)",
    "smd": "standardized mean difference (Cohen's d, pooled SD)",
    "wasserstein": "Wasserstein-1 between the two distributions of z-scored max activations (unsigned)",
}
#: how spatial agreement locates a unit's response in an image.
LOCATE_MODES: dict[str, str] = {
    "receptive-field": "centre of the receptive field of the maximal activation falls inside the AU region",
    "projection": "share of the unit projection's absolute mass inside the AU region (needs --method)",
    "none": "skip spatial agreement",
}


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"au-distance option {name}={value!r} is not a boolean", f"use {name}=true or {name}=false")


def _as_number(name: str, value: Any, kind: type, low: float, high: float | None = None) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"au-distance option {name}={value!r} is not a {kind.__name__}", f"e.g. {name}={kind(low)}") from None
    if number < low or (high is not None and number > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise UsageError(f"au-distance option {name}={value!r} must be {bound}", f"pass {name} in {bound}")
    return number


def au_presence(aus: Sequence[dict[int, int]]) -> tuple[list[int], np.ndarray]:
    """Sorted AU numbers seen in ``aus`` and bool presence [A, N].

    An AU listed with intensity 0 (present, intensity not coded) counts as present.
    """
    numbers = sorted({int(au) for sample_aus in aus for au in sample_aus})
    presence = np.zeros((len(numbers), len(aus)), dtype=bool)
    row = {au: r for r, au in enumerate(numbers)}
    for n, sample_aus in enumerate(aus):
        for au in sample_aus:
            presence[row[int(au)], n] = True
    return numbers, presence


@dataclasses.dataclass
class _LayerScores:
    distance: np.ndarray  # [A, U]
    auc: np.ndarray
    p: np.ndarray
    mean_with: np.ndarray
    mean_without: np.ndarray
    controls: dict[str, np.ndarray]  # name -> [A, U]


class AUDistance(UnitMetric):
    """Per-unit AU sensitivity from maximal activations, with significance and mapping.

    Options (keyword arguments; strings are accepted, as from ``--metric-option key=value``):
        distance: one of :data:`DISTANCES` (default ``delta``).
        min_images: an AU is scored only with at least this many images with it
            and this many without (default 10).
        units_per_au: units mapped to each AU (default 1).
        alpha: q-value threshold that marks a mapping significant (default 0.05);
            for the signed distances (delta, smd, auc) the unit must also fire more
            with the AU (AUC > 0.5).
        locate: spatial agreement mode, one of :data:`LOCATE_MODES`.
        controls: compute the co-occurrence controls (default True).
        min_partner_phi: an AU's partner (the AU it co-occurs with most) is
            controlled for only when their phi coefficient reaches this (default 0.2).
        batch_size, top_k: for the unit scan when none is passed in.
    """

    name = "au-distance"
    description = "unit max activation with vs without each AU: Cliff's delta, Mann-Whitney p, BH q, mapping, spatial agreement"
    higher_is_better = True
    needs_aus = True
    report_text = REPORT_TEXT

    def __init__(
        self,
        distance: str = "delta",
        min_images: int | str = 10,
        units_per_au: int | str = 1,
        alpha: float | str = 0.05,
        locate: str = "receptive-field",
        controls: bool | str = True,
        min_partner_phi: float | str = 0.2,
        batch_size: int | str = 64,
        top_k: int | str = 9,
        **options: Any,
    ):
        super().__init__(**options)
        if distance not in DISTANCES:
            import difflib

            close = difflib.get_close_matches(str(distance), list(DISTANCES), n=1)
            raise UsageError(
                f"au-distance: unknown distance {distance!r}; valid: {', '.join(DISTANCES)}",
                f"did you mean {close[0]!r}?" if close else "see docs/metrics.md",
            )
        if locate not in LOCATE_MODES:
            raise UsageError(f"au-distance: unknown locate {locate!r}; valid: {', '.join(LOCATE_MODES)}", "see docs/metrics.md")
        self.distance = distance
        self.min_images = _as_number("min_images", min_images, int, 1)
        self.units_per_au = _as_number("units_per_au", units_per_au, int, 1)
        self.alpha = _as_number("alpha", alpha, float, 0.0, 1.0)
        self.locate = locate
        self.controls = _as_bool("controls", controls)
        self.min_partner_phi = _as_number("min_partner_phi", min_partner_phi, float, -1.0, 1.0)
        self.batch_size = _as_number("batch_size", batch_size, int, 1)
        self.top_k = _as_number("top_k", top_k, int, 1)

    def options(self) -> dict[str, Any]:
        """The effective options, for results files."""
        return {
            "distance": self.distance,
            "min_images": self.min_images,
            "units_per_au": self.units_per_au,
            "alpha": self.alpha,
            "locate": self.locate,
            "controls": self.controls,
            "min_partner_phi": self.min_partner_phi,
            "batch_size": self.batch_size,
            "top_k": self.top_k,
        }

    # -- entry point -----------------------------------------------------------
    def evaluate(
        self,
        model: Model,
        dataset: Dataset,
        layers: Sequence[str],
        scan: UnitScan | None = None,
        *,
        method: Attribution | None = None,
        progress: Any = None,
        indices: Sequence[int] | None = None,
    ) -> UnitMetricResult:
        """Score every unit of ``layers`` against every AU of ``dataset``.

        Args:
            scan: a finished unit scan to reuse (else one is run here).
            method: the attribution used when ``locate="projection"``.
            progress: callable(done, total) or a rich Progress.
            indices: data-set indices to use (default: all).

        Returns:
            scores: one row per (layer, unit, AU); mapping: per AU its unit(s);
            tables: the report's; extra: ``unit_mapping``, ``layer_mapping``,
            ``aus``, ``skipped_aus``, ``definitions``, ``images``.
        """
        from interpret_core.analysis.unit_scan import annotations, scan_units

        layers = list(layers)
        if scan is None:
            scan = scan_units(
                model, dataset, layers, batch_size=self.batch_size, top_k=self.top_k, indices=indices, progress=progress
            )
        missing = [layer for layer in layers if layer not in scan.maxima]
        if missing:
            raise UsageError(f"the unit scan lacks layer(s) {missing}", "rescan with these layers")
        if scan.aus is None or scan.emotions is None:
            aus, emotions = annotations(dataset, scan.indices)
        else:
            aus, emotions = scan.aus, scan.emotions
        table = self.score(scan, layers, aus, emotions)
        mapping = table["mapping"]
        if self.locate != "none" and mapping:
            self.add_spatial_agreement(model, dataset, scan, mapping, table["presence"], table["au_numbers"], method, progress)
        return UnitMetricResult(
            scores=table["scores"],
            mapping=mapping,
            tables=report_tables(mapping, table["unit_mapping"], table["layer_mapping"]),
            extra={
                "unit_mapping": table["unit_mapping"],
                "layer_mapping": table["layer_mapping"],
                "aus": table["aus"],
                "skipped_aus": table["skipped_aus"],
                "definitions": {
                    "distance": f"{self.distance}: {DISTANCES[self.distance]}",
                    "locate": f"{self.locate}: {LOCATE_MODES[self.locate]}",
                    "p_value": "two-sided Mann-Whitney U, normal approximation with tie and continuity correction",
                    "q_value": "Benjamini-Hochberg over all (layer, unit, AU) scores of the run",
                    "chance": "mean area fraction of the AU's region over the images showing the AU",
                },
                "images": len(scan),
            },
        )

    # -- scores ----------------------------------------------------------------
    def _layer_scores(
        self, values: np.ndarray, presence: np.ndarray, emotions: np.ndarray, partners: np.ndarray | None
    ) -> _LayerScores:
        from interpret_core.analysis import stats

        values = values.astype(np.float64)
        ranks = stats.rank_columns(values)
        test = stats.mann_whitney(values, presence, ranks=ranks)
        if self.distance == "delta":
            distance = stats.cliffs_delta(test.auc)
        elif self.distance == "abs-delta":
            distance = np.abs(stats.cliffs_delta(test.auc))
        elif self.distance == "auc":
            distance = test.auc
        elif self.distance == "smd":
            distance = stats.standardized_mean_difference(values, presence)
        else:
            distance = stats.wasserstein_normalised(values, presence)
        weights = presence.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_with = (weights @ values) / weights.sum(axis=1, keepdims=True)
            mean_without = ((1 - weights) @ values) / (1 - weights).sum(axis=1, keepdims=True)
        controls: dict[str, np.ndarray] = {}
        if self.controls:
            by_emotion = stats.stratified_rank_test(values, presence, emotions)
            controls["delta_within_emotion"] = by_emotion.delta
            controls["p_within_emotion"] = by_emotion.p
            if partners is not None:
                given = np.full_like(distance, np.nan)
                given_p = np.full_like(distance, np.nan)
                # AUs that share a partner share its strata: rank within them once.
                for partner in np.unique(partners[partners >= 0]):
                    rows = np.flatnonzero(partners == partner)
                    result = stats.stratified_rank_test(values, presence[rows], presence[partner].astype(np.int64))
                    given[rows], given_p[rows] = result.delta, result.p
                controls["delta_given_partner"] = given
                controls["p_given_partner"] = given_p
        return _LayerScores(distance, test.auc, test.p, mean_with, mean_without, controls)

    def score(
        self, scan: UnitScan, layers: Sequence[str], aus: Sequence[dict[int, int]], emotions: np.ndarray
    ) -> dict[str, Any]:
        """Scores, q-values and the mapping from a finished scan (no model needed)."""
        from interpret_core.analysis import stats

        au_numbers_all, presence_all = au_presence(aus)
        counts = presence_all.sum(axis=1)
        total = len(aus)
        eligible = (counts >= self.min_images) & (total - counts >= self.min_images)
        au_summary = [
            {"au": au, "n_with": int(c), "n_without": int(total - c), "scored": bool(ok)}
            for au, c, ok in zip(au_numbers_all, counts, eligible)
        ]
        skipped = [row["au"] for row in au_summary if not row["scored"]]
        au_numbers = [au for au, ok in zip(au_numbers_all, eligible) if ok]
        presence = presence_all[eligible]
        if not au_numbers:
            raise DataError(
                f"no AU has at least {self.min_images} images with it and {self.min_images} without "
                f"among {total} images (AU counts: {dict(zip(au_numbers_all, counts.tolist()))})",
                "use more images (drop --limit) or lower the minimum: --metric-option min_images=N",
            )
        emotions = np.asarray(emotions, dtype=np.int64)
        partners = None
        partner_phi = None
        if self.controls and len(au_numbers) > 1:
            phi = stats.presence_phi(presence)
            np.fill_diagonal(phi, -np.inf)
            partners = np.argmax(phi, axis=1)
            partner_phi = phi[np.arange(len(au_numbers)), partners]
            # Only AUs that clearly co-occur get a partner control.
            partners = np.where(partner_phi >= max(self.min_partner_phi, 1e-12), partners, -1)

        per_layer = {layer: self._layer_scores(scan.maxima[layer], presence, emotions, partners) for layer in layers}
        # One BH family over every (layer, unit, AU) score; the controls form their own families.
        q = stats.bh_qvalues(np.concatenate([per_layer[layer].p.ravel() for layer in layers]))
        control_q: dict[str, np.ndarray] = {}
        for name in ("p_within_emotion", "p_given_partner"):
            if all(name in per_layer[layer].controls for layer in layers):
                control_q[name] = stats.bh_qvalues(np.concatenate([per_layer[layer].controls[name].ravel() for layer in layers]))
        scores: list[dict[str, Any]] = []
        offset = 0
        q_by_layer: dict[str, np.ndarray] = {}
        control_q_by_layer: dict[str, dict[str, np.ndarray]] = {}
        for layer in layers:
            s = per_layer[layer]
            size = s.p.size
            q_by_layer[layer] = q[offset : offset + size].reshape(s.p.shape)
            control_q_by_layer[layer] = {k: v[offset : offset + size].reshape(s.p.shape) for k, v in control_q.items()}
            offset += size
            n_with = presence.sum(axis=1)
            for unit in range(s.p.shape[1]):
                for a, au in enumerate(au_numbers):
                    row: dict[str, Any] = {
                        "layer": layer,
                        "unit": unit,
                        "au": au,
                        "concept": f"AU{au}",
                        "score": _finite(s.distance[a, unit]),
                        "distance": _finite(s.distance[a, unit]),
                        "p_value": _finite(s.p[a, unit]),
                        "q_value": _finite(q_by_layer[layer][a, unit]),
                        "auc": _finite(s.auc[a, unit]),
                        "mean_with": _finite(s.mean_with[a, unit]),
                        "mean_without": _finite(s.mean_without[a, unit]),
                        "n_with": int(n_with[a]),
                        "n_without": int(total - n_with[a]),
                    }
                    if self.controls:
                        row["delta_within_emotion"] = _finite(s.controls["delta_within_emotion"][a, unit])
                        row["p_within_emotion"] = _finite(s.controls["p_within_emotion"][a, unit])
                        row["q_within_emotion"] = _finite(control_q_by_layer[layer]["p_within_emotion"][a, unit])
                        has_partner = partners is not None and partners[a] >= 0
                        row["partner_au"] = au_numbers[partners[a]] if has_partner else None
                        row["delta_given_partner"] = _finite(s.controls["delta_given_partner"][a, unit]) if has_partner else None
                        row["p_given_partner"] = _finite(s.controls["p_given_partner"][a, unit]) if has_partner else None
                        row["q_given_partner"] = (
                            _finite(control_q_by_layer[layer]["p_given_partner"][a, unit]) if has_partner else None
                        )
                    scores.append(row)

        index = {(r["layer"], r["unit"], r["au"]): r for r in scores}
        mapping: list[dict[str, Any]] = []
        layer_mapping: list[dict[str, Any]] = []
        for a, au in enumerate(au_numbers):
            candidates = [
                (per_layer[layer].distance[a, unit], -li, -unit, layer, unit)
                for li, layer in enumerate(layers)
                for unit in range(per_layer[layer].distance.shape[1])
                if not np.isnan(per_layer[layer].distance[a, unit])
            ]
            # Largest distance first; ties go to the shallower layer, then the lower unit.
            candidates.sort(reverse=True)
            for rank, (_, _, _, layer, unit) in enumerate(candidates[: self.units_per_au]):
                mapping.append(self._mapping_row(index[(layer, unit, au)], rank, partner_phi, a))
            for layer in layers:
                row_distance = per_layer[layer].distance[a]
                if np.all(np.isnan(row_distance)):
                    continue
                unit = int(np.nanargmax(row_distance))
                layer_mapping.append(self._mapping_row(index[(layer, unit, au)], 0, partner_phi, a))

        unit_mapping: list[dict[str, Any]] = []
        for layer in layers:
            distance = per_layer[layer].distance
            for unit in range(distance.shape[1]):
                column = distance[:, unit]
                if np.all(np.isnan(column)):
                    continue
                a = int(np.nanargmax(column))
                row = index[(layer, unit, au_numbers[a])]
                unit_mapping.append(
                    {
                        "layer": layer,
                        "unit": unit,
                        "au": au_numbers[a],
                        "distance": row["distance"],
                        "q_value": row["q_value"],
                        "significant": self._significant(row),
                    }
                )
        return {
            "scores": scores,
            "mapping": mapping,
            "layer_mapping": layer_mapping,
            "unit_mapping": unit_mapping,
            "aus": au_summary,
            "skipped_aus": skipped,
            "au_numbers": au_numbers,
            "presence": presence,
        }

    def _significant(self, row: dict[str, Any]) -> bool:
        """q < alpha and, for signed distances, in the detector direction (fires more with the AU)."""
        if row["q_value"] is None or row["q_value"] >= self.alpha:
            return False
        if self.distance in ("delta", "smd", "auc"):
            return row["auc"] is not None and row["auc"] > 0.5  # the direction the p-value tested
        return True

    def _mapping_row(self, row: dict[str, Any], rank: int, partner_phi: np.ndarray | None, a: int) -> dict[str, Any]:
        keys = ("au", "layer", "unit", "distance", "p_value", "q_value", "auc", "n_with", "n_without")
        out = {key: row[key] for key in keys}
        out["rank"] = rank
        out["significant"] = self._significant(row)
        if self.controls:
            for key in ("delta_within_emotion", "q_within_emotion", "partner_au", "delta_given_partner", "q_given_partner"):
                out[key] = row[key]
            out["partner_phi"] = None if partner_phi is None or row["partner_au"] is None else float(partner_phi[a])
        out.update({"spatial_agreement": None, "chance": None, "agreement_p": None, "agreement_images": 0})
        return out

    # -- spatial agreement -----------------------------------------------------
    def add_spatial_agreement(
        self,
        model: Model,
        dataset: Dataset,
        scan: UnitScan,
        mapping: list[dict[str, Any]],
        presence: np.ndarray,
        au_numbers: list[int],
        method: Attribution | None = None,
        progress: Any = None,
    ) -> None:
        """Fill ``spatial_agreement``, ``chance``, ``agreement_p`` of each mapping row in place.

        For the images showing the row's AU (with a region for it), the share
        where the unit's response lies inside the AU's region; chance is the
        mean area fraction of those regions.
        """
        from interpret_core.analysis import stats

        if self.locate == "projection" and (method is None or not getattr(method, "supports_units", False)):
            raise CapabilityError(
                "au-distance locate=projection needs an attribution method with unit projections",
                "pass --method deconv (or another method with supports_units), or use locate=receptive-field",
            )
        row_of_au = {au: a for a, au in enumerate(au_numbers)}
        input_size = tuple(scan.input_size or model.input_size)
        centres = self._centres(model, scan, {row["layer"] for row in mapping}) if self.locate == "receptive-field" else {}
        # Each needed image is decoded once: image position -> mapping rows that need it.
        needed: dict[int, list[int]] = {}
        for m, row in enumerate(mapping):
            if self.locate == "receptive-field" and centres.get(row["layer"]) is None:
                row["agreement_note"] = "layer has no receptive field (not a feature map)"
                continue
            for position in np.flatnonzero(presence[row_of_au[row["au"]]]):
                needed.setdefault(int(position), []).append(m)
        hits: list[list[float]] = [[] for _ in mapping]
        chance: list[list[float]] = [[] for _ in mapping]
        positions = sorted(needed)
        from interpret_core.util.progress import start_task

        report = start_task(progress, "spatial agreement", len(positions)).set
        pending: list[tuple[int, int]] = []  # projection mode: (mapping row, image position); masks re-read later
        for done, position in enumerate(positions, 1):
            sample = dataset[int(scan.indices[position])]
            masks = sample.localisation_masks()
            if masks is not None:
                for m in needed[position]:
                    row = mapping[m]
                    mask = masks.get(row["au"])
                    if mask is None:
                        continue
                    mask = np.asarray(mask, dtype=bool)
                    if self.locate == "receptive-field":
                        cell = scan.argmax[row["layer"]][position, row["unit"]]
                        y, x = self._locate(centres[row["layer"]], cell, mask.shape, input_size)
                        hits[m].append(float(mask[y, x]))
                        chance[m].append(np.count_nonzero(mask) / mask.size)
                    else:
                        pending.append((m, position))
            report(done)
        if pending:
            self._projection_agreement(model, dataset, scan, mapping, pending, method, hits, chance)
        for m, row in enumerate(mapping):
            if not hits[m]:
                continue
            row["spatial_agreement"] = float(np.mean(hits[m]))
            row["chance"] = float(np.mean(chance[m]))
            row["agreement_images"] = len(hits[m])
            if self.locate == "receptive-field":
                row["agreement_p"] = stats.chance_excess_p(np.asarray(hits[m]), np.asarray(chance[m]))
            else:
                diff = np.asarray(hits[m]) - np.asarray(chance[m])
                row["agreement_p"] = _signed_rank_greater(diff)
            row["above_chance"] = row["spatial_agreement"] > row["chance"]

    @staticmethod
    def _centres(model: Model, scan: UnitScan, layers: set[str]) -> dict[str, np.ndarray | None]:
        """{layer: float [h, w, 2] (y, x) input-pixel centre of each output position, or None}."""
        from interpret_core.nn.receptive_field import receptive_field

        input_size = tuple(scan.input_size or model.input_size)
        out: dict[str, np.ndarray | None] = {}
        for layer in layers:
            _, height, width = scan.shapes[layer]
            try:
                field = receptive_field(model.module, layer, input_size)
            except (CapabilityError, UsageError):
                out[layer] = None
                continue
            ii, jj = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
            table = np.zeros((height, width, 2))
            table[..., 0] = field.offset[0] + ii * field.stride[0]
            table[..., 1] = field.offset[1] + jj * field.stride[1]
            out[layer] = table
        return out

    @staticmethod
    def _locate(
        table: np.ndarray, cell: np.ndarray, mask_shape: tuple[int, int], input_size: tuple[int, int, int]
    ) -> tuple[int, int]:
        """Pixel (y, x) of the mask that holds the centre of output cell (row, col)."""
        y, x = (float(v) for v in table[int(cell[0]), int(cell[1])])
        _, in_h, in_w = input_size
        # The model input may be a resized copy of the image: map pixel centres across.
        y = (y + 0.5) * mask_shape[0] / in_h - 0.5
        x = (x + 0.5) * mask_shape[1] / in_w - 0.5
        return (min(max(round(y), 0), mask_shape[0] - 1), min(max(round(x), 0), mask_shape[1] - 1))

    def _projection_agreement(self, model, dataset, scan, mapping, pending, method, hits, chance) -> None:
        """Share of each projection's absolute mass inside the AU region, batch by batch.

        Masks are re-read per batch rather than kept, so memory stays
        independent of the number of images.
        """
        import torch.nn.functional as F

        groups: dict[int, list[int]] = {}
        for m, position in pending:
            groups.setdefault(m, []).append(position)
        for m, positions in groups.items():
            row = mapping[m]
            for start in range(0, len(positions), self.batch_size):
                samples = [dataset[int(scan.indices[p])] for p in positions[start : start + self.batch_size]]
                images = np.stack([np.asarray(sample.image, dtype=np.float32) for sample in samples])
                inputs = model.to_input(images)
                projection = method.attribute_units(model.module, inputs, row["layer"], [row["unit"]])[:, 0]
                mass = projection.detach().abs().sum(dim=1, keepdim=True)  # [n, 1, H, W]
                if mass.shape[-2:] != images.shape[-2:]:
                    mass = F.interpolate(mass, size=images.shape[-2:], mode="bilinear", align_corners=False).clamp_min(0)
                for sample, weights in zip(samples, mass[:, 0].cpu().numpy()):
                    mask = np.asarray(sample.localisation_masks()[row["au"]], dtype=bool)
                    total = weights.sum()
                    hits[m].append(float(weights[mask].sum() / total) if total > 0 else float(mask.mean()))
                    chance[m].append(float(mask.mean()))


def _signed_rank_greater(diff: np.ndarray) -> float | None:
    """One-sided Wilcoxon signed-rank p-value that ``diff`` is centred above 0."""
    import scipy.stats

    diff = diff[diff != 0]
    if diff.size == 0:
        return 1.0
    return float(scipy.stats.wilcoxon(diff, alternative="greater").pvalue)


def _finite(value: Any) -> float | None:
    """A float for JSON: NaN and +-inf become None."""
    value = float(value)
    return value if np.isfinite(value) else None

