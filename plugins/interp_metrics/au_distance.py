"""The ``au-distance`` unit metric: which feature maps detect which action units.

For every AU with enough observations with and without it, and every unit of
the chosen layers, compare the distribution of the unit's maximal activation
with the AU against without it (Fan, Yuan & Zhu 2019), with a Mann-Whitney
p-value and a Benjamini-Hochberg q-value per score.

Two selections:

* ``selection=held-out`` (default): the observation is the sequence (frames
  averaged), neutral frames are left out of "without", each AU's unit is
  selected on some subjects by discrimination and localisation and its
  evidence (delta, q, spatial agreement against the dilated-mask chance and a
  shuffled-mask null) is taken on other subjects, with a subject bootstrap and
  a verdict per AU (:mod:`interp_metrics.au_heldout`);
* ``selection=paper``: the paper's procedure exactly as before: every frame is
  an observation, neutral frames count as "without", the unit with the
  largest in-sample distance is mapped, its spatial agreement is in-sample.

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

__all__ = ["AUDistance", "DISTANCES", "LOCATE_MODES", "SELECTIONS"]

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
    "peak": "peak of the unit's projection (with --method) within a tolerance of the AU region (held-out default)",
    "receptive-field": "centre of the receptive field of the maximal activation falls inside the AU region",
    "projection": "share of the unit projection's absolute mass inside the AU region (needs --method)",
    "none": "skip spatial agreement",
}
#: selection option -> what it does (docs/metrics.md, section 4).
SELECTIONS: dict[str, str] = {
    "held-out": "unit selected on other subjects' folds (discrimination and localisation), evidence on held-out folds",
    "paper": "the paper's procedure: largest in-sample distance over all frames (neutral frames count as without)",
}
#: pool option -> the units localised on each AU's sample (docs/metrics.md, section 4).
POOLS: dict[str, str] = {
    "candidates": "every fold's selection candidates and the top-delta unit (about 5 per AU)",
    "all": "every unit of the scanned layers: the oracle and the bootstrap search them all",
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
    """Per-unit AU sensitivity from maximal activations, with significance, mapping and a verdict per AU.

    Options (keyword arguments; strings are accepted, as from ``--metric-option key=value``):
        selection: one of :data:`SELECTIONS` (default ``held-out``).
        unit: statistical unit, ``sequence`` (default; subject where the data
            set has no sequences), ``subject`` or ``frame`` (frame-level, labelled
            so in every output). ``selection=paper`` implies ``frame``.
        include_neutral: count neutral frames as "without the AU" (default
            False; ``selection=paper`` implies True).
        min_observations: an AU is tested only with at least this many
            observations (of the statistical unit) with it and as many without (default 10).
        min_subjects: ... and at least this many subjects with it and without (default 5;
            not used by ``selection=paper``).
        distance: one of :data:`DISTANCES` (default ``delta``).
        units_per_au: units mapped to each AU by ``selection=paper`` (default 1).
        alpha: q-value threshold of significance (default 0.05); for the signed
            distances the unit must also fire more with the AU.
        locate: one of :data:`LOCATE_MODES` (default ``peak`` for held-out,
            ``receptive-field`` for paper).
        tolerance: pixels a located peak may miss the mask by (default: half the
            layer's stride, at least 1); chance uses the mask dilated by it.
        folds, seed: subject-disjoint folds of the held-out selection (default 5, 0).
        candidates, candidate_share: the selection rule's pool (default: the 3
            largest-distance units with at least 0.5 of the top distance).
        localise_per_fold: observations per AU and fold whose peak is located (default 8).
        pool: the units localised on each AU's sample, which the oracle and the bootstrap
            search: ``candidates`` (default: every fold's candidates and the top-delta unit,
            about 5 per AU) or ``all`` (every unit of the scanned layers; a projection per
            unit and located observation, several times the default's cost). The selection
            and the held-out evidence are the same either way.
        bootstrap: subject-bootstrap resamples (default 200; 0 = none).
        null_draws: shuffled-mask pairings per observation (default 10).
        controls: compute the co-occurrence controls (default True).
        min_partner_phi: an AU's partner (the AU it co-occurs with most) is
            controlled for only when their phi coefficient reaches this (default 0.2).
        batch_size, top_k: for the unit scan when none is passed in.
    """

    name = "au-distance"
    description = "unit max activation with vs without each AU per sequence: held-out selection, delta, q, localisation, verdict"
    higher_is_better = True
    needs_aus = True
    report_text = REPORT_TEXT

    def __init__(
        self,
        selection: str = "held-out",
        unit: str | None = None,
        include_neutral: bool | str | None = None,
        min_observations: int | str = 10,
        min_subjects: int | str = 5,
        distance: str = "delta",
        units_per_au: int | str = 1,
        alpha: float | str = 0.05,
        locate: str | None = None,
        tolerance: int | str | None = None,
        folds: int | str = 5,
        seed: int | str = 0,
        candidates: int | str = 3,
        candidate_share: float | str = 0.5,
        localise_per_fold: int | str = 8,
        pool: str = "candidates",
        bootstrap: int | str = 200,
        null_draws: int | str = 10,
        controls: bool | str = True,
        min_partner_phi: float | str = 0.2,
        batch_size: int | str = 64,
        top_k: int | str = 9,
        **options: Any,
    ):
        if "min_images" in options:
            raise UsageError(
                "au-distance option min_images was replaced: observations are sequences by default, not images",
                "use min_observations=N (counted in the statistical unit) and min_subjects=N",
            )
        super().__init__(**options)
        if distance not in DISTANCES:
            import difflib

            close = difflib.get_close_matches(str(distance), list(DISTANCES), n=1)
            raise UsageError(
                f"au-distance: unknown distance {distance!r}; valid: {', '.join(DISTANCES)}",
                f"did you mean {close[0]!r}?" if close else "see docs/metrics.md",
            )
        if selection not in SELECTIONS:
            raise UsageError(f"au-distance: unknown selection {selection!r}; valid: {', '.join(SELECTIONS)}", "see docs/metrics.md")
        paper = selection == "paper"
        locate = locate if locate is not None else ("receptive-field" if paper else "peak")
        if locate not in LOCATE_MODES:
            raise UsageError(f"au-distance: unknown locate {locate!r}; valid: {', '.join(LOCATE_MODES)}", "see docs/metrics.md")
        if not paper and locate == "projection":
            raise UsageError("au-distance: locate=projection (mass share) belongs to selection=paper",
                             "use locate=peak (the projection's peak) with the held-out selection")
        from interpret_core.analysis.unit_scan import STATISTICAL_UNITS

        unit = unit if unit is not None else ("frame" if paper else "sequence")
        if unit not in STATISTICAL_UNITS:
            raise UsageError(f"au-distance: unknown unit {unit!r}; valid: {', '.join(STATISTICAL_UNITS)}", "e.g. unit=sequence")
        if paper and unit != "frame":
            raise UsageError("au-distance: selection=paper is the paper's frame-level procedure", "drop unit= or use selection=held-out")
        self.selection = selection
        self.unit = unit
        self.include_neutral = paper if include_neutral is None else _as_bool("include_neutral", include_neutral)
        if paper and not self.include_neutral:
            raise UsageError("au-distance: selection=paper counts neutral frames as without", "drop include_neutral=")
        self.min_observations = _as_number("min_observations", min_observations, int, 1)
        self.min_subjects = _as_number("min_subjects", min_subjects, int, 1)
        self.distance = distance
        self.units_per_au = _as_number("units_per_au", units_per_au, int, 1)
        self.alpha = _as_number("alpha", alpha, float, 0.0, 1.0)
        self.locate = locate
        self.tolerance = None if tolerance in (None, "stride") else _as_number("tolerance", tolerance, int, 0)
        self.folds = _as_number("folds", folds, int, 2)
        self.seed = _as_number("seed", seed, int, 0)
        self.candidates = _as_number("candidates", candidates, int, 1)
        self.candidate_share = _as_number("candidate_share", candidate_share, float, 0.0, 1.0)
        self.localise_per_fold = _as_number("localise_per_fold", localise_per_fold, int, 1)
        if pool not in POOLS:
            raise UsageError(f"au-distance: unknown pool {pool!r}; valid: {', '.join(POOLS)}",
                             "pool=all localises every unit for the oracle and the bootstrap (slower); see docs/metrics.md")
        if paper and pool != "candidates":
            raise UsageError("au-distance: pool= belongs to the held-out selection (selection=paper has no oracle)",
                             "drop pool= or use selection=held-out")
        self.pool = pool
        self.bootstrap = _as_number("bootstrap", bootstrap, int, 0)
        self.null_draws = _as_number("null_draws", null_draws, int, 1)
        self.controls = _as_bool("controls", controls)
        self.min_partner_phi = _as_number("min_partner_phi", min_partner_phi, float, -1.0, 1.0)
        self.batch_size = _as_number("batch_size", batch_size, int, 1)
        self.top_k = _as_number("top_k", top_k, int, 1)

    # Kept for readers of the paper path: the frame-level minimum.
    @property
    def min_images(self) -> int:
        return self.min_observations

    def options(self) -> dict[str, Any]:
        """The effective options, for results files."""
        common = {
            "selection": self.selection,
            "unit": self.unit,
            "include_neutral": self.include_neutral,
            "min_observations": self.min_observations,
            "distance": self.distance,
            "alpha": self.alpha,
            "locate": self.locate,
            "controls": self.controls,
            "min_partner_phi": self.min_partner_phi,
            "batch_size": self.batch_size,
            "top_k": self.top_k,
        }
        if self.selection == "paper":
            common["units_per_au"] = self.units_per_au
        else:
            common.update(
                min_subjects=self.min_subjects,
                tolerance="stride" if self.tolerance is None else self.tolerance,
                folds=self.folds,
                seed=self.seed,
                candidates=self.candidates,
                candidate_share=self.candidate_share,
                localise_per_fold=self.localise_per_fold,
                pool=self.pool,
                bootstrap=self.bootstrap,
                null_draws=self.null_draws,
            )
        return common

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
            method: the attribution that projects units (``locate=peak`` / ``projection``).
            progress: callable(done, total) or a rich Progress.
            indices: data-set indices to use (default: all).

        Returns:
            scores: one row per (layer, unit, AU), in-sample, at the statistical
            unit; mapping: one row per AU with its ``verdict``; tables: the report's; extra:
            ``unit_mapping``, ``layer_mapping``, ``aus``, ``options``,
            ``statistical_unit``, ``selection``, ``summary``.
        """
        from interpret_core.analysis.unit_scan import scan_units

        layers = list(layers)
        if scan is None:
            scan = scan_units(
                model, dataset, layers, batch_size=self.batch_size, top_k=self.top_k, indices=indices, progress=progress
            )
        missing = [layer for layer in layers if layer not in scan.maxima]
        if missing:
            raise UsageError(f"the unit scan lacks layer(s) {missing}", "rescan with these layers")
        from threadpoolctl import threadpool_limits

        # The statistics multiply small matrices (AUs x observations, resamples x subjects): BLAS threads
        # only add hand-offs, which cost more than the products themselves, most of all on a busy machine.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._evaluate_scan(model, dataset, layers, scan, method, progress)

    def _evaluate_scan(
        self, model: Model, dataset: Dataset, layers: list[str], scan: UnitScan, method: Attribution | None, progress: Any
    ) -> UnitMetricResult:
        """:meth:`evaluate` once the scan is there."""
        from interpret_core.analysis.unit_scan import annotations

        if scan.aus is None or scan.emotions is None:
            aus, emotions = annotations(dataset, scan.indices)
        else:
            aus, emotions = scan.aus, scan.emotions
        if self.selection == "paper":
            table = self.score(scan, layers, aus, emotions)
            mapping = table["mapping"]
            if self.locate != "none" and mapping:
                self.add_spatial_agreement(model, dataset, scan, mapping, table["presence"], table["au_numbers"], method, progress)
            for row in mapping:
                self._paper_verdict(row)
            mapping += self._untestable_rows(table["aus"])
            statistical_unit, extra_definitions = "frame", {}
        else:
            table = self.score_heldout(model, dataset, scan, layers, aus, emotions, method, progress)
            mapping = table["mapping"]
            statistical_unit = table["statistical_unit"]
            extra_definitions = table["definitions"]
        from interpret_core.analysis.unit_scan import STATISTICAL_UNITS

        from .au_heldout import VERDICTS

        definitions = {
            "selection": f"{self.selection}: {SELECTIONS[self.selection]}",
            "statistical_unit": f"{statistical_unit}: {STATISTICAL_UNITS[statistical_unit]}",
            "without": "expressive frames without the AU (neutral frames left out)" if not self.include_neutral
            else "every frame without the AU, neutral frames included",
            "distance": f"{self.distance}: {DISTANCES[self.distance]}",
            "locate": f"{self.locate}: {LOCATE_MODES[self.locate]}",
            "p_value": "two-sided Mann-Whitney U on the observations, normal approximation with tie and continuity correction",
            "q_value": "Benjamini-Hochberg over all (layer, unit, AU) scores of the run",
            "chance": "mean area fraction of the AU's region over the images showing the AU",
            **extra_definitions,
            "verdict": "; ".join(f"{k}: {v}" for k, v in VERDICTS.items()),
        }
        return UnitMetricResult(
            scores=table["scores"],
            mapping=mapping,
            tables=report_tables(mapping, table["unit_mapping"], table["layer_mapping"]),
            extra={
                "unit_mapping": table["unit_mapping"],
                "layer_mapping": table["layer_mapping"],
                "aus": table["aus"],
                "skipped_aus": table["skipped_aus"],
                "statistical_unit": statistical_unit,
                "selection": self.selection,
                "definitions": definitions,
                "images": len(scan),
                "observations": table.get("observations", len(scan)),
                "projections": table.get("projections", 0),
            },
        )

    def _paper_verdict(self, row: dict[str, Any]) -> None:
        """The verdict fields of an in-sample (paper) mapping row."""
        row["selected_on"] = "all images (in-sample: selection and evidence on the same frames)"
        row["statistical_unit"] = "frame"
        if not row["significant"]:
            row["verdict"], row["verdict_reason"] = "none", f"q {row['q_value']} >= alpha or wrong direction (frame-level, in-sample)"
        elif row.get("spatial_agreement") is None:
            row["verdict"], row["verdict_reason"] = "elsewhere", "significant (frame-level, in-sample); no masks"
        elif row["spatial_agreement"] > row["chance"] and row.get("agreement_p") is not None and row["agreement_p"] < self.alpha:
            row["verdict"], row["verdict_reason"] = "localised", "frame-level, in-sample agreement above chance"
        else:
            row["verdict"], row["verdict_reason"] = "elsewhere", "frame-level, in-sample agreement not above chance"
        row.setdefault("null_agreement", None)
        row.setdefault("stability", None)
        row.setdefault("oracle", None)

    @staticmethod
    def _untestable_rows(au_summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for entry in au_summary:
            if entry["scored"]:
                continue
            rows.append({
                "au": entry["au"], "layer": None, "unit": None, "rank": 0, "distance": None, "delta": None,
                "p_value": None, "q_value": None, "significant": False, "n_with": entry["n_with"],
                "n_without": entry["n_without"], "spatial_agreement": None, "chance": None, "null_agreement": None,
                "stability": None, "oracle": None, "verdict": "untestable",
                "verdict_reason": entry.get("reason", "too few observations with or without the AU"),
                "selected_on": None, "figures": [],
            })
        return rows

    # -- scores ----------------------------------------------------------------
    def distance_matrix(self, values: np.ndarray, presence: np.ndarray) -> tuple[np.ndarray, Any]:
        """(distance [A, U], Mann-Whitney test) of observations ``values [G, U]`` and ``presence [A, G]``."""
        from interpret_core.analysis import stats

        values = np.asarray(values, dtype=np.float64)
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
        return distance, test

    def _layer_scores(
        self, values: np.ndarray, presence: np.ndarray, emotions: np.ndarray, partners: np.ndarray | None
    ) -> _LayerScores:
        from interpret_core.analysis import stats

        values = values.astype(np.float64)
        distance, test = self.distance_matrix(values, presence)
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
        """Frame-level scores, q-values and the paper's mapping from a finished scan (no model needed)."""
        au_numbers_all, presence_all = au_presence(aus)
        counts = presence_all.sum(axis=1)
        total = len(aus)
        eligible = (counts >= self.min_observations) & (total - counts >= self.min_observations)
        au_summary = [
            {"au": au, "n_with": int(c), "n_without": int(total - c), "scored": bool(ok)}
            for au, c, ok in zip(au_numbers_all, counts, eligible)
        ]
        if not eligible.any():
            raise DataError(
                f"no AU has at least {self.min_observations} images with it and {self.min_observations} without "
                f"among {total} images (AU counts: {dict(zip(au_numbers_all, counts.tolist()))})",
                "use more images (drop --limit) or lower the minimum: --metric-option min_observations=N",
            )
        values = {layer: scan.maxima[layer] for layer in layers}
        return self._table(values, layers, au_numbers_all, presence_all, np.asarray(emotions), eligible, au_summary)

    def _table(
        self,
        values: dict[str, np.ndarray],
        layers: Sequence[str],
        au_numbers_all: list[int],
        presence_all: np.ndarray,
        emotions: np.ndarray,
        eligible: np.ndarray,
        au_summary: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Scores of every (layer, unit, eligible AU) over observations, and the in-sample mappings.

        Args:
            values: {layer: [G, U]} one value per observation (frame or sequence).
            presence_all: bool [A_all, G]; eligible: bool [A_all].
        """
        from interpret_core.analysis import stats

        total = presence_all.shape[1]
        skipped = [row["au"] for row in au_summary if not row["scored"]]
        au_numbers = [au for au, ok in zip(au_numbers_all, eligible) if ok]
        presence = presence_all[eligible]
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

        per_layer = {layer: self._layer_scores(values[layer], presence, emotions, partners) for layer in layers}
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
            # Each array converted once (_finite of every entry), not one call per entry.
            distance, p_value, q_value = _finite_lists(s.distance), _finite_lists(s.p), _finite_lists(q_by_layer[layer])
            auc, mean_with, mean_without = _finite_lists(s.auc), _finite_lists(s.mean_with), _finite_lists(s.mean_without)
            if self.controls:
                within, p_within = _finite_lists(s.controls["delta_within_emotion"]), _finite_lists(s.controls["p_within_emotion"])
                q_within = _finite_lists(control_q_by_layer[layer]["p_within_emotion"])
                if partners is not None:  # the partner control exists only then
                    given, p_given = _finite_lists(s.controls["delta_given_partner"]), _finite_lists(s.controls["p_given_partner"])
                    q_given = _finite_lists(control_q_by_layer[layer]["p_given_partner"])
            for unit in range(s.p.shape[1]):
                for a, au in enumerate(au_numbers):
                    row: dict[str, Any] = {
                        "layer": layer,
                        "unit": unit,
                        "au": au,
                        "concept": f"AU{au}",
                        "score": distance[a][unit],
                        "distance": distance[a][unit],
                        "p_value": p_value[a][unit],
                        "q_value": q_value[a][unit],
                        "auc": auc[a][unit],
                        "mean_with": mean_with[a][unit],
                        "mean_without": mean_without[a][unit],
                        "n_with": int(n_with[a]),
                        "n_without": int(total - n_with[a]),
                    }
                    if self.controls:
                        row["delta_within_emotion"] = within[a][unit]
                        row["p_within_emotion"] = p_within[a][unit]
                        row["q_within_emotion"] = q_within[a][unit]
                        has_partner = partners is not None and partners[a] >= 0
                        row["partner_au"] = au_numbers[partners[a]] if has_partner else None
                        row["delta_given_partner"] = given[a][unit] if has_partner else None
                        row["p_given_partner"] = p_given[a][unit] if has_partner else None
                        row["q_given_partner"] = q_given[a][unit] if has_partner else None
                    scores.append(row)

        index = {(r["layer"], r["unit"], r["au"]): r for r in scores}
        mapping: list[dict[str, Any]] = []
        layer_mapping: list[dict[str, Any]] = []
        all_distance = np.concatenate([per_layer[layer].distance for layer in layers], axis=1)  # [A, all units]
        layer_of = np.concatenate([np.full(per_layer[layer].distance.shape[1], li) for li, layer in enumerate(layers)])
        unit_of = np.concatenate([np.arange(per_layer[layer].distance.shape[1]) for layer in layers])
        for a, au in enumerate(au_numbers):
            defined = np.flatnonzero(~np.isnan(all_distance[a]))
            # Largest distance first; ties go to the shallower layer, then the lower unit.
            ranked = defined[np.lexsort((unit_of[defined], layer_of[defined], -all_distance[a, defined]))]
            for rank, column in enumerate(ranked[: self.units_per_au].tolist()):
                layer, unit = layers[int(layer_of[column])], int(unit_of[column])
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
            "partners": partners,
            "partner_phi": partner_phi,
            "per_layer": per_layer,
        }

    def score_heldout(
        self,
        model: Model,
        dataset: Dataset,
        scan: UnitScan,
        layers: Sequence[str],
        aus: Sequence[dict[int, int]],
        emotions: np.ndarray,
        method: Attribution | None,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Observation-level scores and the held-out mapping with a verdict per AU."""
        from interpret_core.analysis.unit_scan import grouping, observations

        from .au_heldout import HeldOutPlan, heldout_mapping, verdict

        numbers_all, presence_frames = au_presence(aus)
        emotions = np.asarray(emotions, dtype=np.int64)
        keep = np.ones(len(aus), dtype=bool)
        neutral = _neutral_index(dataset)
        if not self.include_neutral and neutral is not None:
            keep = emotions != neutral
        subjects, sequences = grouping(dataset, scan.indices)
        obs = observations(self.unit, subjects, sequences, presence_frames, emotions, keep)
        if len(obs) == 0:
            raise DataError("au-distance: no frames left to test (all neutral?)", "pass --metric-option include_neutral=true")
        presence = obs.presence
        n_with = presence.sum(axis=1)
        n_without = len(obs) - n_with
        owner = np.asarray(obs.subjects, dtype=object)
        subjects_with = np.asarray([len(set(owner[row].tolist())) for row in presence], dtype=np.int64)
        subjects_without = np.asarray([len(set(owner[~row].tolist())) for row in presence], dtype=np.int64)
        frames_with = np.asarray([int(presence_frames[a][keep].sum()) for a in range(len(numbers_all))], dtype=np.int64)
        eligible = (
            (n_with >= self.min_observations) & (n_without >= self.min_observations)
            & (subjects_with >= self.min_subjects) & (subjects_without >= self.min_subjects)
        )
        unit_name = obs.unit
        au_summary = []
        for a, au in enumerate(numbers_all):
            reason = None
            if not eligible[a]:
                reason = (f"{n_with[a]} {unit_name}s of {subjects_with[a]} subjects with, {n_without[a]} of "
                          f"{subjects_without[a]} without (needs {self.min_observations} {unit_name}s and "
                          f"{self.min_subjects} subjects each)")
            au_summary.append({
                "au": au, "n_with": int(n_with[a]), "n_without": int(n_without[a]),
                "subjects_with": int(subjects_with[a]), "subjects_without": int(subjects_without[a]),
                "frames_with": int(frames_with[a]), "statistical_unit": unit_name, "scored": bool(eligible[a]),
                **({"reason": reason} if reason else {}),
            })
        if not eligible.any():
            raise DataError(
                f"no AU has at least {self.min_observations} {unit_name}s and {self.min_subjects} subjects with it "
                f"and without among {len(obs)} {unit_name}s of {len(set(obs.subjects))} subjects",
                "use more images (drop --limit) or lower the minimum: --metric-option min_observations=N "
                "--metric-option min_subjects=N",
            )
        values = {layer: obs.means(scan.maxima[layer]) for layer in layers}
        table = self._table(values, layers, numbers_all, presence, obs.emotions, eligible, au_summary)
        for row in table["scores"]:
            row["statistical_unit"] = unit_name
        plan = HeldOutPlan(
            folds=self.folds, seed=self.seed, candidates=self.candidates, candidate_share=self.candidate_share,
            localise_per_fold=self.localise_per_fold, bootstrap=self.bootstrap, null_draws=self.null_draws,
            tolerance=self.tolerance, locate=self.locate if self.locate != "none" else "receptive-field",
            alpha=self.alpha, batch_size=self.batch_size, pool=self.pool,
        )
        au_numbers = table["au_numbers"]
        held = heldout_mapping(
            self, model, dataset, scan, list(layers), obs, values, au_numbers, table["presence"],
            lambda v, p: self.distance_matrix(v, p)[0], table["partners"], plan, method, progress,
        )
        summary_of = {row["au"]: row for row in au_summary}
        partners, partner_phi = table["partners"], table["partner_phi"]
        selected_on = (f"the other {held['folds'] - 1} of {held['folds']} subject-disjoint folds (seed {self.seed}); "
                       f"evidence on each observation's own held-out fold")
        score_of = {(r["layer"], r["unit"], r["au"]): r for r in table["scores"]}
        mapping: list[dict[str, Any]] = []
        for a, au in enumerate(au_numbers):
            h = held["rows"][au]
            row: dict[str, Any] = {
                "au": au, "layer": h["layer"], "unit": h["unit"], "rank": 0,
                "selected_on": selected_on, "statistical_unit": unit_name,
                "distance": h["delta"], "delta": h["delta"], "p_value": h["p_value"], "q_value": h["q_value"],
                "n_with": summary_of[au]["n_with"], "n_without": summary_of[au]["n_without"],
                "subjects_with": summary_of[au]["subjects_with"], "subjects_without": summary_of[au]["subjects_without"],
                "in_sample_distance": score_of[(h["layer"], h["unit"], au)]["distance"] if (h["layer"], h["unit"], au) in score_of else None,
            }
            row["significant"] = bool(row["q_value"] is not None and row["q_value"] < self.alpha
                                      and row["delta"] is not None and row["delta"] > 0)
            if self.controls:
                row["delta_within_emotion"] = h.get("delta_within_emotion")
                row["p_within_emotion"] = h.get("p_within_emotion")
                has_partner = partners is not None and partners[a] >= 0
                row["partner_au"] = au_numbers[partners[a]] if has_partner else None
                row["partner_phi"] = float(partner_phi[a]) if has_partner else None
                row["delta_given_partner"] = h.get("delta_given_partner") if has_partner else None
                row["p_given_partner"] = h.get("p_given_partner") if has_partner else None
            for key in ("spatial_agreement", "chance", "null_agreement", "agreement_p", "agreement_q",
                        "agreement_observations", "tolerance_px", "oracle", "top_delta", "stability",
                        "fold_units", "folds_agreeing"):
                row[key] = h.get(key)
            oracle = h.get("oracle") or {}
            row["oracle_unit"] = f"{oracle['layer']}/{oracle['unit']}" if oracle else None
            row["oracle_agreement"] = oracle.get("spatial_agreement")
            row["above_chance"] = None if row["spatial_agreement"] is None else row["spatial_agreement"] > row["chance"]
            row["verdict"], row["verdict_reason"] = verdict(row, self.alpha)
            mapping.append(row)
        mapping += self._untestable_rows(au_summary)
        mapping.sort(key=lambda r: r["au"])
        searched = ("every unit of the scanned layers (pool=all)" if self.pool == "all" else
                      "the localised pool (every fold's candidates and the top-delta unit)")
        definitions = {
            "delta": "held-out Cliff's delta: van Elteren pooling over folds, each fold ranking the unit selected "
            "without it (weights n1 n0 / (n + 1))",
            "selection_rule": f"per fold, among the {self.candidates} largest-{self.distance} units with at least "
            f"{self.candidate_share} of the top {self.distance} on the other folds, the one whose projection peak "
            f"falls in the AU's dilated mask most often above chance on those folds ({self.localise_per_fold} "
            f"observations per AU and fold are localised)",
            "spatial_agreement": "share of held-out observations (one frame each: the one where the unit fires "
            "most) whose located peak lies within tolerance_px of the AU's mask",
            "chance_heldout": "mean area fraction of the mask dilated by tolerance_px",
            "null_agreement": f"the same peaks scored against the masks of other subjects' observations of the AU "
            f"({self.null_draws} random pairings each): 'fires in the AU's usual region'",
            "agreement_q": "one-sided Poisson-binomial test of hits above the dilated chance, BH over AUs",
            "stability": f"subject bootstrap ({self.bootstrap} resamples, seed {self.seed}) of the selection within "
            f"{searched}: how often each fold's unit is selected again, 95 % percentile intervals of the "
            "held-out delta and agreement",
            "oracle": f"the best held-out agreement (excess over chance) any unit of {searched} reaches",
        }
        return {
            **table,
            "mapping": mapping,
            "statistical_unit": unit_name,
            "definitions": definitions,
            "observations": len(obs),
            "projections": held["projections"],
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


def _neutral_index(dataset: Any) -> int | None:
    """Index of the class named "neutral" in the data set's ``class_names``, or None."""
    try:
        names = [str(name).lower() for name in dataset.class_names]
    except (AttributeError, TypeError, NotImplementedError):
        return None
    return names.index("neutral") if "neutral" in names else None


def _signed_rank_greater(diff: np.ndarray) -> float | None:
    """One-sided Wilcoxon signed-rank p-value that ``diff`` is centred above 0."""
    import scipy.stats

    diff = diff[diff != 0]
    if diff.size == 0:
        return 1.0
    return float(scipy.stats.wilcoxon(diff, alternative="greater").pvalue)


def _finite_lists(array: np.ndarray) -> list[list[float | None]]:
    """:func:`_finite` of every entry of a 2-D array, as nested lists."""
    array = np.asarray(array, dtype=np.float64)
    return np.where(np.isfinite(array), array, None).tolist()


def _finite(value: Any) -> float | None:
    """A float for JSON: NaN and +-inf become None."""
    value = float(value)
    return value if np.isfinite(value) else None

