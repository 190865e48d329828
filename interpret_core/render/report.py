"""Human-readable views of an ``interp run`` result: mapping.md and report.html.

Both take the results dict that ``results.json`` holds. The HTML page is
self-contained (inline CSS, no scripts, nothing fetched) and links its
figures relatively, so the output folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["render_mapping_markdown", "render_html", "format_number", "METHOD_TEXT"]

#: The method description shown on the report page (docs/metrics.md has the full text).
METHOD_TEXT = (
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


def _unit_label(row: dict[str, Any]) -> str:
    return f"{row['layer']}/{row['unit']}"


def _agreement(row: dict[str, Any]) -> str:
    if row.get("spatial_agreement") is None:
        return "-"
    return f"{format_number(row['spatial_agreement'], 2, False)} (chance {format_number(row.get('chance'), 2, False)})"


def _mapping_columns(results: dict[str, Any]) -> list[tuple[str, Any]]:
    columns: list[tuple[str, Any]] = [
        ("AU", lambda r: f"AU{r['au']}"),
        ("layer/unit", _unit_label),
        ("distance", lambda r: format_number(r.get("distance"))),
        ("q-value", lambda r: format_number(r.get("q_value"))),
        ("significant", lambda r: format_number(r.get("significant"))),
        ("spatial agreement", _agreement),
        ("n with / without", lambda r: f"{r.get('n_with', '-')} / {r.get('n_without', '-')}"),
    ]
    if any("delta_within_emotion" in row for row in results.get("mapping", [])):
        columns.append(("delta within emotion", lambda r: format_number(r.get("delta_within_emotion"))))
        columns.append(
            (
                "delta given partner AU",
                lambda r: "-" if r.get("partner_au") is None
                else f"{format_number(r.get('delta_given_partner'))} (AU{r['partner_au']})",
            )
        )
    return columns


def _summary_lines(results: dict[str, Any]) -> list[str]:
    summary = results.get("summary", {})
    model = results.get("model", {})
    dataset = results.get("dataset", {})
    lines = [
        f"method: {results.get('method')}; metric: {results.get('metric')}",
        f"model: {model.get('name')} ({'trained' if model.get('trained') else 'UNTRAINED: random weights'})"
        + (f", weights {model.get('weights')}" if model.get("weights") else ""),
        f"data set: {dataset.get('name')}, {dataset.get('images')} of {dataset.get('of')} images",
        f"layers: {', '.join(results.get('layers', []))}",
        f"AUs mapped: {summary.get('aus_mapped')}, significant (q < alpha): {summary.get('significant')}",
    ]
    if summary.get("mean_spatial_agreement") is not None:
        lines.append(
            f"spatial agreement: mean {format_number(summary['mean_spatial_agreement'], 2, False)} vs chance "
            f"{format_number(summary['mean_chance'], 2, False)}; above chance for {summary['above_chance']} of "
            f"{summary['with_agreement']} AUs"
        )
    return lines


def render_mapping_markdown(results: dict[str, Any]) -> str:
    """mapping.md: a summary and the AU -> unit table."""
    columns = _mapping_columns(results)
    out = [f"# AU -> unit mapping ({results.get('metric')}, {results.get('method')})", ""]
    out += [f"- {line}" for line in _summary_lines(results)]
    out += ["", "| " + " | ".join(name for name, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in results.get("mapping", []):
        out.append("| " + " | ".join(str(get(row)).replace("|", "\\|") for _, get in columns) + " |")
    units = results.get("unit_mapping", [])
    if units:
        significant = [u for u in units if u.get("significant")]
        out += ["", f"## Units -> AU ({len(significant)} of {len(units)} units significant)", ""]
        out += ["| layer/unit | AU | distance | q-value |", "|---|---|---|---|"]
        for row in significant:
            out.append(f"| {_unit_label(row)} | AU{row['au']} | {format_number(row['distance'])} | {format_number(row['q_value'])} |")
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
    columns = _mapping_columns(results)
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
    parts += ["<h2>Method</h2>", f'<p class="method">{e(METHOD_TEXT)}</p>']
    definitions = results.get("definitions") or {}
    if definitions:
        parts.append("<p>In this run:</p><ul>" + "".join(f"<li>{e(k)}: {e(str(v))}</li>" for k, v in definitions.items()) + "</ul>")
    options = results.get("metric_options") or {}
    if options:
        parts.append("<p>Options: " + e(", ".join(f"{k}={v}" for k, v in options.items())) + "</p>")
    parts += ["<h2>AU &rarr; unit mapping</h2>", "<table><tr>"]
    parts += [f"<th>{e(name)}</th>" for name, _ in columns]
    parts.append("</tr>")
    for row in results.get("mapping", []):
        cls = ' class="sig"' if row.get("significant") else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{e(str(get(row)))}</td>" for _, get in columns) + "</tr>")
    parts.append("</table>")
    layer_rows = results.get("layer_mapping") or []
    if layer_rows:
        layers = list(dict.fromkeys(row["layer"] for row in layer_rows))
        best = {(row["au"], row["layer"]): row for row in layer_rows}
        parts += ["<h2>Best unit of each layer</h2>", "<p>unit (distance, q-value) per AU and layer</p>", "<table><tr><th>AU</th>"]
        parts += [f"<th>{e(layer)}</th>" for layer in layers]
        parts.append("</tr>")
        for au in dict.fromkeys(row["au"] for row in layer_rows):
            cells = []
            for layer in layers:
                row = best.get((au, layer))
                cells.append("-" if row is None else
                             f"{row['unit']} ({format_number(row.get('distance'))}, {format_number(row.get('q_value'))})")
            parts.append(f"<tr><td>AU{e(str(au))}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for row in results.get("mapping", []):
        figures = row.get("figures") or []
        if not figures:
            continue
        parts.append(f"<h3>AU{e(str(row['au']))}: {e(_unit_label(row))} "
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
