"""The commands hook: plugins add commands and flags; what cannot be attached is a failed row."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer
from plugin_dists import make_dist
from typer.testing import CliRunner

import interpret_core
from interpret_core.cli import params
from interpret_core.cli.plugin_commands import attach_plugin_commands
from interpret_core.registry.commands import CommandFlag
from interpret_core.registry.loader import Registry

COMMANDS_PLUGIN = '''
from interpret_core import hookimpl
from interpret_core.cli import params
from interpret_core.registry.commands import CommandFlag


def hello_command(who: str = "world", as_json: params.Json = False):
    """Say hello (test plugin)."""
    import json, sys
    sys.stdout.write(json.dumps({"hello": who}) if as_json else f"hello {who}\\n")


@hookimpl
def interp_register_commands(register):
    register(hello_command)
    register(CommandFlag("--hello-size", key="size", kind="dataset", commands=("data inspect",), type=int,
                         help="Crop size, from the hello plugin."))
'''

BROKEN_PLUGIN = '''
from interpret_core import hookimpl


@hookimpl
def interp_register_commands(register):
    raise RuntimeError("commands broken on purpose")
'''


def _core_like_app():
    """A small stand-in for the interp app: `run` and `data inspect` (with --dataset-option)."""
    app = typer.Typer()
    data = typer.Typer()
    seen: dict = {}

    @app.command("run")
    def run_command(as_json: params.Json = False) -> None:
        seen["run"] = True

    @data.command("inspect")
    def inspect_command(dataset: params.DatasetName = None, dataset_option: params.DatasetOption = [],
                        as_json: params.Json = False) -> None:
        seen["inspect"] = (dataset, list(dataset_option))

    app.add_typer(data, name="data")
    return app, data, seen


def _rows(registry, plugin):
    return {row.name: row for row in registry.command_rows() if row.source.plugin == plugin}


def test_commands_and_flags_attach_and_bad_entries_become_failed_rows():
    def greet_command(as_json: params.Json = False) -> None:
        typer.echo("greetings")

    def unbuildable_command(value: int | str = 0) -> None:  # typer cannot make a parameter of a Union
        pass

    class Plugin:
        @interpret_core.hookimpl
        def interp_register_commands(self, register):
            register(greet_command, group="data")
            register(greet_command, name="run")  # a core name
            register(greet_command, name="other", group="no-such-group")
            register(unbuildable_command)
            register("not a command", name="text")
            register(CommandFlag("--colour", key="colour", kind="dataset", commands=("data inspect",),
                                 plugins=("tinted",), help="Tint."))
            register(CommandFlag("--nowhere", key="x", kind="dataset", commands=("no such",)))
            register(CommandFlag("-x", key="x", kind="dataset", commands=("data inspect",)))

    registry = Registry()
    assert registry.register_plugin(Plugin(), "extras")
    app, data, seen = _core_like_app()
    attach_plugin_commands(app, {"data": data}, rows=registry.command_rows())
    rows = _rows(registry, "extras")

    assert rows["data greet"].status == "ok"
    assert rows["run"].status == "failed" and "already exists" in rows["run"].error
    assert rows["no-such-group other"].status == "failed" and "no command group 'no-such-group'" in rows["no-such-group other"].error
    assert rows["unbuildable"].status == "failed" and "typer cannot build" in rows["unbuildable"].error
    assert rows["text"].status == "failed" and "neither a command function" in rows["text"].error
    assert rows["data inspect --colour"].status == "ok"
    assert rows["no such --nowhere"].status == "failed" and "no command `interp no such`" in rows["no such --nowhere"].error
    assert rows["data inspect -x"].status == "failed" and "long flag" in rows["data inspect -x"].error

    runner = CliRunner()
    result = runner.invoke(app, ["data", "greet"])
    assert result.exit_code == 0 and "greetings" in result.output
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0 and seen["run"]  # the core command kept its name
    # The plugin flag stands for --dataset-option colour=...; the core command never knows it.
    result = runner.invoke(app, ["data", "inspect", "--dataset", "tinted", "--colour", "red", "--dataset-option", "a=1"])
    assert result.exit_code == 0, result.output
    assert seen["inspect"] == ("tinted", ["a=1", "colour=red"])
    # Given with a data set it does not belong to, it is a usage error naming both.
    result = runner.invoke(app, ["data", "inspect", "--dataset", "plain", "--colour", "red"])
    assert isinstance(result.exception, interpret_core.UsageError)
    assert "--colour is an option of tinted" in result.exception.message


def test_a_hook_that_raises_is_a_failed_row_and_two_plugins_cannot_share_a_flag():
    class Broken:
        @interpret_core.hookimpl
        def interp_register_commands(self, register):
            raise ValueError("no commands today")

    def make(plugin_name):
        class Flagger:
            @interpret_core.hookimpl
            def interp_register_commands(self, register):
                register(CommandFlag("--same", key="same", kind="dataset", commands=("data inspect",)))

        return Flagger()

    registry = Registry()
    registry.register_plugin(Broken(), "broken")
    registry.register_plugin(make("a"), "flag-a")
    registry.register_plugin(make("b"), "flag-b")
    app, data, _ = _core_like_app()
    attach_plugin_commands(app, {"data": data}, rows=registry.command_rows())

    (broken,) = [r for r in registry.rows() if r.source.plugin == "broken"]
    assert broken.kind == "command" and broken.status == "failed" and "no commands today" in broken.error
    same = [r for r in registry.command_rows() if r.name == "data inspect --same"]
    assert len(same) == 2 and all(r.status == "failed" and "'flag-a'" in r.error and "'flag-b'" in r.error for r in same)


def _run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    code = "import sys\nfrom interpret_core.cli import main\nsys.exit(main(%r))\n" % (list(args),)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=120)


def test_throwaway_plugin_adds_a_command_and_a_flag_and_a_broken_one_is_listed(tmp_path, synthfacs_root):
    site = tmp_path / "site"
    make_dist(site, "interp-hello", "0.4", {"hello": "hello_plugin"}, {"hello_plugin": COMMANDS_PLUGIN})
    make_dist(site, "interp-broken-commands", "0.1", {"broken-commands": "broken_commands_plugin"},
              {"broken_commands_plugin": BROKEN_PLUGIN})
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    result = _run_cli("hello", "--who", "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": "plugins"}

    rows = json.loads(_run_cli("plugins", "--json", env=env).stdout)
    hello = {r["name"]: r for r in rows if r["plugin"] == "hello"}
    assert hello["hello"]["kind"] == "command" and hello["hello"]["status"] == "ok"
    assert hello["hello"]["distribution"] == "interp-hello" and hello["hello"]["version"] == "0.4"
    assert hello["data inspect --hello-size"]["status"] == "ok"
    (broken,) = [r for r in rows if r["plugin"] == "broken-commands"]
    assert broken["status"] == "failed" and "commands broken on purpose" in broken["error"]

    # The plugin's flag reaches the data set as --dataset-option size=32.
    result = _run_cli("data", "inspect", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
                      "--hello-size", "32", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["size"] == 32
    # Every other command still works next to the broken plugin.
    assert _run_cli("--help", env=env).returncode == 0


def test_the_commands_hook_is_documented():
    doc = open("docs/writing-plugins.md", encoding="utf-8").read()
    assert "interp_register_commands(register)" in doc and "CommandFlag" in doc
    assert callable(interpret_core.registry.hookspecs.interp_register_commands)
