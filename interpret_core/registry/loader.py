"""Plugin discovery and lookup.

Plugins, built-in and third-party alike, are modules named by entry points in
the group ``interp``. Each entry point is imported on its own, so one broken
plugin is recorded (entry point, distribution, error) and shown by
``interp plugins`` while the rest keep working. ``INTERP_DISABLE_PLUGINS``
(comma-separated entry-point names) blocks plugins before they are imported.
A plugin cannot take interp down at import: whatever it raises (SystemExit
and KeyboardInterrupt included) becomes a failed row, what it prints goes to
stderr, and an import that takes longer than ``INTERP_PLUGIN_IMPORT_TIMEOUT``
seconds (default 30) is abandoned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.metadata
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Any

import pluggy

from . import hookspecs
from .commands import CommandEntry, CommandFlag, command_name
from interpret_core.api.errors import PluginError, UnknownNameError, UsageError
from interpret_core.api.interfaces import Attribution, AttributionMetric, Dataset, Model, UnitMetric

ENTRY_POINT_GROUP = "interp"
#: The hook through which plugins add commands and flags (not a class kind: see registry/commands.py).
COMMANDS_HOOK = "interp_register_commands"
DISABLE_VARIABLE = "INTERP_DISABLE_PLUGINS"
#: Seconds one plugin's import may take before it is abandoned; over a quarter of it is reported as slow.
IMPORT_TIMEOUT_VARIABLE = "INTERP_PLUGIN_IMPORT_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT = 30.0
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of plugin class: its CLI word, hook name and base class."""

    key: str
    hook: str
    base: type


KINDS: dict[str, Kind] = {
    kind.key: kind
    for kind in (
        Kind("dataset", "interp_register_datasets", Dataset),
        Kind("model", "interp_register_models", Model),
        Kind("attribution", "interp_register_attributions", Attribution),
        Kind("unit-metric", "interp_register_unit_metrics", UnitMetric),
        Kind("attribution-metric", "interp_register_attribution_metrics", AttributionMetric),
    )
}


@dataclasses.dataclass
class PluginSource:
    """Where a plugin came from."""

    plugin: str  # entry-point name (or the name a test registered it under)
    entry_point: str | None  # "module:attr" value of the entry point
    distribution: str | None
    version: str | None


@dataclasses.dataclass
class Registration:
    """One registered class, or one failure, as a row of ``interp plugins``."""

    kind: str | None
    name: str | None
    source: PluginSource
    cls: type | None = None
    status: str = "ok"  # "ok", "failed" or "disabled"
    error: str | None = None
    entry: CommandEntry | None = None  # kind "command": what the plugin registered

    def fail(self, error: str) -> None:
        """Mark this row failed (e.g. when the CLI cannot attach a registered command)."""
        self.status = "failed"
        self.error = error

    def as_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.source.plugin,
            "entry_point": self.source.entry_point,
            "distribution": self.source.distribution,
            "version": self.source.version,
            "status": self.status,
            "error": self.error,
        }


def _describe(source: PluginSource) -> str:
    dist = source.distribution or "no distribution"
    return f"plugin {source.plugin!r} (distribution {dist!r})"


class Registry:
    """Loads plugins and looks up the classes they register."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self._sources: dict[str, PluginSource] = {}
        self._failures: list[Registration] = []
        self._registrations: list[Registration] | None = None
        self._command_rows: list[Registration] | None = None

    # -- loading -----------------------------------------------------------------
    def load_entry_points(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> None:
        """Import and register each entry point of the ``interp`` group on its own."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        disabled = {n.strip() for n in os.environ.get(DISABLE_VARIABLE, "").split(",") if n.strip()}
        seen: set[tuple[str, str]] = set()
        for entry_point in entry_points:
            dist = getattr(entry_point, "dist", None)
            source = PluginSource(
                plugin=entry_point.name,
                entry_point=entry_point.value,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            # The same distribution can be visible twice on sys.path (e.g. an
            # editable install plus a build folder); load it once.
            key = (entry_point.name, entry_point.value)
            if key in seen:
                continue
            seen.add(key)
            if entry_point.name in disabled:
                self._failures.append(
                    Registration(None, None, source, status="disabled", error=f"blocked by {DISABLE_VARIABLE}")
                )
                continue
            loaded, plugin_object, error = _import_entry_point(entry_point, import_budget())
            if not loaded:
                self._fail(source, error)
                continue
            self.register_plugin(plugin_object, source)

    def register_plugin(self, plugin_object: Any, source: PluginSource | str) -> bool:
        """Register a module or object holding hook implementations.

        Returns False (and records a failed row) if pluggy rejects it, e.g. for
        a misspelled hook name.
        """
        if isinstance(source, str):
            source = PluginSource(plugin=source, entry_point=None, distribution=None, version=None)
        if source.plugin in self._sources:
            other = self._sources[source.plugin]
            self._fail(source, f"entry-point name {source.plugin!r} is already used by {_describe(other)}")
            return False
        try:
            self.manager.register(plugin_object, name=source.plugin)
        except Exception as exc:
            self._fail(source, f"rejected by pluggy: {exc}")
            return False
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self.manager.unregister(plugin_object)
            valid = ", ".join(sorted(name for name in vars(hookspecs) if name.startswith("interp_")))
            self._fail(source, f"{exc} (valid hook names: {valid})")
            return False
        self._sources[source.plugin] = source
        self._registrations = None
        self._command_rows = None
        return True

    def unregister_plugin(self, plugin_name: str) -> None:
        """Remove a plugin registered under ``plugin_name`` (used by test fixtures)."""
        plugin_object = self.manager.get_plugin(plugin_name)
        if plugin_object is not None:
            self.manager.unregister(plugin_object)
        self._sources.pop(plugin_name, None)
        self._failures = [f for f in self._failures if f.source.plugin != plugin_name]
        self._registrations = None
        self._command_rows = None

    def _fail(self, source: PluginSource, error: str) -> None:
        self._failures.append(Registration(None, None, source, status="failed", error=error))

    # -- collecting registrations --------------------------------------------
    def _collect(self) -> list[Registration]:
        if self._registrations is not None:
            return self._registrations
        rows: list[Registration] = []
        for kind in KINDS.values():
            caller = getattr(self.manager.hook, kind.hook)
            # Call each implementation on its own so we know who registered what.
            for impl in reversed(caller.get_hookimpls()):
                source = self._sources.get(impl.plugin_name) or PluginSource(impl.plugin_name, None, None, None)
                pending: list[Registration] = []

                def register(cls: Any, _kind: Kind = kind, _source: PluginSource = source, _out=pending) -> None:
                    _out.append(self._check_class(_kind, cls, _source))

                try:
                    with contextlib.redirect_stdout(sys.stderr):  # a plugin's print must not corrupt --json
                        impl.function(register=register)
                except (Exception, SystemExit) as exc:  # KeyboardInterrupt: a real Ctrl-C, stop
                    pending.append(
                        Registration(
                            kind.key, None, source, status="failed",
                            error=f"{kind.hook} raised {type(exc).__name__}: {exc}",
                        )
                    )
                rows.extend(pending)
        # A plugin that loaded but registered nothing still gets a row.
        registered = {r.source.plugin for r in rows}
        registered |= {r.source.plugin for r in self.command_rows()}
        for source in self._sources.values():
            if source.plugin not in registered:
                rows.append(Registration(None, None, source))
        self._mark_clashes(rows)
        self._registrations = rows
        return rows

    @staticmethod
    def _check_class(kind: Kind, cls: Any, source: PluginSource) -> Registration:
        name = getattr(cls, "name", None)
        if not isinstance(cls, type) or not issubclass(cls, kind.base):
            return Registration(
                kind.key, name if isinstance(name, str) else None, source, status="failed",
                error=f"registered {cls!r}, which is not a subclass of interpret_core.{kind.base.__name__}",
            )
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            return Registration(
                kind.key, None, source, cls=cls, status="failed",
                error=f"{cls.__qualname__}.name must be lowercase words joined by dashes, got {name!r}",
            )
        return Registration(kind.key, name, source, cls=cls)

    @staticmethod
    def _mark_clashes(rows: list[Registration]) -> None:
        by_key: dict[tuple[str, str], list[Registration]] = {}
        for row in rows:
            if row.status == "ok" and row.name is not None and row.kind is not None:
                by_key.setdefault((row.kind, row.name), []).append(row)
        for (kind, name), group in by_key.items():
            if len(group) < 2:
                continue
            who = " and ".join(_describe(r.source) for r in group)
            message = f"{kind} name {name!r} is registered by both {who}"
            for row in group:
                row.status = "failed"
                row.error = message

    # -- commands --------------------------------------------------------------
    def command_rows(self) -> list[Registration]:
        """One row (kind ``"command"``) per command or flag registered through
        ``interp_register_commands``; a hook that raises, or an entry that is
        malformed, is a failed row. Collected on first use, apart from the
        class kinds, so that ``get_model`` never runs command hooks."""
        if self._command_rows is not None:
            return self._command_rows
        rows: list[Registration] = []
        caller = getattr(self.manager.hook, COMMANDS_HOOK)
        for impl in reversed(caller.get_hookimpls()):
            source = self._sources.get(impl.plugin_name) or PluginSource(impl.plugin_name, None, None, None)
            pending: list[Registration] = []

            def register(target: Any, name: str | None = None, group: str | None = None,
                         _source: PluginSource = source, _out: list[Registration] = pending) -> None:
                is_flag = isinstance(target, CommandFlag)
                entry = CommandEntry(target, name=None if is_flag else command_name(target, name), group=group)
                row = Registration("command", entry.path or None, _source, entry=entry)
                problem = entry.problem()
                if problem is not None:
                    row.fail(problem)
                _out.append(row)

            try:
                impl.function(register=register)
            except Exception as exc:
                pending.append(
                    Registration("command", None, source, status="failed",
                                 error=f"{COMMANDS_HOOK} raised {type(exc).__name__}: {exc}")
                )
            rows.extend(pending)
        self._command_rows = rows
        return rows

    # -- public queries --------------------------------------------------------
    def rows(self) -> list[Registration]:
        """Every registration and every failure, for ``interp plugins``."""
        return self._collect() + self.command_rows() + list(self._failures)

    def names(self, kind: str) -> list[str]:
        """Names of the classes of ``kind`` that loaded (clashing names included)."""
        return sorted({r.name for r in self._collect() if r.kind == kind and r.name and r.cls is not None})

    def source_of(self, kind: str, name: str) -> PluginSource:
        """Where the class registered as ``name`` came from (after :meth:`get_class` found it)."""
        self.get_class(kind, name)
        return next(r.source for r in self._collect() if r.kind == kind and r.name == name and r.cls is not None)

    def get_class(self, kind: str, name: str) -> type:
        """The class registered as ``name``; raises a clear error otherwise."""
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; valid: {', '.join(KINDS)}")
        matches = [r for r in self._collect() if r.kind == kind and r.name == name and r.cls is not None]
        if not matches:
            valid = self.names(kind)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "run `interp plugins` to see what is installed"
            listing = ", ".join(valid) if valid else "none installed"
            raise UnknownNameError(f"unknown {kind} {name!r}; valid names: {listing}", hint)
        if matches[0].status == "failed":
            raise PluginError(matches[0].error or f"{kind} {name!r} failed to load", "uninstall or disable one of them with INTERP_DISABLE_PLUGINS")
        return matches[0].cls  # type: ignore[return-value]


def import_budget() -> float:
    """Seconds a plugin's import may take before it is abandoned (``INTERP_PLUGIN_IMPORT_TIMEOUT``, default 30)."""
    text = os.environ.get(IMPORT_TIMEOUT_VARIABLE, "").strip()
    try:
        value = float(text) if text else DEFAULT_IMPORT_TIMEOUT
    except ValueError:
        raise UsageError(f"{IMPORT_TIMEOUT_VARIABLE}={text!r} is not a number of seconds", f"e.g. {IMPORT_TIMEOUT_VARIABLE}=30") from None
    if not value > 0:
        raise UsageError(f"{IMPORT_TIMEOUT_VARIABLE} must be positive, got {text!r}", f"e.g. {IMPORT_TIMEOUT_VARIABLE}=30")
    return value


def _import_entry_point(entry_point: importlib.metadata.EntryPoint, budget: float) -> tuple[bool, Any, str | None]:
    """Import one plugin, isolated from interp: returns (loaded, plugin object, error of a failed row).

    The import runs in a daemon thread so that a plugin that hangs is
    abandoned after ``budget`` seconds (the thread is left behind; a daemon
    thread does not keep interp alive) and one that takes over a quarter of
    it is reported with a warning. Everything it raises, ``SystemExit`` and
    ``KeyboardInterrupt`` included, becomes a failed row; a real Ctrl-C
    still interrupts the main thread's wait. What it prints goes to stderr,
    so ``--json`` output on stdout stays valid.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["object"] = entry_point.load()
        except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt of a plugin are its failure
            outcome["error"] = exc

    hint = f"disable it with {DISABLE_VARIABLE}={entry_point.name}"
    started = time.monotonic()
    thread = threading.Thread(target=target, name=f"interp-plugin-import-{entry_point.name}", daemon=True)
    with contextlib.redirect_stdout(sys.stderr):
        thread.start()
        thread.join(budget)
    seconds = time.monotonic() - started
    if thread.is_alive():
        return False, None, (
            f"import did not finish within {budget:g} s ({IMPORT_TIMEOUT_VARIABLE}) and was abandoned; {hint}"
        )
    if "error" in outcome:
        exc = outcome["error"]
        return False, None, f"import failed: {type(exc).__name__}: {exc}"
    if seconds > budget / 4:
        warnings.warn(
            f"plugin {entry_point.name!r} took {seconds:.1f} s to import (abandoned after {budget:g} s); {hint} if you do not need it",
            stacklevel=3,
        )
    return True, outcome["object"], None


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loading entry points on first use."""
    global _registry
    with _lock:
        if _registry is None:
            registry = Registry()
            registry.load_entry_points()
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget loaded plugins; the next lookup reloads entry points."""
    global _registry
    with _lock:
        _registry = None


def _installed_from_path(distribution: str | None) -> bool:
    """True if ``distribution`` was installed from a local folder or file (editable included), or is unknown.

    pip records that in ``direct_url.json`` (PEP 610); such code can change
    without a new version number, so its source is hashed into cache keys.
    """
    import json

    if distribution is None:
        return True
    found = list(importlib.metadata.distributions(name=distribution))
    if not found:
        return True
    for dist in found:  # a source tree's .egg-info and the installed .dist-info can both be visible
        if dist.read_text("PKG-INFO") is not None:  # an .egg-info: a develop install or a build folder
            return True
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            return True
        if "dir_info" in direct or str(direct.get("url", "")).startswith("file:"):
            return True
    return False


def _code_of(distribution: str | None, version: str | None, module: str) -> dict[str, Any]:
    from interpret_core.util.fingerprint import source_sha256

    code: dict[str, Any] = {"distribution": distribution, "version": version}
    if _installed_from_path(distribution):
        code["source_sha256"] = source_sha256(module)
    return code


def code_provenance(*classes: tuple[str, str]) -> dict[str, Any]:
    """The code a cached result depends on: interp itself and each plugin class ``(kind, name)``.

    Each entry holds the distribution's name and version, plus the sha256 of
    the ``.py`` files of the class's top-level package when that
    distribution was installed from a path or in editable mode (or has no
    metadata), since such code changes without a new version. Keys:
    ``"interp"`` and ``"<kind>:<name>"``.
    """
    from interpret_core import __version__

    try:
        interp_version: str | None = importlib.metadata.version("interp")
    except importlib.metadata.PackageNotFoundError:
        interp_version = None
    provenance: dict[str, Any] = {"interp": {"version": __version__, **_code_of("interp" if interp_version else None, interp_version, "interpret_core")}}
    registry = get_registry()
    for kind, name in classes:
        try:
            cls = registry.get_class(kind, name)
            source = registry.source_of(kind, name)
        except (UnknownNameError, PluginError):  # a class used without registering it: no distribution to name
            provenance[f"{kind}:{name}"] = {"class": None, **_code_of(None, None, "")}
            continue
        provenance[f"{kind}:{name}"] = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            **_code_of(source.distribution, source.version, cls.__module__),
        }
    return provenance


def plugins() -> list[dict[str, Any]]:
    """Rows describing every installed plugin class and every failure."""
    return [row.as_row() for row in get_registry().rows()]


def _check_options(kind: str, name: str, cls: type, options: dict[str, Any]) -> None:
    """UsageError naming the plugin's options if ``cls`` does not take ``options``."""
    import inspect

    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        valid = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs", "options")]
        flag = {"dataset": "--dataset-option", "model": "--model-option", "attribution": "--method-option"}.get(kind, "--metric-option")
        raise UsageError(
            f"{kind} {name!r} does not accept these options ({exc}); its options are: {', '.join(valid) or 'none'}",
            f"check the option names, e.g. {flag} key=value",
        ) from exc


def _instantiate(kind: str, name: str, options: dict[str, Any]) -> Any:
    cls = get_registry().get_class(kind, name)
    _check_options(kind, name, cls, options)
    return cls(**options)


def get_dataset(name: str, **options: Any) -> Dataset:
    """Instantiate the dataset plugin ``name`` with ``options``."""
    return _instantiate("dataset", name, options)


def open_dataset(
    name: str, data_root: str | os.PathLike | None = None, options: dict[str, Any] | None = None
) -> Dataset:
    """The data set plugin ``name`` as the commands name it: ``--data-root`` and ``--dataset-option``s.

    ``data_root`` None means the plugin's default set (it is not passed, so a
    plugin without one need not take it).
    """
    kwargs: dict[str, Any] = dict(options or {})
    if data_root is not None:
        kwargs["data_root"] = os.fspath(data_root)
    return get_dataset(name, **kwargs)


def get_model(
    name: str | None, weights: str | os.PathLike | None = None, seed: int = 0, device: Any = None, **options: Any
) -> Model:
    """Instantiate model ``name``, load ``weights`` (or its shipped default), eval mode.

    ``weights`` is a ``.safetensors`` file with its model card beside it
    (same stem, ``.json``). ``name=None`` takes the model name from that card
    (``architecture.model``), so weights alone say what they are. Without
    ``weights`` the plugin's shipped default weights are loaded if it has
    any; otherwise the model stays untrained (``model.card is None``, unless
    the plugin loaded weights of its own and set their card), initialised
    from ``seed`` so that the same seed gives the same network. The caller's
    torch RNG state is left untouched. ``options`` go to the plugin's
    constructor (``--model-option`` on the command line). ``device`` (a
    ``torch.device`` or a spec ``auto|cpu|cuda|cuda:N|mps``, see
    :func:`interpret_core.nn.device.resolve_device`; None: the CPU) is where
    the module goes after its weights are loaded.
    """
    import torch

    from interpret_core.nn.weights import card_model_name, card_path, default_weights_path, load_weights_into, read_card
    from interpret_core.registry.user_models import is_model_spec, model_class_from_spec

    if name is None:
        if weights is None:
            raise UsageError("no model named and no weights given", "pass --model NAME, or --weights FILE.safetensors (its card names the model)")
        name = card_model_name(weights)
        if name.startswith("python:") and name.count(":") == 1:
            raise UsageError(
                f"the card of {weights} names the class {name[len('python:'):]!r} from a Python file",
                f"say which file: --model python:FILE.py:{name[len('python:'):]}",
            )
    # ``python:FILE.py:Class`` / ``package.module:Class``: your own model, no plugin.
    cls = model_class_from_spec(name) if is_model_spec(name) else get_registry().get_class("model", name)
    if getattr(cls, "builds_from_weights", False):
        # The weights file is the network (e.g. ONNX): the plugin reads it and sets the card.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(**({"weights": os.fspath(weights)} if weights is not None else {}), **options)
        return _placed(model, device)
    # Without explicit class_names / input_size the model is built as the
    # weights' card describes it (so 7-class weights load as a 7-class model);
    # explicit options that disagree with the card are refused at load time.
    source = weights if weights is not None else default_weights_path(cls.default_weights)
    if (
        source is not None
        and os.fspath(source).endswith(".safetensors")
        and os.path.isfile(source)
        and card_path(source).is_file()
        and ("class_names" not in options or "input_size" not in options)
    ):
        architecture = read_card(source)["architecture"]
        options = dict(options)
        options.setdefault("class_names", list(architecture["class_names"]))
        options.setdefault("input_size", tuple(architecture["input_size"]))

    _check_options("model", name, cls, options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Model = cls(**options)
    load_weights_into(model, weights)
    return _placed(model, device)


def _placed(model: Model, device: Any) -> Model:
    """``model`` in eval mode, its module moved to ``device`` (None: where it is)."""
    from interpret_core.nn.device import resolve_device

    if device is not None:
        model.module.to(resolve_device(device))
    model.module.eval()
    return model


def get_attribution(name: str, **options: Any) -> Attribution:
    """Instantiate the attribution plugin ``name`` with ``options``."""
    return _instantiate("attribution", name, options)


def get_unit_metric(name: str, **options: Any) -> UnitMetric:
    """Instantiate the unit metric plugin ``name`` with ``options``."""
    return _instantiate("unit-metric", name, options)


def get_attribution_metric(name: str, **options: Any) -> AttributionMetric:
    """Instantiate the attribution metric plugin ``name`` with ``options``."""
    return _instantiate("attribution-metric", name, options)
