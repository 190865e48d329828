"""Progress reporting shared by every long-running command.

Library code takes ``progress: ProgressLike`` -- a :class:`Progress`, a
``callable(done, total)`` or None -- and opens its counters with
:func:`start_task` (or :func:`as_progress` for several). The CLI opens one
:class:`Progress` for a command with :func:`progress_bar`, which picks how to
show it:

* stderr is a terminal (or Jupyter): rich bars (:class:`RichProgress`);
* stderr is not a terminal (a log file, CI, a batch job): plain lines,
  one when a task starts, then at most every ``INTERP_PROGRESS_INTERVAL``
  seconds (default 5) or at each tenth of the way, and one when it ends
  (:class:`PlainProgress`, like pip's and tqdm's file mode), so a log shows life;
* ``INTERP_NO_PROGRESS=1``: nothing (:class:`SilentProgress`).

Progress always goes to stderr; data goes to stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import IO, TYPE_CHECKING, Any, TypeVar, Union

from interpret_core.api.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import rich.progress

__all__ = [
    "Progress",
    "ProgressLike",
    "Task",
    "TaskId",
    "PlainProgress",
    "RichProgress",
    "SilentProgress",
    "CallbackProgress",
    "as_progress",
    "start_task",
    "progress_bar",
    "progress_enabled",
    "track",
]

T = TypeVar("T")

#: A task's handle within its :class:`Progress` (rich's ``TaskID`` is an int too).
TaskId = int


@dataclasses.dataclass
class _TaskState:
    description: str
    total: float | None
    completed: float
    visible: bool
    started: float
    last_line: float = -math.inf
    last_tenth: int = -1
    finished: bool = False
    shown: Any = None  # what the display keeps for the task (rich's TaskID)


class Progress:
    """What long-running library code reports to: named tasks with a count.

    This base class keeps the count of each task and shows nothing; the
    subclasses show it (:class:`PlainProgress`, :class:`RichProgress`) or pass
    it on (:class:`CallbackProgress`) by overriding ``_started``, ``_changed``
    and ``_removed``. The method names are rich's ``Progress`` ones, so code
    written against a rich bar keeps working.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.tasks: dict[TaskId, _TaskState] = {}
        self._ids = itertools.count()

    def add_task(self, description: str, *, total: float | None = None, completed: float = 0, visible: bool = True) -> TaskId:
        """Start a task counting up to ``total`` (None: unknown); returns its id."""
        task = next(self._ids)
        self.tasks[task] = _TaskState(description, total, float(completed), bool(visible), self.clock())
        self._started(self.tasks[task])
        return task

    def advance(self, task: TaskId, amount: float = 1) -> None:
        """Add ``amount`` to the task's count."""
        state = self.tasks.get(task)
        if state is not None:
            state.completed += amount
            self._changed(state)

    def update(
        self,
        task: TaskId,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
    ) -> None:
        """Set the task's count, total, description or visibility (None: unchanged)."""
        state = self.tasks.get(task)
        if state is None:
            return
        if description is not None:
            state.description = description
        if total is not None:
            state.total = total
        if visible is not None:
            state.visible = bool(visible)
        if completed is not None:
            state.completed = float(completed)
        self._changed(state)

    def reset(self, task: TaskId, *, total: float | None = None, description: str | None = None) -> None:
        """Start the task again from 0 (optionally with a new total and description)."""
        state = self.tasks.get(task)
        if state is None:
            return
        state.completed, state.started, state.last_line, state.last_tenth, state.finished = 0.0, self.clock(), -math.inf, -1, False
        if total is not None:
            state.total = total
        if description is not None:
            state.description = description
        self._started(state)

    def remove_task(self, task: TaskId) -> None:
        """The task is over; it is no longer shown."""
        state = self.tasks.pop(task, None)
        if state is not None:
            self._removed(state)

    def _started(self, state: _TaskState) -> None:
        """A task was added or reset."""

    def _changed(self, state: _TaskState) -> None:
        """A task's count, total, description or visibility was set."""

    def _removed(self, state: _TaskState) -> None:
        """A task was removed."""


#: What library functions accept as ``progress``.
ProgressLike = Union[Progress, Callable[[int, int], None], None]


class SilentProgress(Progress):
    """Counts and shows nothing (``INTERP_NO_PROGRESS=1``, or no progress given)."""


class CallbackProgress(Progress):
    """Calls ``callback(done, total)`` whenever a task's count changes (not when it starts).

    ``done`` and ``total`` are ints; ``total`` is 0 when unknown.
    """

    def __init__(self, callback: Callable[[int, int], None]) -> None:
        super().__init__()
        self.callback = callback

    def _started(self, state: _TaskState) -> None:
        state.shown = (int(state.completed), int(state.total or 0))

    def _changed(self, state: _TaskState) -> None:
        counts = (int(state.completed), int(state.total or 0))
        if counts != state.shown:
            state.shown = counts
            self.callback(*counts)


class PlainProgress(Progress):
    """Plain periodic lines for a stream that is not a terminal.

    Each visible task prints a line when it starts, then whenever ``interval``
    seconds have passed since its last line or it reached another tenth of its
    total (but not more often than every ``min_gap`` seconds), and a last line
    when its count reaches the total. A line says what, how far, the rate and
    the time::

        scanning units: 640/1800 (35%), 52.1/s, 12s elapsed, ~22s left

    Args:
        stream: where the lines go (default: ``sys.stderr`` at the time of writing).
        interval: seconds between lines of a task that is running (default
            ``INTERP_PROGRESS_INTERVAL`` or 5).
        min_gap: seconds at least between two "another tenth" lines of one task.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        interval: float | None = None,
        min_gap: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self.stream = stream
        self.interval = _default_interval() if interval is None else float(interval)
        self.min_gap = float(min_gap)

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def _started(self, state: _TaskState) -> None:
        if state.visible:
            state.last_line = self.clock()
            state.last_tenth = self._tenth(state)
            self._write(self.line(state))

    def _changed(self, state: _TaskState) -> None:
        if not state.visible or state.finished:
            return
        now = self.clock()
        if state.total is not None and state.completed >= state.total:
            state.finished = True
            self._write(self.line(state, now))
            return
        tenth = self._tenth(state)
        since = now - state.last_line
        if since >= self.interval or (tenth > state.last_tenth and since >= self.min_gap):
            state.last_line, state.last_tenth = now, tenth
            self._write(self.line(state, now))

    @staticmethod
    def _tenth(state: _TaskState) -> int:
        if not state.total:
            return -1
        return int(10 * state.completed / state.total)

    def line(self, state: _TaskState, now: float | None = None) -> str:
        """The line that describes ``state`` now."""
        now = self.clock() if now is None else now
        elapsed = max(now - state.started, 0.0)
        done = _number(state.completed)
        if state.total:
            parts = [f"{state.description}: {done}/{_number(state.total)} ({100 * state.completed / state.total:.0f}%)"]
        else:
            parts = [f"{state.description}: {done}" + ("" if state.total is None else "/0")]
        if state.completed > 0 and elapsed > 0:
            rate = state.completed / elapsed
            parts.append(f"{rate:.3g}/s")
        parts.append(f"{_duration(elapsed)} elapsed")
        if state.total and 0 < state.completed < state.total and elapsed > 0:
            parts.append(f"~{_duration((state.total - state.completed) * elapsed / state.completed)} left")
        return ", ".join(parts)


class RichProgress(Progress):
    """Shows the tasks as bars of a rich ``Progress`` (which the caller opens and closes)."""

    def __init__(self, bars: rich.progress.Progress) -> None:
        super().__init__()
        self.bars = bars

    def _started(self, state: _TaskState) -> None:
        if state.shown is None:
            state.shown = self.bars.add_task(state.description, total=state.total, completed=int(state.completed), visible=state.visible)
        else:
            self.bars.reset(state.shown, total=state.total, description=state.description)

    def _changed(self, state: _TaskState) -> None:
        self.bars.update(
            state.shown, completed=state.completed, total=state.total, description=state.description, visible=state.visible
        )

    def _removed(self, state: _TaskState) -> None:
        self.bars.remove_task(state.shown)


@dataclasses.dataclass
class Task:
    """One task of a :class:`Progress`, as a handle: what most library code needs."""

    progress: Progress
    id: TaskId

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.id, amount)

    def set(self, completed: float) -> None:
        """Set the count (``completed`` items of the total are done)."""
        self.progress.update(self.id, completed=completed)

    def close(self) -> None:
        self.progress.remove_task(self.id)


def as_progress(progress: ProgressLike | Any) -> Progress:
    """The :class:`Progress` behind what a caller passed as ``progress``.

    None is silent, a :class:`Progress` is itself, a rich ``Progress`` is
    wrapped, and any other callable is called as ``callable(done, total)``.
    """
    if progress is None:
        return SilentProgress()
    if isinstance(progress, Progress):
        return progress
    from rich.progress import Progress as RichBars

    if isinstance(progress, RichBars):
        return RichProgress(progress)
    if callable(progress):
        return CallbackProgress(progress)
    raise UsageError(
        f"progress must be None, a callable(done, total) or an interpret_core.util.progress.Progress, got {type(progress).__name__}",
        "pass progress=None",
    )


def start_task(progress: ProgressLike | Any, description: str, total: float | None = None) -> Task:
    """Start one task on ``progress`` (see :func:`as_progress`) and return its handle."""
    reporter = as_progress(progress)
    return Task(reporter, reporter.add_task(description, total=total))


def progress_enabled() -> bool:
    """Progress is shown unless INTERP_NO_PROGRESS is set (to anything but 0)."""
    return os.environ.get("INTERP_NO_PROGRESS", "") in ("", "0")


def _default_interval() -> float:
    raw = os.environ.get("INTERP_PROGRESS_INTERVAL", "")
    try:
        value = float(raw) if raw else 5.0
    except ValueError:
        value = 5.0
    return value if value > 0 else 5.0


@contextlib.contextmanager
def progress_bar(transient: bool = False) -> Iterator[Progress]:
    """The :class:`Progress` of one command, on stderr.

    Rich bars when stderr is a terminal (``transient``: erased when done),
    plain periodic lines when it is not, nothing with ``INTERP_NO_PROGRESS=1``.
    """
    if not progress_enabled():
        yield SilentProgress()
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not (console.is_terminal or console.is_jupyter):
        yield PlainProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichBars

    with RichBars(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    ) as bars:
        yield RichProgress(bars)


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with progress on stderr (see :func:`progress_bar`)."""
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with progress_bar() as progress:
        task = start_task(progress, description, total)
        for item in iterable:
            yield item
            task.advance()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
