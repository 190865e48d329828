"""Layer 8 of 8: the ``interp`` command line (typer + rich).

Exit codes: 0 ok, 1 runtime error, 2 usage error, 130 interrupted. A known
error prints one line plus a hint on stderr; ``INTERP_DEBUG=1`` adds the
traceback. Tracebacks never show local variables.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from interpret_core.api.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, InterpError

app = typer.Typer(
    name="interp",
    help="Open up facial-expression CNNs: train, attribute, and find action-unit detectors.",
    no_args_is_help=False,  # bare `interp` prints help itself (click's own exits 2)
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from interpret_core import __version__

        sys.stdout.write(f"interp {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
) -> None:
    """Open up facial-expression CNNs: train, attribute, and find action-unit detectors."""
    print_help_if_bare(ctx)


def print_help_if_bare(ctx: typer.Context) -> None:
    """A group called without a command prints its help on stdout and exits 0."""
    if ctx.invoked_subcommand is None:
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)


def _register_commands() -> None:
    # Each module adds its commands; they import torch only inside command bodies.
    from . import bench_cmd, config_cmd, data_cmd, explain_cmd, models_cmd, plugins_cmd, run_cmd, train_cmd, visualize_cmd

    for module in (plugins_cmd, config_cmd, data_cmd, explain_cmd, models_cmd, train_cmd, visualize_cmd, run_cmd, bench_cmd, explain_cmd):
        module.register(app)


_register_commands()
_plugins_loaded = False


def load_plugin_commands() -> typer.Typer:
    """Add what plugins register through ``interp_register_commands`` to :data:`app` (once); returns it.

    Done on first use rather than at import, because a plugin's command
    module imports :mod:`interpret_core.cli.params` and so this package.
    Core commands keep their names; what cannot be attached is a failed row
    of ``interp plugins``.
    """
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        from .data_cmd import data_app
        from .plugin_commands import attach_plugin_commands

        attach_plugin_commands(app, {"data": data_app})
    return app


#: What Ctrl-C prints (exit code 130); every result file is written atomically, so finished ones are complete.
INTERRUPTED_MESSAGE = "interrupted; finished files are kept"


def _debug() -> bool:
    return os.environ.get("INTERP_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    from rich.markup import escape

    from .output import stderr

    try:
        load_plugin_commands()
        # Standalone mode: typer handles --help, usage errors (exit 2) and Ctrl-C (130).
        app(args=argv, prog_name="interp")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_RUNTIME)
        if code == EXIT_INTERRUPTED:  # typer turned a KeyboardInterrupt into exit 130 without a word
            stderr.print(INTERRUPTED_MESSAGE, highlight=False)
    except KeyboardInterrupt:
        stderr.print(INTERRUPTED_MESSAGE, highlight=False)
        code = EXIT_INTERRUPTED
    except InterpError as exc:
        if _debug():
            traceback.print_exc()
        stderr.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        if exc.hint:
            stderr.print(f"[dim]hint:[/dim] {escape(exc.hint)}", highlight=False)
        code = exc.exit_code
    except Exception as exc:  # an unexpected bug: one line, traceback on request
        if _debug():
            traceback.print_exc()
        stderr.print(f"[red]error:[/red] {escape(type(exc).__name__ + ': ' + str(exc))}", highlight=False)
        stderr.print("hint: re-run with INTERP_DEBUG=1 for the traceback, and report it", highlight=False)
        code = EXIT_RUNTIME
    return code


def run() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())
