"""``interp explain PHOTO...``: the model's prediction on each face and where its evidence lies.

Finds and aligns the face in each photo, predicts the expression with the
configured real-face model (``interp models`` lists it; ``--model`` /
``--weights`` choose another), draws the chosen method's map over the aligned
face with the AU regions outlined, and gives each AU region's share of the
relevance beside its chance level (its share of the crop). PNG + JSON per
photo and ``explain.json`` in ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from interpret_core.api.errors import UsageError

from . import params
from .output import emit, info, plugin_warnings


def _render(summary: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"interp explain · {summary['model']['name']} · {summary['method']} → {summary['out']}", title_justify="left")
    for column in ("photo", "predicted", "p", "explained", "top AU regions: share (chance)"):
        table.add_column(column, overflow="fold")
    for row in summary["photos"]:
        top = list(row["au_regions"].items())[:3]
        table.add_row(
            Path(row["photo"]).name,
            row["predicted"],
            f"{row['probability']:.2f}",
            row["explained_class"],
            ", ".join(f"{au} {v['share']:.2f} ({v['area_fraction']:.2f})" for au, v in top),
        )
    return table


def explain_command(
    photos: Annotated[list[Path], typer.Argument(help="Photo files (png, jpg, ...); each should show one face.", show_default=False)],
    method: params.Method = None,
    method_option: params.MethodOption = [],
    model: params.ModelName = None,
    weights: params.Weights = None,
    model_option: params.ModelOption = [],
    device: params.Device = "cpu",
    dataset_option: params.DatasetOption = [],
    target: params.Target = "predicted",
    out: params.Out = Path("explained"),
    as_json: params.Json = False,
) -> None:
    """Explain the model's expression prediction on the face in each photo (PNG + JSON in --out)."""
    from interpret_core.registry.options import parse_options
    from interpret_core.workflows.explain import ExplainConfig, explain_photos

    if target == "label":
        raise UsageError("--target label: photos carry no labels here", "use --target predicted, a class name or a class index")
    config = ExplainConfig(
        photos=[str(p) for p in photos],
        out=str(out),
        method=method,
        method_options=parse_options(list(method_option), where="--method-option", example="max_batch=256"),
        model=model,
        weights=None if weights is None else str(weights),
        model_options=parse_options(list(model_option), where="--model-option", example="class_names=\"['a','b']\""),
        dataset_options=parse_options(list(dataset_option), where="--dataset-option", example="several_faces=skip"),
        target=target,
        device=device,
    )
    with plugin_warnings():  # the photo data set names each skipped photo as it reads it
        summary = explain_photos(config)
    info(f"wrote {len(summary['photos'])} explanation(s) to {out}")
    emit(summary, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp explain`` to ``app``."""
    from .plugin_commands import add_command

    add_command(app, "explain", explain_command)
