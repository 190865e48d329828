"""``interp data``: inspect and preview data sets (plugins add more, e.g. ``data generate``)."""

from __future__ import annotations

import typer

data_app = typer.Typer(
    help="Inspect, preview and (where a plugin can) generate data sets.",
    invoke_without_command=True,
    no_args_is_help=False,  # bare `interp data` prints help and exits 0, as bare `interp` does
)


@data_app.callback()
def _data(ctx: typer.Context) -> None:
    """Inspect, preview and (where a plugin can) generate data sets."""
    from . import print_help_if_bare

    print_help_if_bare(ctx)


def register(app: typer.Typer) -> None:
    """Add ``interp data ...`` to ``app``."""
    from . import data_inspect, data_preview

    data_inspect.register(data_app)
    data_preview.register(data_app)
    app.add_typer(data_app, name="data")
