"""Human-readable views of an ``interp run`` result: mapping.md and report.html.

Both take the results dict that ``results.json`` holds and show what the
unit metric declared there (``results["report"]``: its method paragraph and
its tables, see :class:`interpret_core.ReportTable`); a metric that declares
no tables gets the mapping as a plain table. The HTML page is self-contained (inline CSS, no scripts, nothing fetched) and links its
figures relatively, so the output folder can be moved or zipped as a whole.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_mapping_markdown", "render_html", "format_number", "report_tables"]


def format_number(value: Any, digits: int = 3, scientific: bool = True) -> str:
    """Short text for a number; '-' for None; tiny values (p/q) in scientific notation if ``scientific``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if scientific and value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def report_tables(results: dict[str, Any], page: str) -> list[dict[str, Any]]:
    """The tables the metric declared for ``page`` (``"markdown"`` or ``"html"``), or the plain mapping table."""
    declared = (results.get("report") or {}).get("tables") or []
    if declared:
        return [table for table in declared if page in table.get("formats", ("markdown", "html"))]
    mapping = results.get("mapping", [])
    return [{
        "title": "AU → unit mapping",
        "columns": ["AU", "layer/unit", "distance", "q-value"],
        "rows": [[f"AU{row['au']}", f"{row['layer']}/{row['unit']}", format_number(row.get("distance")),
                  format_number(row.get("q_value"))] for row in mapping],
        "highlight": [bool(row.get("significant")) for row in mapping],
        "note": "",
    }]


def _summary_lines(results: dict[str, Any]) -> list[str]:
    summary = results.get("summary", {})
    model = results.get("model", {})
    dataset = results.get("dataset", {})
    lines = [
        f"method: {results.get('method')}; metric: {results.get('metric')}",
        f"model: {model.get('name')} ({'trained' if model.get('trained') else 'UNTRAINED: random weights'})"
        + (f", weights {model.get('weights')}" if model.get("weights") else ""),
        f"data set: {dataset.get('name')}, {dataset.get('images')} of {dataset.get('of')} images"
        + (f"; AU regions: {dataset['au_masks']}" if dataset.get("au_masks") else ""),
        f"layers: {', '.join(results.get('layers', []))}",
    ]
    unit = results.get("statistical_unit")
    if unit is not None:  # a metric that declares its observations and selection (au-distance)
        lines.append(
            f"statistical unit: {unit}" + (" (FRAME-LEVEL: near-copies of one face counted as independent)" if unit == "frame" else "")
            + f"; selection: {results.get('selection')}"
            + (" (in-sample: selection and evidence on the same images)" if results.get("selection") == "paper"
               else " (selected on some subjects, evidence on held-out subjects)")
        )
    verdicts = summary.get("verdicts")
    if verdicts:
        lines.append("verdicts: " + ", ".join(f"{name} {count}" for name, count in verdicts.items()))
    else:
        lines.append(f"AUs mapped: {summary.get('aus_mapped')}, significant (q < alpha): {summary.get('significant')}")
    if summary.get("mean_spatial_agreement") is not None:
        lines.append(
            f"spatial agreement: mean {format_number(summary['mean_spatial_agreement'], 2, False)} vs chance "
            f"{format_number(summary['mean_chance'], 2, False)}; above chance for {summary['above_chance']} of "
            f"{summary['with_agreement']} AUs"
        )
    return lines


def render_mapping_markdown(results: dict[str, Any]) -> str:
    """mapping.md: a summary and the metric's tables."""
    out = [f"# AU -> unit mapping ({results.get('metric')}, {results.get('method')})", ""]
    out += [f"- {line}" for line in _summary_lines(results)]
    for table in report_tables(results, "markdown"):
        out += ["", f"## {table['title']}", ""]
        if table.get("note"):
            out += [table["note"], ""]
        out += ["| " + " | ".join(table["columns"]) + " |", "|" + "---|" * len(table["columns"])]
        for row in table["rows"]:
            out.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    out.append("")
    return "\n".join(out)


def _verdict_counts(results: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in results.get("mapping", []):
        if row.get("rank", 0) == 0 and row.get("verdict"):
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def _au_sections(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per mapped AU (primary rows), in the mapping's order, with its figures."""
    figures = results.get("figures") or {}
    per_au = figures.get("per_au") or {}
    densities = figures.get("densities") or {}
    names = results.get("au_names") or {}
    sections = []
    for row in results.get("mapping", []):
        if row.get("rank", 0) != 0:
            continue
        try:
            key = f"AU{int(row['au']):02d}"
        except (TypeError, ValueError):
            key = str(row["au"])
        panel = per_au.get(key) or {}
        parts = [f"{name} {format_number(row.get(field))}" for name, field in (
            ("distance", "distance"), ("q", "q_value"), ("agreement", "spatial_agreement"), ("chance", "chance"),
            ("shuffled-mask null", "null_agreement")) if row.get(field) is not None]
        for name, field in (("with", "n_with"), ("without", "n_without")):
            if row.get(field) is not None:
                parts.append(f"n {name} {row[field]}")
        sections.append({
            "key": key,
            "name": names.get(key, ""),
            "layer": row.get("layer"),
            "unit": row.get("unit"),
            "verdict": row.get("verdict"),
            "line": "; ".join(parts),
            "figure": panel.get("file"),
            "note": (figures.get("notes") or {}).get(key, row.get("figure_note", "not drawn")),
            "density": densities.get(f"{row.get('layer')}/{row.get('unit')}"),
        })
    return sections


FILES = (
    ("results.json", "everything, machine-readable"),
    ("mapping.csv", "one row per AU: the selected unit, its held-out evidence and verdict"),
    ("scores.csv", "one row per (layer, unit, AU)"),
    ("mapping.md", "the mapping tables"),
    ("scan.npz", "cached unit scan (reused by --resume)"),
)


def render_html(results: dict[str, Any]) -> str:
    """report.html: summary, method, overview figures, one section per AU, the metric's tables and the files."""
    from interpret_core.render.pages import docs_link, render_page

    report = results.get("report") or {}
    options = results.get("metric_options") or {}
    figures = results.get("figures") or {}
    return render_page(
        "run_report.html",
        results=results,
        summary_lines=_summary_lines(results),
        verdict_counts=_verdict_counts(results),
        report={"text": report.get("text") or ""},
        definitions=results.get("definitions") or {},
        options=", ".join(f"{k}={v}" for k, v in options.items()),
        figures={"agreement": figures.get("agreement"), "layers": figures.get("layers"),
                 "heatmaps": figures.get("heatmaps") or {}},
        au_sections=_au_sections(results),
        tables=report_tables(results, "html"),
        files=FILES,
        docs=docs_link("metrics.md"),
        value_label=(results.get("definitions") or {}).get("distance_name", "distance"),
        au_regions=(results.get("dataset") or {}).get("au_masks", "AU region"),
    )
