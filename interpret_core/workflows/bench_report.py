"""``bench.html``: the bench table as charts, ranks and example maps (beside bench.md).

- ``bench-figures/<metric>.png``: one bar per method (mean, 95% CI whiskers),
  baselines drawn as dashed reference lines;
- ``bench-figures/ranks.png``: method x metric ranks in each metric's direction;
- ``bench-figures/examples.png``: every method's map on the same faces, AU
  regions outlined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpret_core.util.io import write_bytes, write_text
from interpret_core.util.paths import slug

__all__ = ["EXAMPLE_FACES", "example_positions", "rank_matrix", "write_bench_html"]

#: faces in the example figure
EXAMPLE_FACES = 4
FIGURES = "bench-figures"


def example_positions(has_mask: np.ndarray, subjects: Sequence[str], count: int = EXAMPLE_FACES) -> list[int]:
    """Positions in the bench selection of the example faces: with AU regions, one per subject, in order."""
    chosen, seen = [], set()
    for position in np.flatnonzero(has_mask):
        if subjects[position] not in seen:
            chosen.append(int(position))
            seen.add(subjects[position])
        if len(chosen) == count:
            break
    return chosen


def rank_matrix(result: dict[str, Any]) -> tuple[np.ndarray, list[str], list[str]]:
    """(ranks float [methods, columns], methods, column labels): 1 = best; NaN where undefined or not applicable.

    Cells with undefined maps are not ranked (their means cover other images);
    ties share the best rank of their group (``scipy.stats.rankdata``, ``min``).
    Reference columns (a chance rate) are left out.
    """
    from scipy.stats import rankdata

    from interpret_core.workflows.bench import _cell_of, column_title, is_reference, table_columns

    columns = [c for c in table_columns(result) if not is_reference(result, c[0], c[1])]
    methods = [row["method"] for row in result["methods"]]
    ranks = np.full((len(methods), len(columns)), np.nan)
    for c, (metric, extra, _) in enumerate(columns):
        higher = result["metrics"][metric]["higher_is_better"]
        values = []
        for row in result["methods"]:
            cell = _cell_of(row, metric, extra)
            undefined = (row["cells"].get(metric) or {}).get("n_undefined")
            mean = None if not cell else cell.get("mean")
            values.append(np.nan if mean is None or undefined or not np.isfinite(mean) else (-mean if higher else mean))
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values)
        if finite.any():
            ranks[finite, c] = rankdata(values[finite], method="min")
    labels = [column_title(label) for _, _, label in columns]
    return ranks, methods, labels


def write_bench_html(
    result: dict[str, Any],
    out: Path,
    *,
    faces: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    maps: Mapping[str, np.ndarray] | None = None,
    captions: Sequence[str] = (),
) -> None:
    """Draw the bench figures and write ``bench.html`` (atomically).

    Args:
        faces: float [F, H, W] the example faces as the network saw them (or None: no example figure).
        masks: bool [F, H, W] their AU regions.
        maps: method -> float [F, H, W] its maps on those faces (channels summed).
    """
    from interpret_core.render import figures as fig
    from interpret_core.render.pages import docs_link, render_page
    from interpret_core.workflows.bench import _cell_of, column_title, format_cell, is_reference, table_columns

    folder = out / FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    charts = []
    for metric, extra, label in table_columns(result):
        info = result["metrics"][metric]
        names, means, lows, highs, baselines = [], [], [], [], {}
        for row in result["methods"]:
            cell = _cell_of(row, metric, extra) or {}
            mean = cell.get("mean")
            mean = None if mean is None or not np.isfinite(mean) else float(mean)
            if row["baseline"]:
                if mean is not None:
                    baselines[row["method"]] = mean
                continue
            names.append(row["method"] + (" *" if (row["cells"].get(metric) or {}).get("n_undefined") else ""))
            means.append(mean)
            lows.append(cell.get("ci_low") if mean is not None else None)
            highs.append(cell.get("ci_high") if mean is not None else None)
        if is_reference(result, metric, extra):
            direction = "a reference level, not ranked"
        else:
            direction = "higher is better" if info["higher_is_better"] else "lower is better"
        title = f"{column_title(label)} ({direction})"
        png = fig.metric_bars(names, means, lows, highs, baselines, title=title,
                              value_label=metric + ("\n(* = some maps undefined)" if any(n.endswith(" *") for n in names) else ""))
        name = f"{FIGURES}/{slug(metric + ('-' + extra if extra else ''), unique=False)}.png"
        write_bytes(out / name, png)
        charts.append({"metric": column_title(label), "direction": direction, "file": name, "anchor": slug(metric, unique=False)})
    ranks, methods, labels = rank_matrix(result)
    ranks_file = None
    if ranks.size:
        ranks_file = f"{FIGURES}/ranks.png"
        write_bytes(out / ranks_file, fig.rank_heatmap(ranks, methods, labels, title="Rank of each method per metric"))
    examples_file = None
    if faces is not None and maps and len(faces):
        examples_file = f"{FIGURES}/examples.png"
        png = fig.method_examples(list(faces), {k: list(v) for k, v in maps.items()}, list(masks) if masks is not None else [None] * len(faces),
                                  title="Each method's map on the same images (AU regions in yellow)", captions=captions)
        write_bytes(out / examples_file, png)
    columns = ["method"] + [label for _, _, label in table_columns(result)]
    rows = [[row["method"] + (" (baseline)" if row["baseline"] else "")]
            + [format_cell(_cell_of(row, metric, extra)) for metric, extra, _ in table_columns(result)]
            for row in result["methods"]]
    config, images = result["config"], result["images"]
    summary = [
        f"model {config['model']} on {config['dataset']}: {images['n']} images ({images['n_with_masks']} with AU regions), "
        f"seed {config['seed']}",
        f"target: {config['target']}; interval: {config['interval']} ({int(config['confidence'] * 100)}%)",
    ]
    if images.get("accuracy_on_selection") is not None:
        summary.append(f"accuracy on these images: {images['accuracy_on_selection']:.3f} (classes matched by name)")
    warnings = [f"{c['method']} x {c['metric']}: {c['error']}" for c in result.get("failed_cells", [])]
    warnings += [f"skipped {name}: {why}" for name, why in (result.get("skipped_methods") or {}).items()]
    page = render_page("bench_report.html", summary_lines=summary, warnings=warnings, charts=charts, ranks=ranks_file,
                       examples=examples_file, columns=columns, rows=rows, docs=docs_link("benchmark.md"))
    write_text(out / "bench.html", page)
