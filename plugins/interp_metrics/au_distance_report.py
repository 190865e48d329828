"""What the run report shows for ``au-distance``: its method paragraph and its tables.

``interp run`` renders whatever :class:`interpret_core.ReportTable` objects a
unit metric returns; these are au-distance's (the AU -> unit mapping with
spatial agreement and co-occurrence controls, the significant units, and the
best unit of each layer).
"""

from __future__ import annotations

from typing import Any

from interpret_core.api.interfaces import ReportTable
from interpret_core.render.report import format_number

__all__ = ["REPORT_TEXT", "report_tables"]

#: The method paragraph of report.html (docs/metrics.md has the full text).
REPORT_TEXT = (
    "Every image of the data set is passed once through the network; for each unit (feature map) of the "
    "chosen layers only its maximal activation and the position of that maximum are kept. For every action "
    "unit (AU) with enough images showing it and not showing it, the two distributions of each unit's maximal "
    "activation are compared. The default distance (see the run's definitions below) is Cliff's delta, 2·AUC − 1: the probability that an image "
    "with the AU activates the unit more than an image without it, minus the reverse (−1 to 1, 0 = no "
    "relation; rank-based, so it does not depend on the unit's scale). Each score has a two-sided "
    "Mann-Whitney U p-value (tie-corrected normal approximation) and a Benjamini-Hochberg q-value over all "
    "(layer, unit, AU) scores. An AU is mapped to the unit with the largest distance. Spatial agreement is "
    "the share of images showing the AU in which the centre of the receptive field of the unit's maximal "
    "activation lies inside the AU's region; chance is the mean area fraction of that region. Two controls "
    "for co-occurrence: the delta within emotion strata (van Elteren pooling) and within strata of the AU "
    "that co-occurs most with this one. The figures show, for each mapped unit, its top images: the image "
    "patch under the receptive field beside the unit's projection to pixel space, and the whole images beside "
    "their projections."
)


def _unit(row: dict[str, Any]) -> str:
    return f"{row['layer']}/{row['unit']}"


def _agreement(row: dict[str, Any]) -> str:
    if row.get("spatial_agreement") is None:
        return "-"
    return f"{format_number(row['spatial_agreement'], 2, False)} (chance {format_number(row.get('chance'), 2, False)})"


def _mapping_table(mapping: list[dict[str, Any]]) -> ReportTable:
    columns = ["AU", "layer/unit", "distance", "q-value", "significant", "spatial agreement", "n with / without"]
    controls = any("delta_within_emotion" in row for row in mapping)
    if controls:
        columns += ["delta within emotion", "delta given partner AU"]
    rows = []
    for row in mapping:
        cells = [
            f"AU{row['au']}",
            _unit(row),
            format_number(row.get("distance")),
            format_number(row.get("q_value")),
            format_number(row.get("significant")),
            _agreement(row),
            f"{row.get('n_with', '-')} / {row.get('n_without', '-')}",
        ]
        if controls:
            cells.append(format_number(row.get("delta_within_emotion")))
            cells.append(
                "-" if row.get("partner_au") is None
                else f"{format_number(row.get('delta_given_partner'))} (AU{row['partner_au']})"
            )
        rows.append(cells)
    return ReportTable("AU → unit mapping", columns, rows, highlight=[bool(row.get("significant")) for row in mapping])


def _units_table(unit_mapping: list[dict[str, Any]]) -> ReportTable:
    significant = [row for row in unit_mapping if row.get("significant")]
    return ReportTable(
        f"Units → AU ({len(significant)} of {len(unit_mapping)} units significant)",
        ["layer/unit", "AU", "distance", "q-value"],
        [[_unit(row), f"AU{row['au']}", format_number(row["distance"]), format_number(row["q_value"])] for row in significant],
        formats=("markdown",),
    )


def _layers_table(layer_mapping: list[dict[str, Any]]) -> ReportTable:
    layers = list(dict.fromkeys(row["layer"] for row in layer_mapping))
    best = {(row["au"], row["layer"]): row for row in layer_mapping}
    rows = []
    for au in dict.fromkeys(row["au"] for row in layer_mapping):
        cells = [f"AU{au}"]
        for layer in layers:
            row = best.get((au, layer))
            cells.append("-" if row is None else
                         f"{row['unit']} ({format_number(row.get('distance'))}, {format_number(row.get('q_value'))})")
        rows.append(cells)
    return ReportTable("Best unit of each layer", ["AU", *layers], rows, formats=("html",),
                       note="unit (distance, q-value) per AU and layer")


def report_tables(
    mapping: list[dict[str, Any]], unit_mapping: list[dict[str, Any]], layer_mapping: list[dict[str, Any]]
) -> list[ReportTable]:
    """The mapping table (both pages), significant units (mapping.md) and best unit per layer (report.html)."""
    tables = [_mapping_table(mapping)]
    if unit_mapping:
        tables.append(_units_table(unit_mapping))
    if layer_mapping:
        tables.append(_layers_table(layer_mapping))
    return tables
