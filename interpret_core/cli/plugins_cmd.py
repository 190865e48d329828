"""``interp plugins``: every installed plugin class, and every failure."""

from __future__ import annotations

from typing import Any

import typer

from . import params
from .output import emit


def _render(rows: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title="interp plugins", title_justify="left")
    for column in ("kind", "name", "plugin", "distribution", "version", "status", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = row["status"]
        colour = {"ok": "green", "failed": "red"}.get(status, "yellow")
        table.add_row(
            row["kind"] or "-",
            row["name"] or "-",
            row["plugin"] or "-",
            row["distribution"] or "-",
            row["version"] or "-",
            f"[{colour}]{status}[/{colour}]",
            row["error"] or "",
        )
    return table


def plugins_command(as_json: params.Json = False) -> None:
    """List installed plugins and the commands they add: kind, name, entry point, distribution, version, status."""
    from interpret_core.registry.loader import plugins

    emit(plugins(), as_json, _render)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
