"""``interp bench``: a table of attribution methods x attribution metrics, resumable."""

from __future__ import annotations

from typing import Optional

import typer

from .output import emit, info, warn


def bench_command(
    methods: str = typer.Option("all", "--methods", help="Comma-separated method specs (options after a colon: occlusion:window=12,stride=6; captum:Saliency), or 'all' (every installed method that works on the model)."),
    metrics: str = typer.Option("all", "--metrics", help="Comma-separated attribution metrics, or 'all'."),
    model: str = typer.Option("fer-cnn", "--model", help="Model plugin name."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A .safetensors file from `interp train` (default: the model's shipped weights)."),
    dataset: str = typer.Option("synthfacs", "--dataset", help="Dataset plugin name (synthfacs, ckplus, ...)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="The data set's root folder (synthfacs: default set in the cache)."),
    dataset_option: list[str] = typer.Option([], "--dataset-option", help="KEY=VALUE option for the dataset plugin (repeatable), e.g. protocol=peak or include_neutral=false."),
    limit: int = typer.Option(64, "--limit", help="Number of images, drawn with --seed, stratified over classes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the image selection."),
    out: Optional[str] = typer.Option(None, "--out", help="Output folder (default ./interp-runs/bench-<model>-<dataset>-<hash>; re-runs resume in it)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Add the centre-gaussian and random-map rows (score floors)."),
    metric_option: list[str] = typer.Option([], "--metric-option", help="METRIC.KEY=VALUE, e.g. deletion.baseline=mean (repeatable)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per attribution / metric batch."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Score every method x metric on the same images: mean ± 95% CI and time per image.

    Each (method, metric) cell is saved as soon as it is done; running the same
    command again reuses finished cells, so an interrupted bench resumes and a
    new method only computes its own cells.
    """
    from interpret_core.workflows.bench import BenchConfig, parse_method_list, parse_metric_options, parse_names, render_table, run_bench
    from interpret_core.registry.options import parse_options
    from interpret_core.util.progress import progress_bar

    config = BenchConfig(
        methods=parse_method_list(methods),
        metrics=parse_names(metrics),
        model=model,
        weights=weights,
        dataset=dataset,
        data_root=data_root,
        dataset_options=parse_options(dataset_option, where="--dataset-option", example="include_neutral=false"),
        limit=limit,
        seed=seed,
        out=out,
        baselines=baselines,
        batch_size=batch_size,
        metric_options=parse_metric_options(metric_option),
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
    app.command("bench")(bench_command)
