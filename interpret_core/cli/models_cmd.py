"""``interp models``: each model plugin, its layers, and the card of its shipped weights."""

from __future__ import annotations

from typing import Any

import typer

from . import params
from .output import emit


def model_rows() -> list[dict[str, Any]]:
    """One row per model plugin (broken ones included, with their error)."""
    from interpret_core.api.errors import InterpError
    from interpret_core.registry.loader import get_registry
    from interpret_core.nn.weights import card_path, default_weights_path, read_card

    rows = []
    registry = get_registry()
    for name in registry.names("model"):
        row: dict[str, Any] = {"name": name, "status": "ok", "error": None}
        try:
            cls = registry.get_class("model", name)
            row["description"] = cls.description
            row["default_weights"] = cls.default_weights
            if getattr(cls, "builds_from_weights", False):
                # The network is the file given with --weights (e.g. ONNX): nothing to build here.
                row.update(layers=[], input_size=[], class_names=[], parameters=None, weights_path=None, card_path=None,
                           card=None, trained=None, mean_accuracy=None, std_accuracy=None, from_weights=True)
                rows.append(row)
                continue
            path = default_weights_path(row["default_weights"])
            card = read_card(path) if path is not None else None
            options: dict[str, Any] = {}
            if card is not None:
                options = {"class_names": card["architecture"]["class_names"], "input_size": tuple(card["architecture"]["input_size"])}
            model = cls(**options)  # layers and parameter count only; shipped weights are not loaded
            if card is None and getattr(model, "card", None) is not None:
                # A plugin that loads weights of its own sets their card itself.
                card = dict(model.card)
                path = card.get("path")
            row.update(
                layers=list(model.layers),
                input_size=list(model.input_size),
                class_names=list(model.class_names),
                parameters=int(sum(p.numel() for p in model.module.parameters())),
                weights_path=None if path is None else str(path),
                card_path=None if path is None else str(card_path(path)),
                trained=card is not None,
                card=card,
                mean_accuracy=None if card is None else (card.get("metrics") or {}).get("mean_accuracy"),
                std_accuracy=None if card is None else (card.get("metrics") or {}).get("std_accuracy"),
            )
        except InterpError as exc:
            row.update(status="failed", error=exc.message)
        except Exception as exc:  # a broken plugin must not hide the others
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return rows


def _render(rows: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title="interp models", title_justify="left")
    for column in ("name", "layers", "input", "classes", "params", "shipped weights", "CV accuracy", "trained on"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row["status"] != "ok":
            table.add_row(row["name"], f"[red]failed[/red]: {row['error']}", "", "", "", "", "", "")
            continue
        if row.get("from_weights"):
            table.add_row(row["name"], "from the file", "", "", "", "given with --weights", "-", "-")
            continue
        card = row.get("card")
        accuracy = "-"
        if row.get("mean_accuracy") is not None:
            accuracy = f"{row['mean_accuracy']:.3f} +- {row['std_accuracy']:.3f}"
            folds = (card.get("protocol") or {}).get("folds")
            if folds:
                accuracy += f" ({folds}-fold)"
        trained_on = "-"
        if card is not None:
            data = card.get("dataset") or {}
            counts = [f"{data[k]} {word}" for k, word in (("samples", "crops"), ("subjects", "subjects")) if data.get(k) is not None]
            trained_on = f"{data.get('name', '?')}" + (f" ({', '.join(counts)})" if counts else "")
        table.add_row(
            row["name"],
            ", ".join(row["layers"]),
            "x".join(str(v) for v in row["input_size"]),
            str(len(row["class_names"])),
            f"{row['parameters']:,}",
            ("untrained (none shipped)" if card is None else "the plugin's own") if row.get("weights_path") is None else row["weights_path"].rsplit("/", 1)[-1],
            accuracy,
            trained_on,
        )
    return table


def models_command(as_json: params.Json = False) -> None:
    """List model plugins: layers, input size, classes, and the card of shipped default weights (JSON: a list, full cards)."""
    emit(model_rows(), as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``interp models`` to ``app``."""
    app.command("models")(models_command)
