"""``interp data``: generate, inspect and preview data sets."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Generate, inspect and preview data sets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``interp data ...`` to ``app``."""
    from . import data_generate, data_inspect

    data_generate.register(data_app)
    data_inspect.register(data_app)
    app.add_typer(data_app, name="data")
