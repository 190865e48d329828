"""One place for command output: data on stdout, messages on stderr.

Commands print their result with :func:`emit` (JSON with ``--json``, else a
rich rendering) and talk to the user with :func:`info` / :func:`warn`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, Callable

from rich.console import Console

from interpret_core.util.io import dumps_json

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

#: Width for rich output written to a file or pipe. Rich falls back to 80 columns there,
#: which folds every table cell (``interp-dat / asets``) and truncates wide tables; a
#: reader of ``interp run > table.txt`` wants each row on one line. Tables are not
#: expanded, so they keep their natural width up to this bound. ``COLUMNS`` still wins.
PIPE_WIDTH = 400


def info(message: str) -> None:
    """A progress or status message, on stderr."""
    stderr.print(message, highlight=False)


def warn(message: str) -> None:
    """A warning, on stderr."""
    stderr.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


class _WarnHandler(logging.Handler):
    """Route the readers' warnings (logger ``interp`` and below) through the CLI's warning style."""

    def emit(self, record: logging.LogRecord) -> None:
        warn(record.getMessage())


@contextlib.contextmanager
def plugin_warnings() -> Iterator[None]:
    """Show what plugins log as warnings (logger ``interp`` and below) as the CLI's warnings, once."""
    logger = logging.getLogger("interp")
    handler = _WarnHandler(logging.WARNING)
    logger.addHandler(handler)
    propagate = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def emit(data: Any, as_json: bool, render: Callable[[Any], Any] | None = None) -> None:
    """Print ``data`` to stdout: JSON if ``as_json``, else ``render(data)`` via rich."""
    if as_json or render is None:
        sys.stdout.write(dumps_json(data))
        sys.stdout.flush()
        return
    renderable = render(data)
    if renderable is None:
        return
    if stdout.is_terminal:
        stdout.print(renderable)
        return
    columns = os.environ.get("COLUMNS", "")
    Console(soft_wrap=True, width=int(columns) if columns.isdigit() else PIPE_WIDTH).print(renderable)
