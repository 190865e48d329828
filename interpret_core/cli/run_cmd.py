"""``interp run``: which feature maps detect which action units.

Scans a data set through a model once, scores every unit against every AU
with a unit metric (default ``au-distance``), draws the mapped units with an
attribution method and writes results.json, scores.csv, mapping.md,
figures/ and report.html into the output folder.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from interpret_core.api.errors import UsageError
from interpret_core.registry.options import parse_options, split_list
from .output import emit, info


def _render(results: dict[str, Any]):
    from rich.table import Table

    from interpret_core.render.report import format_number

    model = results["model"]
    title = (
        f"{results['metric']} · {results['method']} · {model['name']}"
        f"{'' if model['trained'] else ' (untrained)'} · {results['dataset']['name']} "
        f"({results['dataset']['images']} images)"
    )
    table = Table(title=title, title_justify="left")
    for column in ("AU", "layer/unit", "distance", "q-value", "spatial agreement", "chance"):
        table.add_column(column, justify="left" if column in ("AU", "layer/unit") else "right")
    for row in results["mapping"]:
        significant = row.get("significant")
        au = f"AU{row['au']}"
        table.add_row(
            f"[bold]{au}[/bold]" if significant else au,
            f"{row['layer']}/{row['unit']}",
            format_number(row.get("distance")),
            format_number(row.get("q_value")),
            format_number(row.get("spatial_agreement"), 2, scientific=False),
            format_number(row.get("chance"), 2, scientific=False),
        )
    return table


def run_command(
    method: str = typer.Option(
        "deconv", "--method",
        help="Attribution method spec that draws the mapped units (needs unit projections), e.g. deconv, "
        "guided-backprop:max_memory_mb=128, captum:NeuronDeconvolution.",
    ),
    metric: str = typer.Option("au-distance", "--metric", help="Unit metric that scores (layer, unit, AU)."),
    model: str = typer.Option("fer-cnn", "--model", help="Model plugin name."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A .safetensors file from `interp train` (default: the model's shipped weights)."),
    dataset: str = typer.Option("synthfacs", "--dataset", help="Data set plugin name."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Data set folder (default: the plugin's default set)."),
    dataset_option: list[str] = typer.Option([], "--dataset-option", help="KEY=VALUE option for the dataset plugin (repeatable), e.g. protocol=peak or include_neutral=false."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Comma-separated layers (default: every layer the model lists)."),
    top_k: int = typer.Option(9, "--top-k", help="Images drawn per mapped unit."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use N images spread evenly over the data set."),
    out: Optional[str] = typer.Option(None, "--out", help="Output folder (default: a new folder under ./interp-runs/)."),
    resume: bool = typer.Option(False, "--resume", help="Reuse the unit scan cached in --out if it matches."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seeds torch before the model is built (fixes an untrained model's weights)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Metric option key=value (repeatable), e.g. distance=smd."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of a table."),
) -> None:
    """Find the feature maps that detect each action unit, and draw them."""
    from interpret_core.util.progress import progress_bar
    from interpret_core.workflows.run import RunConfig, run

    config = RunConfig(
        method=method,
        metric=metric,
        model=model,
        weights=weights,
        dataset=dataset,
        data_root=data_root,
        dataset_options=parse_options(dataset_option, where="--dataset-option", example="include_neutral=false"),
        layers=split_list(layers),
        top_k=top_k,
        limit=limit,
        out=out,
        resume=resume,
        batch_size=batch_size,
        metric_options=parse_options(option),
        seed=seed,
    )
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}", "pass e.g. --batch-size 64")
    with progress_bar(transient=True) as progress:
        results = run(config, progress=progress)
    info(f"wrote {results['out']} (report.html, results.json, scores.csv, mapping.md, figures/)")
    if not results["model"]["trained"]:
        info("note: the model is untrained (random weights); train one with `interp train` or pass --weights")
    emit(results, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp run`` to ``app``."""
    app.command("run")(run_command)
