"""The run report renders what the unit metric declares (its text and its tables), and a plain mapping otherwise."""

from __future__ import annotations

import dataclasses

from interpret_core import ReportTable
from interpret_core.render.report import render_html, render_mapping_markdown

MAPPING = [{"au": 12, "layer": "conv2", "unit": 7, "distance": 0.61, "q_value": 0.002, "significant": True, "figures": []}]


def _results(**report):
    return {"method": "m", "metric": "x", "model": {"name": "net", "trained": True}, "dataset": {"name": "d", "images": 3, "of": 3},
            "layers": ["conv2"], "summary": {}, "mapping": MAPPING, "report": report}


def test_declared_tables_appear_on_the_pages_they_name():
    tables = [
        ReportTable("Everywhere", ["concept", "unit"], [["AU12", "conv2/7"]], highlight=[True]),
        ReportTable("Markdown only", ["a"], [["md-cell"]], formats=("markdown",)),
        ReportTable("HTML only", ["b"], [["html-cell"]], formats=("html",), note="a note <under> the title"),
    ]
    results = _results(text="How this metric works.", tables=[dataclasses.asdict(t) for t in tables])
    markdown, page = render_mapping_markdown(results), render_html(results)
    assert "## Everywhere" in markdown and "| AU12 | conv2/7 |" in markdown
    assert "md-cell" in markdown and "html-cell" not in markdown
    assert "<h2>Everywhere</h2>" in page and '<tr class="sig"><td>AU12</td><td>conv2/7</td></tr>' in page
    assert "html-cell" in page and "md-cell" not in page
    assert "a note &lt;under&gt; the title" in page  # escaped
    assert "How this metric works." in page


def test_a_metric_without_tables_gets_the_mapping_as_a_plain_table():
    results = _results(text="", tables=[])
    markdown, page = render_mapping_markdown(results), render_html(results)
    assert "| AU | layer/unit | distance | q-value |" in markdown
    assert "| AU12 | conv2/7 | 0.610 | 0.002 |" in markdown
    assert '<tr class="sig"><td>AU12</td><td>conv2/7</td><td>0.610</td><td>0.002</td></tr>' in page
