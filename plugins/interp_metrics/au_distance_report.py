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
    "chosen layers only its maximal activation and the position of that maximum are kept. By default the "
    "observation of every test is the sequence, not the frame: a unit's maxima are averaged over the frames "
    "of a sequence that share emotion and AUs (near-copies of one face are not independent), and 'without "
    "the AU' means expressive sequences without it (neutral frames are left out). The distance is Cliff's "
    "delta, 2·AUC − 1 (−1 to 1, 0 = no relation, rank-based), with a Mann-Whitney U test. Subjects are split "
    "into folds; each AU's unit is selected on the other folds (among the units with the largest delta, the "
    "one whose projection peak falls in the AU's region most often above chance) and its evidence is taken on "
    "the held-out fold only: held-out delta and q-value, and spatial agreement, the share of held-out "
    "sequences whose projection peak lies within a tolerance (half the layer's stride) of the AU's mask, "
    "against the chance of the mask dilated by that tolerance and against masks of other subjects (null). A "
    "subject bootstrap gives how often the unit is selected again and intervals. Each AU gets a verdict: "
    "localised (held-out delta and agreement significant), elsewhere (discriminates, fires outside the "
    "region), none (no significant held-out unit) or untestable (too few sequences or subjects, or "
    "inseparable from a partner AU). selection=paper reproduces the paper's frame-level, in-sample procedure "
    "and says so in every table. The figures show, for each AU, its selected unit's projection on the unit's "
    "strongest images with the AU (one per sequence) and without it, with the AU's region outlined."
)


def _unit(row: dict[str, Any]) -> str:
    return "-" if row.get("layer") is None else f"{row['layer']}/{row['unit']}"


def _agreement(row: dict[str, Any]) -> str:
    if row.get("spatial_agreement") is None:
        return "-"
    return f"{format_number(row['spatial_agreement'], 2, False)} (chance {format_number(row.get('chance'), 2, False)})"


def _stability(row: dict[str, Any]) -> str:
    stability = row.get("stability")
    if not stability or stability.get("selection_frequency") is None:
        return "-"
    low, high = stability.get("agreement_interval") or (None, None)
    return (f"{format_number(stability['selection_frequency'], 2, False)} "
            f"(agreement {format_number(low, 2, False)}-{format_number(high, 2, False)})")


def _oracle(row: dict[str, Any]) -> str:
    oracle = row.get("oracle")
    if not oracle:
        return "-"
    return f"{oracle['layer']}/{oracle['unit']}: {format_number(oracle.get('spatial_agreement'), 2, False)}"


def _mapping_table(mapping: list[dict[str, Any]]) -> ReportTable:
    unit = next((row.get("statistical_unit") for row in mapping if row.get("statistical_unit")), "frame")
    held_out = any(row.get("selected_on") and "fold" in row["selected_on"] for row in mapping)
    evidence = "held-out" if held_out else "in-sample"
    label = "FRAME-LEVEL" if unit == "frame" else unit
    columns = ["AU", "verdict", "layer/unit", f"{evidence} delta", f"{evidence} q-value", "spatial agreement"]
    if held_out:
        columns += ["null (other subjects' masks)", "bootstrap: selected again", "oracle unit: agreement"]
    columns.append(f"n with / without ({label}s)")
    controls = any("delta_within_emotion" in row for row in mapping)
    if controls:
        columns += ["delta within emotion", "delta given partner AU"]
    rows = []
    for row in mapping:
        cells = [
            f"AU{row['au']}",
            str(row.get("verdict", "-")),
            _unit(row),
            format_number(row.get("distance")),
            format_number(row.get("q_value")),
            _agreement(row),
        ]
        if held_out:
            cells += [format_number(row.get("null_agreement"), 2, False), _stability(row), _oracle(row)]
        cells.append(f"{row.get('n_with', '-')} / {row.get('n_without', '-')}")
        if controls:
            cells.append(format_number(row.get("delta_within_emotion")))
            cells.append(
                "-" if row.get("partner_au") is None
                else f"{format_number(row.get('delta_given_partner'))} (AU{row['partner_au']})"
            )
        rows.append(cells)
    note = ("verdict: localised = held-out delta and held-out agreement significant; elsewhere = discriminates, "
            "fires outside the region; none = no significant held-out unit; untestable = too few sequences or "
            "subjects, or inseparable from a partner AU" if held_out else
            "selection=paper: FRAME-LEVEL, in-sample (selection and evidence on the same images)")
    return ReportTable("AU → unit mapping", columns, rows,
                       highlight=[row.get("verdict") == "localised" for row in mapping], note=note)


def _units_table(unit_mapping: list[dict[str, Any]]) -> ReportTable:
    significant = [row for row in unit_mapping if row.get("significant")]
    return ReportTable(
        f"Units → AU, in-sample ({len(significant)} of {len(unit_mapping)} units with q < alpha; not a verdict)",
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
