"""Every hook a plugin can implement, in one place.

Each hook receives a ``register`` callback and calls it once per class it
provides (the shape of simonw/llm's ``register_models(register)``)::

    from interpret_core import hookimpl

    @hookimpl
    def interp_register_attributions(register):
        register(MyMethod)

``register(cls)`` takes a subclass of the matching interface with a ``name``
class attribute (lowercase, words joined by dashes). Hook modules must stay
light: import torch inside functions, never at module level.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "interp"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def interp_register_datasets(register):
    """Register :class:`interpret_core.Dataset` subclasses."""


@hookspec
def interp_register_models(register):
    """Register :class:`interpret_core.Model` subclasses."""


@hookspec
def interp_register_attributions(register):
    """Register :class:`interpret_core.Attribution` subclasses."""


@hookspec
def interp_register_unit_metrics(register):
    """Register :class:`interpret_core.UnitMetric` subclasses."""


@hookspec
def interp_register_attribution_metrics(register):
    """Register :class:`interpret_core.AttributionMetric` subclasses."""


@hookspec
def interp_register_commands(register):
    """Add commands, or flags on core commands, to the ``interp`` command line.

    ``register(function, name=None, group=None)`` adds a typer command
    function (or a ``typer.Typer`` group) as ``interp NAME`` or, with
    ``group="data"``, as ``interp data NAME``; the name defaults to the
    function's without ``_command``. ``register(CommandFlag(...))`` adds a flag
    that stands for one of the plugin's own options on core commands (see
    :mod:`interpret_core.registry.commands`). Declare parameters with the
    shared aliases of :mod:`interpret_core.cli.params` so that every flag
    keeps one meaning; import typer-heavy or torch modules inside the hook.
    """


@hookspec
def interp_register_defaults(register):
    """Seed the defaults commands use when no name is given: ``register(key, name)``.

    ``key`` is ``"model"``, ``"dataset"``, ``"method"`` (a method spec) or
    ``"metric"`` (a unit metric); the user's ``interp config set`` overrides
    a seed (see :mod:`interpret_core.registry.defaults`).
    """
