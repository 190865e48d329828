"""``interp bench``: a table of attribution methods x attribution metrics, resumable."""

from __future__ import annotations

from typing import Annotated

import typer

from . import params
from .output import emit, info, warn


def bench_command(
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated method specs (options after a colon: NAME:KEY=VALUE,KEY=VALUE), or 'all' (every installed method that works on the model).")] = "all",
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated attribution metrics, or 'all'.")] = "all",
    model: params.ModelName = None,
    weights: params.Weights = None,
    model_option: params.ModelOption = [],
    device: params.Device = "cpu",
    dataset: params.DatasetName = None,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    limit: params.Limit = 64,
    seed: params.Seed = 0,
    out: params.Out = None,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Add a row for every installed baseline map (methods with is_baseline: the score floors).")] = True,
    metric_option: params.MetricOption = [],
    batch_size: params.BatchSize = 32,
    executor: params.Executor = "local",
    workers: params.Workers = None,
    scheduler: params.Scheduler = None,
    as_json: params.Json = False,
) -> None:
    """Score every method x metric on the same images: mean ± 95% CI and time per image.

    --limit N images are drawn with --seed, stratified over classes; --out
    defaults to ./interp-runs/bench-<model>-<dataset>-<hash>. --metric-option
    takes METRIC.KEY=VALUE (an option of the metric METRIC).

    Each (method, metric) cell is saved as soon as it is done; running the same
    command again reuses finished cells, so an interrupted bench resumes and a
    new method only computes its own cells. With --executor dask (--workers N
    or --scheduler ADDRESS) each method's attributions and each cell is a Dask
    task; finished cells are saved as they come back, so a re-run after a lost
    worker or Ctrl-C resumes the same way, and the table is the same.
    """
    from interpret_core.workflows.bench import BenchConfig, parse_method_list, parse_metric_options, parse_names, render_table, run_bench
    from interpret_core.util.progress import progress_bar
    from interpret_core.workflows.setup import choices_from_flags, executor_from_flags

    executor_choice = executor_from_flags(executor, workers, scheduler)
    model_choice, data_choice = choices_from_flags(
        model=model, weights=weights, model_option=model_option, seed=seed, device=device,
        dataset=dataset, data_root=data_root, dataset_option=dataset_option,
    )
    config = BenchConfig(
        methods=parse_method_list(methods),
        metrics=parse_names(metrics),
        model=model_choice.name,
        weights=model_choice.weights,
        model_options=model_choice.options,
        device=model_choice.device,
        dataset=data_choice.name,
        data_root=data_choice.data_root,
        dataset_options=data_choice.options,
        limit=limit,
        seed=seed,
        out=None if out is None else str(out),
        baselines=baselines,
        batch_size=batch_size,
        metric_options=parse_metric_options(metric_option),
        executor=executor_choice,
    )
    with progress_bar(transient=True) as progress:
        result = run_bench(config, progress=progress, status=info, warn=warn)
    info(
        f"bench: {result['computed']} cell(s) computed, {result['reused']} reused "
        f"({result['wall_s']:.1f} s); results in {result['out']}"
    )
    emit(result, as_json, render_table)


def register(app: typer.Typer) -> None:
    """Add ``interp bench`` to ``app``."""
    from .plugin_commands import add_command

    add_command(app, "bench", bench_command)
