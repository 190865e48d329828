"""Human-readable views of an ``interp run`` result: mapping.md and report.html.

Both take the results dict that ``results.json`` holds and show what the
unit metric declared there (``results["report"]``: its method paragraph and
its tables, see :class:`interpret_core.ReportTable`); a metric that declares
no tables gets the mapping as a plain table. The HTML page is self-contained (inline CSS, no scripts, nothing fetched) and links its
figures relatively, so the output folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
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


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
tr.sig td:first-child { font-weight: bold; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; }
.warn { color: #a40; }
p.method { max-width: 60em; line-height: 1.4; }
"""


def render_html(results: dict[str, Any]) -> str:
    """report.html: summary, method, mapping table and figures, in one page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>interp run: {e(str(results.get('method')))} / {e(str(results.get('metric')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Which feature maps detect which action units</h1>",
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in _summary_lines(results)) + "</ul>",
    ]
    if not results.get("model", {}).get("trained"):
        parts.append('<p class="warn">The model is untrained (random weights): the mapping shows what random '
                     "filters respond to, not learnt AU detectors.</p>")
    report = results.get("report") or {}
    parts += ["<h2>Method</h2>", f'<p class="method">{e(str(report.get("text") or ""))}</p>']
    definitions = results.get("definitions") or {}
    if definitions:
        parts.append("<p>In this run:</p><ul>" + "".join(f"<li>{e(k)}: {e(str(v))}</li>" for k, v in definitions.items()) + "</ul>")
    options = results.get("metric_options") or {}
    if options:
        parts.append("<p>Options: " + e(", ".join(f"{k}={v}" for k, v in options.items())) + "</p>")
    for table in report_tables(results, "html"):
        parts.append(f"<h2>{e(table['title'])}</h2>")
        if table.get("note"):
            parts.append(f"<p>{e(table['note'])}</p>")
        parts.append("<table><tr>" + "".join(f"<th>{e(str(name))}</th>" for name in table["columns"]) + "</tr>")
        highlight = table.get("highlight") or []
        for number, row in enumerate(table["rows"]):
            cls = ' class="sig"' if number < len(highlight) and highlight[number] else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{e(str(cell))}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for row in results.get("mapping", []):
        figures = row.get("figures") or []
        if not figures:
            continue
        parts.append(f"<h3>AU{e(str(row['au']))}: {e(row['layer'])}/{e(str(row['unit']))} "
                     f"(distance {e(format_number(row.get('distance')))}, q {e(format_number(row.get('q_value')))})</h3>")
        captions = ("top images: patch under the receptive field | projection", "top images: whole input | projection")
        for path, caption in zip(figures, captions):
            parts.append(f'<figure><img src="{e(path)}" alt="{e(caption)}"><figcaption>{e(caption)}</figcaption></figure>')
    parts.append("<h2>Files</h2><ul>")
    for name, what in (("results.json", "everything, machine-readable"), ("scores.csv", "one row per (layer, unit, AU)"),
                       ("mapping.md", "the mapping table"), ("scan.npz", "cached unit scan (reused by --resume)")):
        parts.append(f'<li><a href="{name}">{name}</a>: {e(what)}</li>')
    parts.append("</ul>")
    versions = results.get("versions") or {}
    parts.append("<p><small>" + e(f"created {results.get('created')}; " + ", ".join(f"{k} {v}" for k, v in versions.items())) + "</small></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
