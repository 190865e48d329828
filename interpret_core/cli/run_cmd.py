"""``interp run``: which feature maps detect which action units.

Scans a data set through a model once, scores every unit against every AU
with a unit metric (default ``au-distance``), draws the mapped units with an
attribution method and writes results.json, scores.csv, mapping.md,
figures/ and report.html into the output folder.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from interpret_core.registry.options import split_list

from . import params
from .output import emit, info, warn
from .plugin_options import method_spec, metric_options


def _render(results: dict[str, Any]):
    from rich.table import Table

    from interpret_core.render.report import format_number

    model = results["model"]
    title = (
        f"{results['metric']} · {results['method']} · {model['name']}"
        f"{'' if model['trained'] else ' (untrained)'} · {results['dataset']['name']} "
        f"({results['dataset']['images']} images)"
    )
    unit = results.get("statistical_unit") or "frame"
    selection = results.get("selection") or "paper"
    verdicts = (results.get("summary") or {}).get("verdicts") or {}
    caption = (f"statistical unit: {unit}{' (FRAME-LEVEL)' if unit == 'frame' else ''}; selection: {selection}"
               f"{' (in-sample)' if selection == 'paper' else ' (evidence on held-out subjects)'}; "
               + ", ".join(f"{name} {count}" for name, count in verdicts.items()))
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in ("AU", "verdict", "layer/unit", "delta", "q-value", "agreement", "chance", "null", "selected again"):
        table.add_column(column, justify="left" if column in ("AU", "verdict", "layer/unit") else "right")
    for row in results["mapping"]:
        au = f"AU{row['au']}"
        stability = row.get("stability") or {}
        table.add_row(
            f"[bold]{au}[/bold]" if row.get("verdict") == "localised" else au,
            str(row.get("verdict", "-")),
            "-" if row.get("layer") is None else f"{row['layer']}/{row['unit']}",
            format_number(row.get("distance")),
            format_number(row.get("q_value")),
            format_number(row.get("spatial_agreement"), 2, scientific=False),
            format_number(row.get("chance"), 2, scientific=False),
            format_number(row.get("null_agreement"), 2, scientific=False),
            format_number(stability.get("selection_frequency"), 2, scientific=False),
        )
    return table


def run_command(
    method: params.Method = None,
    metric: params.Metric = None,
    model: params.ModelName = None,
    weights: params.Weights = None,
    model_option: params.ModelOption = [],
    device: params.Device = "cpu",
    dataset: params.DatasetName = None,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    layers: params.Layers = None,
    top_k: params.TopK = 9,
    limit: params.Limit = None,
    out: params.Out = None,
    resume: params.Resume = False,
    batch_size: params.BatchSize = 64,
    seed: params.Seed = 0,
    executor: params.Executor = "local",
    workers: params.Workers = None,
    scheduler: params.Scheduler = None,
    method_option: params.MethodOption = [],
    metric_option: params.MetricOption = [],
    legacy_option: params.LegacyMetricOption = [],
    as_json: params.Json = False,
) -> None:
    """Find the feature maps that detect each action unit, and draw them.

    The method spec (with --method-option) draws the mapped units and must
    project units (supports_units; `interp plugins` lists the methods);
    --limit N uses N images spread evenly over the data set; --out is the run
    folder (default: a new one under ./interp-runs/), --resume reuses the unit
    scan cached there. --executor dask (--workers N or --scheduler ADDRESS)
    shards the unit scan over Dask workers; the results are the same.
    """
    from interpret_core.util.progress import progress_bar
    from interpret_core.workflows.run import RunConfig, run
    from interpret_core.registry.defaults import default
    from interpret_core.workflows.setup import choices_from_flags, executor_from_flags

    method, metric = method or default("method"), metric or default("metric")
    executor_choice = executor_from_flags(executor, workers, scheduler)

    model_choice, data_choice = choices_from_flags(
        model=model, weights=weights, model_option=model_option, seed=seed, device=device,
        dataset=dataset, data_root=data_root, dataset_option=dataset_option,
    )
    config = RunConfig(
        method=method_spec(method, method_option),
        metric=metric,
        model=model_choice.name,
        weights=model_choice.weights,
        model_options=model_choice.options,
        device=model_choice.device,
        dataset=data_choice.name,
        data_root=data_choice.data_root,
        dataset_options=data_choice.options,
        layers=split_list(layers),
        top_k=top_k,
        limit=limit,
        out=None if out is None else str(out),
        resume=resume,
        batch_size=batch_size,
        metric_options=metric_options(metric, params.merge_legacy(metric_option, legacy_option)),
        seed=seed,
        executor=executor_choice,
    )
    with progress_bar(transient=True) as progress:
        results = run(config, progress=progress, warn=warn)
    info(f"wrote {results['out']} (report.html, results.json, scores.csv, mapping.md, figures/)")
    if not results["model"]["trained"]:
        info("note: the model is untrained (random weights); train one with `interp train` or pass --weights")
    emit(results, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp run`` to ``app``."""
    from .plugin_commands import add_command

    add_command(app, "run", run_command)
