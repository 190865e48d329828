"""``interp config``: the plugins commands use when none is named (model, dataset, method, metric).

Values live in the user's config file (``interp config path``); a setting
the user has not made falls back to the default a plugin declares. See
:mod:`interpret_core.registry.defaults`.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from . import params
from .output import emit, info

config_app = typer.Typer(help="Show and change the default model, data set, method and metric.", no_args_is_help=True)

_KEY_HELP = "One of: model, dataset, method, metric."


def _render_rows(rows: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title="interp config", title_justify="left")
    for column in ("key", "value", "kind", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["key"], row["value"] or "-", row["kind"], row["source"])
    return table


@config_app.command("list")
def list_command(as_json: params.Json = False) -> None:
    """Every setting, its value and where the value comes from."""
    from interpret_core.registry.defaults import settings

    emit([row.as_row() for row in settings()], as_json, _render_rows)


@config_app.command("get")
def get_command(
    key: str = typer.Argument(..., help=_KEY_HELP),
    as_json: params.Json = False,
) -> None:
    """Print the value of one setting (the plugin name commands use when none is given)."""
    from interpret_core.registry.defaults import default, setting

    if as_json:
        emit(setting(key).as_row(), True)
    else:
        sys.stdout.write(default(key) + "\n")


@config_app.command("set")
def set_command(
    key: str = typer.Argument(..., help=_KEY_HELP),
    value: str = typer.Argument(..., help="An installed plugin's name (for method: a method spec, NAME:key=value)."),
    as_json: params.Json = False,
) -> None:
    """Make ``value`` the default for ``key`` (written to the user's config file)."""
    from interpret_core.registry.defaults import config_path, set_default

    row = set_default(key, value)
    info(f"{key} = {row.value} (in {config_path()})")
    if as_json:
        emit(row.as_row(), True)


@config_app.command("unset")
def unset_command(
    key: str = typer.Argument(..., help=_KEY_HELP),
    as_json: params.Json = False,
) -> None:
    """Forget the user's value for ``key``; the plugins' default applies again."""
    from interpret_core.registry.defaults import unset_default

    row = unset_default(key)
    info(f"{key} = {row.value or '(unset)'} (from {row.source})")
    if as_json:
        emit(row.as_row(), True)


@config_app.command("path")
def path_command(as_json: params.Json = False) -> None:
    """Print where the user's config file is (it may not exist yet)."""
    from interpret_core.registry.defaults import config_path

    if as_json:
        emit({"path": str(config_path())}, True)
    else:
        sys.stdout.write(f"{config_path()}\n")


def register(app: typer.Typer) -> None:
    """Add ``interp config ...`` to ``app``."""
    app.add_typer(config_app, name="config")
