"""What a plugin can add to the command line through ``interp_register_commands(register)``.

Two things, both passed to ``register``:

- a **command**: a typer command function (its parameters declared with the
  shared aliases of :mod:`interpret_core.cli.params`) or a ``typer.Typer``
  group, under a ``name`` and optionally inside a core ``group`` (``"data"``)::

      register(generate_command, name="generate", group="data")   # interp data generate

- a **flag** on a core command (:class:`CommandFlag`): a shortcut for one of
  the plugin's own options. ``--protocol peak`` on ``interp data inspect`` is
  the same as ``--dataset-option protocol=peak``, so the core command stays
  generic and only the plugin knows the option::

      register(CommandFlag("--protocol", key="protocol", kind="dataset", commands=("data inspect",),
                           plugins=("ckplus",), help="Which frames become samples."))

No typer here: the registry only records who registered what; the CLI
(:mod:`interpret_core.cli.plugin_commands`) attaches them and turns anything
it cannot attach into a failed row of ``interp plugins``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

#: Plugin option kinds a flag can feed: ``--<kind>-option`` of the command.
FLAG_KINDS = ("dataset", "model", "method", "metric")
_FLAG_PATTERN = re.compile(r"^--[a-z0-9]+(?:-[a-z0-9]+)*$")
_COMMAND_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class CommandFlag:
    """A flag a plugin adds to core commands, standing for ``--<kind>-option KEY=VALUE``.

    Attributes:
        flag: the long flag, e.g. ``"--protocol"`` (no short flags: those are the core's).
        key: the plugin option it sets, e.g. ``"protocol"``.
        kind: whose option it is: ``"dataset"``, ``"model"``, ``"method"`` or ``"metric"``.
        commands: the command paths that get it, e.g. ``("data inspect", "run")``.
        plugins: the plugin names (of that kind) that take the option; given
            with another ``--dataset`` (etc.) it is a usage error. Empty: any.
        help: one line for ``--help``.
        type: ``str``, ``int``, ``float`` or ``bool`` (a switch: present means true).
    """

    flag: str
    key: str
    kind: str
    commands: tuple[str, ...]
    plugins: tuple[str, ...] = ()
    help: str = ""
    type: type = str

    def problem(self) -> str | None:
        """Why this flag cannot be attached anywhere, or None."""
        if not _FLAG_PATTERN.match(self.flag):
            return f"flag {self.flag!r} must be a long flag of lowercase words joined by dashes, e.g. --protocol"
        if not self.key.isidentifier():
            return f"flag {self.flag}: key {self.key!r} is not an option name"
        if self.kind not in FLAG_KINDS:
            return f"flag {self.flag}: kind {self.kind!r} is not one of {', '.join(FLAG_KINDS)}"
        if self.type not in (str, int, float, bool):
            return f"flag {self.flag}: type must be str, int, float or bool, got {self.type!r}"
        if not self.commands:
            return f"flag {self.flag}: names no command"
        return None


@dataclasses.dataclass
class CommandEntry:
    """One command or flag a plugin registered (``target`` is what it passed)."""

    target: Any
    name: str | None = None  # command name (commands only)
    group: str | None = None  # core group it goes in, e.g. "data"; None: top level

    @property
    def path(self) -> str:
        """``"data generate"`` for a command, ``"data inspect --protocol"`` for a flag."""
        if isinstance(self.target, CommandFlag):
            return f"{', '.join(self.target.commands)} {self.target.flag}".strip()
        return " ".join(part for part in (self.group, self.name) if part)

    def problem(self) -> str | None:
        """Why this entry cannot be used, or None (typer-level checks come later, in the CLI)."""
        if isinstance(self.target, CommandFlag):
            return self.target.problem()
        if not callable(self.target) and not hasattr(self.target, "registered_commands"):
            return f"registered {self.target!r}, which is neither a command function, a typer.Typer nor a CommandFlag"
        if not isinstance(self.name, str) or not _COMMAND_PATTERN.match(self.name):
            return f"command name must be lowercase words joined by dashes, got {self.name!r}"
        if self.group is not None and not (isinstance(self.group, str) and _COMMAND_PATTERN.match(self.group)):
            return f"command group must be a command name such as 'data', got {self.group!r}"
        return None


def command_name(target: Any, name: str | None) -> str | None:
    """The name a command is registered under: ``name``, else the function's name
    without ``_command``, underscores as dashes (``generate_command`` -> ``generate``)."""
    if name is not None:
        return name
    function_name = getattr(target, "__name__", None)
    if not isinstance(function_name, str):
        return None
    return function_name.removesuffix("_command").replace("_", "-")
