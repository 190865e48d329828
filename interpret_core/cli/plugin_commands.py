"""Attach what plugins register through ``interp_register_commands`` to the ``interp`` app.

Core commands are added with :func:`add_command`, which also gives them the
flags plugins registered for them (:class:`~interpret_core.registry.commands.CommandFlag`).
Plugin commands are added by :func:`attach_plugin_commands` after the core's,
so a core command always wins a name. Whatever cannot be attached (a name
already taken, an unknown group, a function typer cannot turn into a command,
a flag for a command that does not exist) becomes a failed row of ``interp
plugins`` instead of breaking the command line.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, Optional

import typer

from interpret_core.api.errors import UsageError
from interpret_core.registry.commands import CommandFlag

Flags = dict[str, list[tuple[CommandFlag, Any]]]


def _registry_rows() -> list[Any]:
    from interpret_core.registry.loader import get_registry

    return get_registry().command_rows()


def collect_flags(rows: list[Any]) -> Flags:
    """The flags plugins registered, by command path (``"data inspect"``): ``[(flag, its row)]``."""
    flags: Flags = {}
    seen: dict[tuple[str, str], Any] = {}
    for row in rows:
        if row.status != "ok" or row.entry is None or not isinstance(row.entry.target, CommandFlag):
            continue
        flag: CommandFlag = row.entry.target
        for path in flag.commands:
            other = seen.get((path, flag.flag))
            if other is not None:
                message = f"flag {flag.flag} on `interp {path}` is registered by both plugin {other.source.plugin!r} and {row.source.plugin!r}"
                row.fail(message)
                other.fail(message)
                continue
            seen[(path, flag.flag)] = row
            flags.setdefault(path, []).append((flag, row))
    return {path: [(f, r) for f, r in entries if r.status == "ok"] for path, entries in flags.items()}


def long_flags(function: Callable[..., Any]) -> set[str]:
    """The long flags of a typer command function's parameters (``--out``, ``--json`` ...)."""
    names: set[str] = set()
    for parameter in inspect.signature(function, eval_str=True).parameters.values():
        infos = list(getattr(parameter.annotation, "__metadata__", ())) + [parameter.default]
        for info in infos:
            if isinstance(info, typer.models.OptionInfo):
                declared = [info.default] if isinstance(info.default, str) else []
                declared += list(info.param_decls or ())
                for decl in declared:
                    names.update(part for part in str(decl).split("/") if part.startswith("--"))
    return names


#: One typer declaration per registered flag, shared by every command it is on (one flag, one meaning).
_FLAG_ANNOTATIONS: dict[tuple[CommandFlag, str], Any] = {}


def _flag_parameter(name: str, flag: CommandFlag, plugin: str) -> inspect.Parameter:
    default: Any = False if flag.type is bool else None
    annotation = _FLAG_ANNOTATIONS.get((flag, plugin))
    if annotation is None:
        annotation = _FLAG_ANNOTATIONS[(flag, plugin)] = _flag_annotation(flag, plugin)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _flag_annotation(flag: CommandFlag, plugin: str) -> Any:
    whose = f"{flag.kind} {', '.join(flag.plugins)} only; " if flag.plugins else ""
    help_text = f"{flag.help.rstrip('.')} ({whose}same as --{flag.kind}-option {flag.key}=...; from plugin {plugin})."
    if flag.type is bool:
        return Annotated[bool, typer.Option(flag.flag, help=help_text)]
    return Annotated[Optional[flag.type], typer.Option(flag.flag, help=help_text)]  # type: ignore[name-defined]


def with_plugin_flags(path: str, function: Callable[..., Any], flags: Flags) -> Callable[..., Any]:
    """``function`` with the ``flags`` plugins registered for ``path`` added to its parameters.

    A given flag is appended as ``KEY=VALUE`` to the command's
    ``<kind>_option`` list, so the command itself never knows the flag.
    """
    entries = flags.get(path) or []
    if not entries:
        return function
    signature = inspect.signature(function, eval_str=True)
    parameters = list(signature.parameters.values())
    taken = long_flags(function)
    added: dict[str, CommandFlag] = {}
    for flag, row in entries:
        target = f"{flag.kind}_option"
        if target not in signature.parameters:
            row.fail(f"flag {flag.flag}: `interp {path}` takes no --{flag.kind}-option")
            continue
        if flag.flag in taken:
            row.fail(f"flag {flag.flag}: `interp {path}` already has {flag.flag}")
            continue
        name = "plugin_flag_" + flag.flag[2:].replace("-", "_")
        parameters.append(_flag_parameter(name, flag, row.source.plugin))
        added[name] = flag
        taken.add(flag.flag)
    if not added:
        return function

    @functools.wraps(function)
    def wrapper(**kwargs: Any) -> Any:
        for name, flag in added.items():
            value = kwargs.pop(name)
            if value is None or value is False:
                continue
            chosen = kwargs.get(flag.kind)
            if flag.plugins and chosen is not None and chosen not in flag.plugins:
                raise UsageError(
                    f"{flag.flag} is an option of {', '.join(flag.plugins)}, not of {flag.kind} {chosen!r}",
                    f"drop {flag.flag}, or pass --{flag.kind}-option {flag.key}=... if {chosen} takes it",
                )
            text = "true" if value is True else str(value)
            kwargs[f"{flag.kind}_option"] = list(kwargs.get(f"{flag.kind}_option") or []) + [f"{flag.key}={text}"]
        return function(**kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def add_command(app: typer.Typer, path: str, function: Callable[..., Any], **settings: Any) -> None:
    """Add ``function`` to ``app`` as the command ``path`` (its last word; plugin flags come later)."""
    app.command(path.rsplit(" ", 1)[-1], **settings)(function)


def _command_infos(app: typer.Typer, prefix: str = "") -> list[tuple[str, Any]]:
    """``(path, CommandInfo)`` of every command in ``app`` and its groups."""
    found = []
    for info in app.registered_commands:
        if info.callback is not None:
            name = info.name or info.callback.__name__.replace("_", "-")
            found.append(((prefix + " " + name).strip(), info))
    for group in app.registered_groups:
        if group.typer_instance is not None:
            found += _command_infos(group.typer_instance, (prefix + " " + (group.name or "")).strip())
    return found


def _names(app: typer.Typer) -> set[str]:
    names = {info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands if info.callback}
    names |= {info.name or "" for info in app.registered_groups}
    return names


def _check_buildable(target: Any, name: str) -> str | None:
    """Why typer cannot turn ``target`` into a command, or None."""
    trial = typer.Typer()
    try:
        if isinstance(target, typer.Typer):
            trial.add_typer(target, name=name)
        else:
            trial.command(name)(target)
        typer.main.get_command(trial)
    except Exception as exc:
        return f"typer cannot build command {name!r}: {type(exc).__name__}: {exc}"
    return None


def attach_plugin_commands(app: typer.Typer, groups: dict[str, typer.Typer], rows: list[Any] | None = None) -> None:
    """Give core commands their plugin flags, then add the commands plugins registered
    to ``app`` (top level) or to one of ``groups`` (``"data"``)."""
    rows = _registry_rows() if rows is None else rows
    flags = collect_flags(rows)
    paths = set()
    for path, info in _command_infos(app):
        paths.add(path)
        info.callback = with_plugin_flags(path, info.callback, flags)
    for row in rows:
        entry = row.entry
        if row.status != "ok" or entry is None or isinstance(entry.target, CommandFlag):
            continue
        parent = app if entry.group is None else groups.get(entry.group)
        if parent is None:
            row.fail(f"command {entry.path!r}: there is no command group {entry.group!r}; groups: {', '.join(sorted(groups))}")
            continue
        if entry.name in _names(parent):
            row.fail(f"command `interp {entry.path}` already exists; plugin {row.source.plugin!r} cannot replace it")
            continue
        target = entry.target
        if not isinstance(target, typer.Typer):
            target = with_plugin_flags(entry.path, target, flags)
        problem = _check_buildable(target, entry.name)
        if problem is not None:
            row.fail(problem)
            continue
        if isinstance(target, typer.Typer):
            parent.add_typer(target, name=entry.name)
        else:
            parent.command(entry.name)(target)
        paths.add(entry.path)
    for path, entries in flags.items():
        if path not in paths:
            for flag, row in entries:
                row.fail(f"flag {flag.flag}: there is no command `interp {path}`")
