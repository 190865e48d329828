"""The plugins a command uses when none is named: one place, seeded by plugins, changed by the user.

Four settings, each naming a registered plugin:

========  ==========================  =====================================
key       plugin kind                 used by
========  ==========================  =====================================
model     model                       run, bench, visualize, train
dataset   dataset                     run, bench, visualize, train
method    attribution (a method spec) run, visualize
metric    unit-metric                 run
explain-model  model                  explain
photo-dataset  dataset                explain
========  ==========================  =====================================

A value comes from, in order: the user's config file
(``$INTERP_HOME/config.json``, else ``$XDG_CONFIG_HOME/interp/config.json``,
else ``~/.config/interp/config.json``; written by ``interp config set``), else
the seed a plugin declares through the ``interp_register_defaults`` hook
(``register("model", "my-net")``), as ``llm models default`` keeps its
default model in the user's folder. The core itself names no plugin.

No torch here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from interpret_core.api.errors import CacheHomeError, DataError, PluginError, UnknownNameError, UsageError
from interpret_core.util.io import read_json, write_json
from interpret_core.util.paths import config_home

__all__ = ["KEYS", "Setting", "config_path", "default", "settings", "setting", "set_default", "unset_default"]

CONFIG_FILE = "config.json"
#: key -> the plugin kind its value names.
KEYS: dict[str, str] = {
    "model": "model", "dataset": "dataset", "method": "attribution", "metric": "unit-metric",
    # interp explain: the model for photos (trained on real faces) and the data set that reads photos.
    "explain-model": "model", "photo-dataset": "dataset",
}
#: The hook plugins seed defaults through (see hookspecs.interp_register_defaults).
DEFAULTS_HOOK = "interp_register_defaults"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One default: its key, value (None: nothing set), where it came from and the plugin kind it names."""

    key: str
    value: str | None
    source: str  # "user config <path>", "plugin <entry-point name>", or "unset"
    kind: str

    def as_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_path() -> Path:
    """The user's config file (it may not exist yet)."""
    return config_home() / CONFIG_FILE


def _check_key(key: str) -> str:
    if key not in KEYS:
        import difflib

        close = difflib.get_close_matches(key, list(KEYS), n=1)
        raise UsageError(
            f"unknown setting {key!r}; settings: {', '.join(KEYS)}",
            f"did you mean {close[0]!r}?" if close else "see `interp config list`",
        )
    return key


def _read_user() -> dict[str, str]:
    try:
        path = config_path()
    except CacheHomeError:  # no INTERP_HOME, no XDG_CONFIG_HOME, no home: there can be no user config
        return {}
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DataError(f"{path}: expected a JSON object of setting -> plugin name", "fix it, or delete it to use the plugins' defaults")
    return data


def _seeds() -> dict[str, tuple[str, str]]:
    """{key: (value, entry-point name)} declared by plugins; on a clash the plugin whose name sorts first wins."""
    from interpret_core.registry.loader import get_registry

    manager = get_registry().manager
    seeds: dict[str, tuple[str, str]] = {}
    for impl in sorted(getattr(manager.hook, DEFAULTS_HOOK).get_hookimpls(), key=lambda i: i.plugin_name):
        declared: list[tuple[str, str]] = []

        def register(key: str, value: str, _out: list[tuple[str, str]] = declared) -> None:
            _out.append((str(key), str(value)))

        try:
            impl.function(register=register)
        except Exception as exc:  # a broken plugin must not break every command
            raise PluginError(
                f"plugin {impl.plugin_name!r}: {DEFAULTS_HOOK} raised {type(exc).__name__}: {exc}",
                "disable it with INTERP_DISABLE_PLUGINS, or report it to its author",
            ) from exc
        for key, value in declared:
            if key in KEYS:
                seeds.setdefault(key, (value, impl.plugin_name))
    return seeds


def settings() -> list[Setting]:
    """Every setting with its effective value and source, in :data:`KEYS` order."""
    user = _read_user()
    seeds = _seeds()
    rows = []
    for key, kind in KEYS.items():
        if key in user:
            rows.append(Setting(key, user[key], f"user config {config_path()}", kind))
        elif key in seeds:
            rows.append(Setting(key, seeds[key][0], f"plugin {seeds[key][1]}", kind))
        else:
            rows.append(Setting(key, None, "unset", kind))
    return rows


def setting(key: str) -> Setting:
    """The setting ``key`` (UsageError for an unknown key)."""
    _check_key(key)
    return next(row for row in settings() if row.key == key)


def default(key: str) -> str:
    """The plugin name (or method spec) a command uses for ``key`` when none is given."""
    row = setting(key)
    if row.value is None:
        raise UsageError(
            f"no default {key}: no installed plugin declares one and the user config sets none",
            f"name one with --{key}, or set it: interp config set {key} NAME",
        )
    return row.value


def _validate(key: str, value: str) -> None:
    from interpret_core.registry.loader import get_registry

    name = value
    if key == "method":
        from interpret_core.registry.options import parse_method_spec

        name = parse_method_spec(value)[0]
    try:
        get_registry().get_class(KEYS[key], name)
    except UnknownNameError as exc:
        raise UsageError(f"cannot set {key} to {value!r}: {exc.message}", exc.hint) from None


def set_default(key: str, value: str) -> Setting:
    """Write ``key = value`` to the user config (atomically); the value must name an installed plugin."""
    _check_key(key)
    value = value.strip()
    _validate(key, value)
    user = _read_user()
    user[key] = value
    os.makedirs(config_path().parent, exist_ok=True)
    write_json(config_path(), user)
    return setting(key)


def unset_default(key: str) -> Setting:
    """Remove ``key`` from the user config (the plugin's seed applies again)."""
    _check_key(key)
    user = _read_user()
    if key in user:
        del user[key]
        write_json(config_path(), user)
    return setting(key)
