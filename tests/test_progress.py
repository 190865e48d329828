"""Progress on stderr: rich bars on a terminal, plain periodic lines elsewhere, silence on request."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from interpret_core.api.errors import UsageError
from interpret_core.util.progress import (
    CallbackProgress,
    PlainProgress,
    Progress,
    RichProgress,
    SilentProgress,
    as_progress,
    progress_bar,
    start_task,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(interval: float = 5.0, min_gap: float = 1.0) -> tuple[PlainProgress, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    return PlainProgress(stream, interval=interval, min_gap=min_gap, clock=clock), stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_plain_lines_say_what_how_far_rate_and_time():
    progress, stream, clock = plain()
    task = progress.add_task("scanning units", total=200)
    assert lines(stream) == ["scanning units: 0/200 (0%), 0s elapsed"]
    clock.now += 10
    progress.advance(task, 50)  # a quarter, 10 s after the last line
    assert lines(stream)[-1] == "scanning units: 50/200 (25%), 5/s, 10s elapsed, ~30s left"
    clock.now += 30
    progress.update(task, completed=200)
    assert lines(stream)[-1] == "scanning units: 200/200 (100%), 5/s, 40s elapsed"
    progress.advance(task)  # past the end: nothing more
    assert len(lines(stream)) == 3


def test_plain_lines_are_periodic_not_one_per_step():
    progress, stream, clock = plain(interval=5.0, min_gap=1.0)
    task = progress.add_task("epochs", total=1000)
    for _ in range(999):  # 999 quick steps, 0.01 s each: ~10 s in all
        clock.now += 0.01
        progress.advance(task)
    # Start, then one line a tenth (each tenth takes 1 s, the minimum gap), not 999.
    assert 5 <= len(lines(stream)) <= 12
    for _ in range(100):  # slow steps, no new tenth: the interval bounds the gaps
        clock.now += 1.0
        progress.update(task, completed=999)
    assert len(lines(stream)) <= 12 + 100 // 5 + 1
    before = len(lines(stream))
    progress.advance(task)
    assert len(lines(stream)) == before + 1 and "1000/1000 (100%)" in lines(stream)[-1]


def test_plain_hidden_tasks_reset_and_unknown_totals():
    progress, stream, clock = plain()
    hidden = progress.add_task("hidden", total=3, visible=False)
    progress.advance(hidden, 3)
    assert lines(stream) == []
    task = progress.add_task("fold 0 epochs", total=2)
    progress.advance(task, 2)
    progress.reset(task, total=4, description="fold 1 epochs")
    assert lines(stream)[-1].startswith("fold 1 epochs: 0/4 (0%)")
    open_ended = progress.add_task("frames")
    clock.now += 6
    progress.advance(open_ended, 12)
    assert lines(stream)[-1] == "frames: 12, 2/s, 6s elapsed"
    progress.remove_task(open_ended)
    progress.advance(open_ended)  # a removed task is ignored
    assert lines(stream)[-1] == "frames: 12, 2/s, 6s elapsed"


def test_callback_progress_reports_each_change_not_the_start():
    seen = []
    task = start_task(lambda done, total: seen.append((done, total)), "x", 5)
    assert seen == []
    task.advance(2)
    task.set(5)
    assert seen == [(2, 5), (5, 5)]


def test_as_progress_accepts_none_progress_rich_and_callables_only():
    import rich.progress

    assert isinstance(as_progress(None), SilentProgress)
    own = PlainProgress(io.StringIO())
    assert as_progress(own) is own and isinstance(own, Progress)
    assert isinstance(as_progress(print), CallbackProgress)
    with rich.progress.Progress(disable=True) as bars:
        wrapped = as_progress(bars)
        assert isinstance(wrapped, RichProgress)
        task = start_task(bars, "rich", 4)
        task.advance(3)
        assert bars.tasks[0].completed == 3 and bars.tasks[0].total == 4
        task.close()
        assert not bars.tasks
    with pytest.raises(UsageError, match="progress must be"):
        as_progress(42)


def test_progress_bar_picks_silence_plain_lines_or_rich(monkeypatch, capsys):
    monkeypatch.setenv("INTERP_NO_PROGRESS", "1")
    with progress_bar() as progress:
        progress.advance(progress.add_task("quiet", total=1))
        assert isinstance(progress, SilentProgress)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("INTERP_NO_PROGRESS")
    with progress_bar() as progress:  # pytest's captured stderr is not a terminal
        assert isinstance(progress, PlainProgress)
        progress.advance(progress.add_task("loud", total=1))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split(",")[0] for line in captured.err.splitlines()] == ["loud: 0/1 (0%)", "loud: 1/1 (100%)"]
    import rich.console

    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    with progress_bar(transient=True) as progress:
        assert isinstance(progress, RichProgress)


PROGRESS_LINE = re.compile(r"^(?P<what>[^:\n]+): (?P<done>\d+)/(?P<total>\d+) \((?P<pct>\d+)%\)(, [\d.e+]+/s)?, \S+ elapsed")


def test_a_long_command_with_stderr_in_a_file_logs_progress_lines(synthfacs_root, tmp_path):
    """Acceptance (issue 10): stderr redirected to a file shows what runs, how far and how fast."""
    env = {k: v for k, v in os.environ.items() if k != "INTERP_NO_PROGRESS"}  # conftest silences tests
    env["INTERP_PROGRESS_INTERVAL"] = "1"
    log = tmp_path / "stderr.log"
    out = tmp_path / "run"
    command = [sys.executable, "-m", "interpret_core", "run", "--method", "deconv", "--dataset", "synthfacs",
               "--data-root", str(synthfacs_root), "--limit", "60", "--top-k", "4", "--out", str(out), "--json"]
    with log.open("w") as stderr:
        finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, timeout=600)
    text = log.read_text()
    assert finished.returncode == 0, text
    assert (out / "results.json").is_file() and finished.stdout.lstrip().startswith("{")
    assert "\x1b[" not in text  # no terminal control codes in a log file
    found = [m.groupdict() for m in map(PROGRESS_LINE.match, text.splitlines()) if m]
    tasks = {m["what"] for m in found}
    assert "scanning units" in tasks and any(what.startswith("projecting ") for what in tasks), text
    scan = [m for m in found if m["what"] == "scanning units"]
    assert scan[0]["done"] == "0" and scan[-1]["done"] == scan[-1]["total"] and scan[-1]["pct"] == "100"
