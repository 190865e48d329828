"""CLI conventions: exit codes, one-line errors with hints, version, stdout/stderr split."""

from __future__ import annotations

import json

import pytest
import typer

import interpret_core
from interpret_core.cli import app, main
from interpret_core.api.errors import DataError, UsageError


@pytest.fixture
def failing_commands():
    """Temporarily add commands that raise, to observe the error handling."""

    @app.command("raise-known")
    def raise_known() -> None:
        raise DataError("/data/x: no cohn-kanade-images folder", "point --data-root at the CK+ root")

    @app.command("raise-usage")
    def raise_usage() -> None:
        raise UsageError("--folds must be at least 2", "use --folds 10")

    @app.command("raise-bug")
    def raise_bug() -> None:
        secret = "a local value that must not be printed"  # noqa: F841
        raise ZeroDivisionError("division by zero")

    yield
    app.registered_commands[:] = [c for c in app.registered_commands if not (c.name or "").startswith("raise-")]


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"interp {interpret_core.__version__}"


def test_unknown_command_is_a_usage_error():
    assert main(["no-such-command"]) == 2


def test_known_error_prints_one_line_and_a_hint(failing_commands, capsys):
    assert main(["raise-known"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines == ["error: /data/x: no cohn-kanade-images folder", "hint: point --data-root at the CK+ root"]


def test_usage_error_exits_2(failing_commands, capsys):
    assert main(["raise-usage"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_unexpected_error_is_one_line_unless_debug(failing_commands, capsys, monkeypatch):
    assert main(["raise-bug"]) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError: division by zero" in err
    assert "Traceback" not in err and "INTERP_DEBUG=1" in err

    monkeypatch.setenv("INTERP_DEBUG", "1")
    assert main(["raise-bug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "a local value that must not be printed" not in err  # never dump locals


def test_plugins_json_goes_to_stdout_only(capsys):
    assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    assert isinstance(json.loads(captured.out), list)
    assert captured.err == ""


def test_every_command_offers_json():
    command = typer.main.get_command(app)
    missing = []

    def walk(group, prefix):
        for name, sub in getattr(group, "commands", {}).items():
            if hasattr(sub, "commands"):
                walk(sub, prefix + [name])
            elif not any("--json" in getattr(p, "opts", []) for p in sub.params):
                missing.append(" ".join(prefix + [name]))

    walk(command, [])
    assert not missing, f"commands without --json: {missing}"


def test_tables_written_to_a_pipe_keep_one_line_per_row(capsys, monkeypatch):
    # Rich falls back to 80 columns off a terminal and folds every cell; piped tables
    # must keep their natural width (each plugin on one line), unless COLUMNS says otherwise.
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["plugins"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    names = [cell.strip() for line in rows for cell in line.split("│")[2:3]]
    assert "synthfacs" in names and "interp-datasets" in " ".join(rows)
    assert all(name for name in names), "a table row was folded onto a second line"
    assert max(len(line) for line in rows) > 80

    monkeypatch.setenv("COLUMNS", "60")
    assert main(["plugins"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 60
