"""Progress bars on stderr, shared by every long-running command.

Library code takes an optional :class:`Progress`-like object; the CLI passes
one that draws a rich bar on stderr. ``INTERP_NO_PROGRESS=1`` (or a
non-terminal stderr under CI) keeps the output quiet.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars are drawn unless INTERP_NO_PROGRESS is set."""
    return os.environ.get("INTERP_NO_PROGRESS", "") in ("", "0")


@contextlib.contextmanager
def progress_bar(transient: bool = False) -> Iterator["object"]:
    """A rich Progress drawing on stderr (disabled when progress is off)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not progress_enabled(),
    ) as progress:
        yield progress


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar() as progress:
        task = progress.add_task(description, total=total)  # type: ignore[attr-defined]
        for item in iterable:
            yield item
            progress.advance(task)  # type: ignore[attr-defined]
