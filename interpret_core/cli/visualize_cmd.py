"""``interp visualize``: Zeiler-Fergus unit grids and class-level heatmap overlays.

With ``--layer``: for each unit, its top-k images of the data set, each as
the image patch under the receptive field of the unit's maximum beside the
projection of that activation to pixel space. Without ``--layer``: class-level
maps of ``--limit`` images (default 16) overlaid on the faces. Writes PNGs,
``summary.json`` and ``index.html`` (relative links) into ``--out``. ``--resume`` continues an
interrupted run: the ranking scan and every finished unit are reused.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from interpret_core.api.errors import UsageError

from . import params
from .output import emit, info
from .plugin_options import method_spec


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
                if last < first:
                    raise UsageError(f"--units {text!r}: range {part!r} is empty (it ends before it starts)",
                                     f"write it as {last}-{first}")
                units.extend(range(first, last + 1))
            elif part:
                units.append(int(part))
        except ValueError:
            raise UsageError(f"--units {text!r}: {part!r} is not a unit number or range", "e.g. --units 0,3,5-8") from None
    if not units:
        raise UsageError(f"--units {text!r} names no unit", "e.g. --units 0,3,5-8, or omit it for every unit")
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
    method: params.Method = None,
    layer: params.Layer = None,
    units: Annotated[Optional[str], typer.Option("--units", "-u", help="Units to draw, e.g. 0,3,5-8 (default: all units of the layer).")] = None,
    top_k: params.TopK = 9,
    model: params.ModelName = None,
    weights: params.Weights = None,
    model_option: params.ModelOption = [],
    device: params.Device = "cpu",
    dataset: params.DatasetName = None,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    limit: params.Limit = None,
    target: params.Target = "predicted",
    batch_size: params.BatchSize = 64,
    seed: params.Seed = 0,
    method_option: params.MethodOption = [],
    legacy_option: params.LegacyMethodOption = [],
    out: params.Out = ...,
    resume: params.Resume = False,
    as_json: params.Json = False,
) -> None:
    """Draw what units detect (Zeiler-Fergus grids) or where classes look (overlays).

    With --layer: each unit's top-k images among --limit N ranked images
    (default: all) beside the projection of its maximum. Without --layer:
    class-level maps of --limit N images (default 16) overlaid on the faces.
    --out is the folder for the PNGs and index.html.
    """
    import torch

    from interpret_core.registry.loader import get_attribution
    from interpret_core.registry.options import parse_method_spec
    from interpret_core.util.progress import progress_bar
    from interpret_core.workflows.setup import choices_from_flags, load_model_and_data
    from interpret_core.workflows.visualize import even_indices, write_visualization

    from interpret_core.registry.defaults import default

    spec = method_spec(method or default("method"), params.merge_legacy(method_option, legacy_option))
    name, method_options = parse_method_spec(spec)
    model_choice, data_choice = choices_from_flags(
        model=model, weights=weights, model_option=model_option, seed=seed, device=device,
        dataset=dataset, data_root=data_root, dataset_option=dataset_option,
    )
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
    model = model_choice.name
    net, data = load_model_and_data(model_choice, data_choice)
    if layer is not None:
        indices = even_indices(len(data), limit)
    else:
        indices = even_indices(len(data), limit if limit is not None else 16)
    info(
        f"{name} on {model}{'' if net.card is not None else ' (untrained)'}, {data.name} "
        f"({len(indices)} of {len(data)} images) -> {out}"
    )
    from interpret_core.util.io import claim_output_dir

    with claim_output_dir(out), progress_bar(transient=True) as progress:  # one writer per --out
        summary = write_visualization(
            out,
            net,
            data,
            attribution,
            method_spec=spec,
            layer=layer,
            units=unit_list,
            top_k=top_k,
            indices=indices,
            batch_size=batch_size,
            target=target_value,
            progress=progress,
            meta={
                "model": {"name": model, "weights": model_choice.weights, "options": model_choice.options,
                          "trained": net.card is not None, "seed": seed},
                "dataset": {"name": data.name, "data_root": data_choice.data_root, "options": data_choice.options,
                            "images": int(len(indices))},
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
    from .plugin_commands import add_command

    add_command(app, "visualize", visualize_command)
