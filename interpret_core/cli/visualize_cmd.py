"""``interp visualize``: Zeiler-Fergus unit grids and class-level heatmap overlays.

With ``--layer``: for each unit, its top-k images of the data set, each as
the image patch under the receptive field of the unit's maximum beside the
projection of that activation to pixel space. Without ``--layer``: class-level
maps of ``--limit`` images (default 16) overlaid on the faces. Writes PNGs,
``summary.json`` and ``index.html`` (relative links) into ``--out``. ``--resume`` continues an
interrupted run: the ranking scan and every finished unit are reused.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from interpret_core.api.errors import UsageError
from .output import emit, info


def _parse_units(text: str | None) -> list[int] | None:
    """``"0,3,5-8"`` -> [0, 3, 5, 6, 7, 8]; None -> None (all units)."""
    if text is None or not text.strip() or text.strip() == "all":
        return None
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                first, last = (int(v) for v in part.split("-", 1))
                units.extend(range(first, last + 1))
            elif part:
                units.append(int(part))
        except ValueError:
            raise UsageError(f"--units {text!r}: {part!r} is not a unit number or range", "e.g. --units 0,3,5-8") from None
    return units


def _render(summary: dict[str, Any]):
    from rich.table import Table

    if summary.get("units") is not None:
        table = Table(title=f"{summary['method']} · {summary['layer']} → {summary['out']}/index.html", title_justify="left")
        for column in ("unit", "grid", "top images", "max activation"):
            table.add_column(column)
        for row in summary["units"]:
            table.add_row(
                str(row["unit"]),
                row["png"],
                ", ".join(str(i) for i in row["images"][:5]) + (" ..." if len(row["images"]) > 5 else ""),
                f"{max(row['maxima']):.3g}",
            )
        return table
    table = Table(title=f"{summary['method']} · class-level → {summary['out']}/index.html", title_justify="left")
    for column in ("image", "target", "predicted", "label"):
        table.add_column(column)
    for row in summary.get("images", []):
        table.add_row(str(row["index"]), row["class"], row["predicted"], str(row["label"]))
    return table


def visualize_command(
    method: str = typer.Option(
        "deconv", "--method", "-m",
        help="Attribution method spec: deconv, guided-backprop, grad-cam, occlusion:window=12, captum:NoiseTunnel(Saliency),nt_samples=8 ...",
    ),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", help="Layer whose units to draw (see `interp models`); omit for class-level overlays."),
    units: Optional[str] = typer.Option(None, "--units", "-u", help="Units to draw, e.g. 0,3,5-8 (default: all units of the layer)."),
    top_k: int = typer.Option(9, "--top-k", help="Images per unit, by descending maximal activation."),
    model: str = typer.Option("fer-cnn", "--model", help="Model plugin name."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A .safetensors file from `interp train` (default: the model's shipped weights)."),
    dataset: str = typer.Option("synthfacs", "--dataset", help="Data set plugin name."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Data set folder (default: the plugin's default set)."),
    dataset_option: list[str] = typer.Option([], "--dataset-option", help="KEY=VALUE option for the dataset plugin (repeatable), e.g. protocol=peak or include_neutral=false."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Rank N images spread evenly over the data set (class-level: draw N images; default 16)."),
    target: str = typer.Option("predicted", "--target", help="Class-level target: predicted, label, or a class index."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass of the ranking scan."),
    seed: int = typer.Option(0, "--seed", help="Seeds torch before the model is built (fixes an untrained model's weights)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Method option key=value (repeatable), e.g. -o max_batch=256."),
    out: str = typer.Option(..., "--out", help="Output folder for the PNGs and index.html."),
    resume: bool = typer.Option(False, "--resume", help="Reuse the ranking scan and the finished units in --out when they match."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Draw what units detect (Zeiler-Fergus grids) or where classes look (overlays)."""
    import torch

    from interpret_core.registry.loader import open_dataset
    from interpret_core.registry.options import parse_method_spec, parse_options
    from interpret_core.util.progress import progress_bar
    from interpret_core.registry.loader import get_attribution, get_model
    from interpret_core.workflows.visualize import even_indices, write_visualization

    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}", "e.g. --top-k 9")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}", "e.g. --batch-size 64")
    name, method_options = parse_method_spec(method)
    method_options.update(parse_options(option, where="--option", example="max_batch=256"))
    dataset_options = parse_options(dataset_option, where="--dataset-option", example="include_neutral=false")
    unit_list = _parse_units(units)
    if units is not None and layer is None:
        raise UsageError("--units needs --layer", "e.g. --layer conv2 --units 0,1,2")
    target_value: str | int = target
    if target not in ("predicted", "label"):
        try:
            target_value = int(target)
        except ValueError:
            raise UsageError(f"--target {target!r} is not predicted, label or a class index", "e.g. --target predicted") from None

    attribution = get_attribution(name, **method_options)
    torch.manual_seed(seed)  # later random draws (e.g. noise tunnels) repeat too
    net = get_model(model, weights=weights, seed=seed)
    data = open_dataset(dataset, data_root, dataset_options)
    if layer is not None:
        indices = even_indices(len(data), limit)
    else:
        indices = even_indices(len(data), limit if limit is not None else 16)
    info(
        f"{name} on {model}{'' if net.card is not None else ' (untrained)'}, {dataset} "
        f"({len(indices)} of {len(data)} images) -> {out}"
    )
    with progress_bar(transient=True) as progress:
        summary = write_visualization(
            out,
            net,
            data,
            attribution,
            method_spec=method,
            layer=layer,
            units=unit_list,
            top_k=top_k,
            indices=indices,
            batch_size=batch_size,
            target=target_value,
            progress=progress,
            meta={
                "model": {"name": model, "weights": weights, "trained": net.card is not None, "seed": seed},
                "dataset": {"name": dataset, "data_root": data_root, "options": dataset_options, "images": int(len(indices))},
            },
            resume=resume,
        )
    summary["out"] = str(out)
    info(f"wrote {out}/index.html")
    if net.card is None:
        info("note: the model is untrained (random weights); train one with `interp train` or pass --weights")
    emit(summary, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp visualize`` to ``app``."""
    app.command("visualize")(visualize_command)
