"""One meaning per flag: a walk over every command's parameters, plugin commands included.

The rules (issue 10):
- a long flag used by two or more commands is declared once, by one shared
  alias of ``interpret_core.cli.params`` (or one plugin CommandFlag), never twice;
- a long flag that ``params`` declares is declared nowhere else, even in one command;
- a short flag stands for one long flag everywhere;
- the only hidden parameters are the old spellings listed in ``params.LEGACY_FLAGS``.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
import typer

from interpret_core.cli import app, load_plugin_commands, main, params


def _leaf_commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    found = []
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        if hasattr(sub, "commands"):
            found += _leaf_commands(sub, prefix + (name,))
        else:
            found.append((" ".join(prefix + (name,)), sub))
    return found


def _declarations(callback: Any) -> dict[str, Any]:
    """Python parameter name -> the typer OptionInfo object that declares it."""
    declared = {}
    for parameter in inspect.signature(callback, eval_str=True).parameters.values():
        for info in list(getattr(parameter.annotation, "__metadata__", ())) + [parameter.default]:
            if isinstance(info, typer.models.OptionInfo):
                declared[parameter.name] = info
    return declared


def _shared_aliases() -> dict[int, str]:
    """id(OptionInfo) -> alias name, for every alias the params module declares."""
    shared = {}
    for name, value in vars(params).items():
        for info in getattr(value, "__metadata__", ()):
            if isinstance(info, typer.models.OptionInfo):
                shared[id(info)] = name
    return shared


def _long(option: Any) -> list[str]:
    return [o for o in option.opts + option.secondary_opts if o.startswith("--")]


def _walk() -> list[dict[str, Any]]:
    """One row per (command, option): its flags, help, hidden-ness and the OptionInfo behind it."""
    root = typer.main.get_command(load_plugin_commands())
    rows = []
    for path, command in _leaf_commands(root):
        declared = _declarations(command.callback)
        for option in command.params:
            if not hasattr(option, "opts") or option.name in ("help",):
                continue
            rows.append({
                "command": path,
                "long": _long(option),
                "short": [o for o in option.opts + option.secondary_opts if not o.startswith("--")],
                "hidden": bool(getattr(option, "hidden", False)),
                "help": option.help,
                "info": declared.get(option.name),
            })
    return rows


@pytest.fixture(scope="module")
def walked():
    return _walk()


def test_the_walk_sees_core_and_plugin_commands(walked):
    commands = {row["command"] for row in walked}
    assert {"run", "bench", "visualize", "train", "models", "plugins", "data inspect", "data preview"} <= commands
    assert "data generate" in commands  # brought by the interp-datasets plugin through the commands hook
    inspect_flags = {flag for row in walked if row["command"] == "data inspect" for flag in row["long"]}
    assert {"--protocol", "--size", "--strict"} <= inspect_flags  # the CK+ reader's flags, through the hook


def test_a_long_flag_used_by_several_commands_is_declared_once(walked):
    visible = [row for row in walked if not row["hidden"]]
    by_flag: dict[str, list[dict]] = {}
    for row in visible:
        for flag in row["long"]:
            by_flag.setdefault(flag, []).append(row)
    problems = []
    for flag, rows in sorted(by_flag.items()):
        if len(rows) < 2:
            continue
        infos = {id(row["info"]) for row in rows}
        if len(infos) != 1 or rows[0]["info"] is None:
            helps = sorted({f"{row['command']}: {row['help']}" for row in rows})
            problems.append(f"{flag} is declared {len(infos)} times: {helps}")
    assert not problems, "\n".join(problems)


def test_flags_of_the_params_module_are_declared_nowhere_else(walked):
    shared = _shared_aliases()
    shared_flags: dict[str, set[int]] = {}
    for name, value in vars(params).items():
        for info in getattr(value, "__metadata__", ()):
            if isinstance(info, typer.models.OptionInfo) and not info.hidden:
                decls = ([info.default] if isinstance(info.default, str) else []) + list(info.param_decls or ())
                for decl in decls:
                    if str(decl).startswith("--"):
                        shared_flags.setdefault(decl, set()).add(id(info))
    stray = [
        f"{row['command']} {flag}"
        for row in walked
        if not row["hidden"]
        for flag in row["long"]
        if flag in shared_flags and id(row["info"]) not in shared
    ]
    assert not stray, f"declared outside interpret_core.cli.params: {stray}"


def test_a_short_flag_stands_for_one_long_flag(walked):
    meaning: dict[str, set[str]] = {}
    for row in walked:
        for short in row["short"]:
            meaning.setdefault(short, set()).update(row["long"])
    clashes = {short: sorted(longs) for short, longs in meaning.items() if len(longs) > 1}
    assert not clashes, clashes
    assert meaning["-o"] == {"--out"}


def test_the_only_hidden_flags_are_the_listed_old_spellings(walked):
    hidden = {(row["command"], flag) for row in walked if row["hidden"] for flag in row["long"]}
    listed = {(command, old) for command, old, _ in params.LEGACY_FLAGS}
    assert hidden == listed
    for row in walked:
        if row["hidden"]:
            assert row["help"].startswith("Deprecated: use --")


def test_every_command_offers_json_plugin_commands_included(walked):
    commands = {row["command"] for row in walked}
    with_json = {row["command"] for row in walked if "--json" in row["long"]}
    assert commands == with_json, f"without --json: {sorted(commands - with_json)}"


def test_commands_that_build_a_model_take_model_option(walked):
    by_command: dict[str, set[str]] = {}
    for row in walked:
        by_command.setdefault(row["command"], set()).update(row["long"])
    for command, flags in by_command.items():
        if "--model" in flags or "--weights" in flags:
            assert "--model-option" in flags, command
    assert {"run", "bench", "visualize", "train"} <= {c for c, f in by_command.items() if "--model-option" in f}
    assert {"run", "bench", "visualize", "train", "explain"} <= {c for c, f in by_command.items() if "--device" in f}


def test_bare_interp_prints_help_and_exits_0(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Usage: interp" in out and "run" in out and "bench" in out
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "Usage: interp data" in out and "inspect" in out and "generate" in out


def test_old_option_spelling_still_works_and_warns(synthfacs_root, capsys):
    code = main(["data", "inspect", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
                 "--option", "include_neutral=false", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "--option is deprecated" in captured.err and "--dataset-option" in captured.err
    assert "neutral" not in json.loads(captured.out)["class_names"]


def test_dash_o_with_a_key_value_is_refused_not_taken_as_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "-o", "distance=smd"])
    err = capsys.readouterr().err
    assert code == 2 and "-o now means --out" in err and "--metric-option" in err
    assert not (tmp_path / "distance=smd").exists()


class _Stop(Exception):
    """Raised by a stand-in to stop a command once it has built its configuration."""


def test_old_option_spelling_reaches_the_metric_in_run_and_the_method_in_visualize(monkeypatch, capsys, tmp_path):
    import interpret_core.registry.loader as loader
    import interpret_core.workflows.run as run_module

    seen = {}

    def fake_run(config, progress=None, warn=None):
        seen["run"] = (config.method, config.metric_options)
        raise _Stop

    def fake_get_attribution(name, **options):
        seen["visualize"] = (name, options)
        raise _Stop

    monkeypatch.setattr(run_module, "run", fake_run)
    monkeypatch.setattr(loader, "get_attribution", fake_get_attribution)
    monkeypatch.setenv("INTERP_DEBUG", "0")

    main(["run", "--option", "distance=smd", "--metric-option", "min_images=3", "--method-option", "max_batch=8"])
    assert seen["run"] == ("deconv:max_batch=8", {"min_images": 3, "distance": "smd"})
    assert "--option is deprecated" in capsys.readouterr().err

    main(["visualize", "--method", "guided-backprop:crop=false", "--option", "max_batch=16", "--out", str(tmp_path / "v")])
    assert seen["visualize"] == ("guided-backprop", {"crop": False, "max_batch": 16})
    assert "use --method-option" in capsys.readouterr().err
