"""Options and method specs as users type them, turned into plugin arguments (no torch here).

Every command reads ``key=value`` options (``--option``, ``--dataset-option``,
``--metric-option``, the items of a method spec) with :func:`parse_options`,
so a value means the same thing everywhere (:func:`parse_value`).

A *method spec* names an attribution method and, optionally, its options::

    deconv
    guided-backprop:max_batch=512
    occlusion:window=12,stride=6
    integrated-gradients:steps=64,baseline=zero
    captum:Saliency
    captum:NoiseTunnel(IntegratedGradients),nt_type=smoothgrad,nt_samples=10,stdevs=0.1
    captum:LayerGradCam,layer=conv3

:func:`parse_method_spec` turns one into ``(registered name, options)`` for
:func:`interpret_core.get_attribution`. A plugin that declares a
``positional_option`` (the Captum adapter: ``algorithm``) takes it as the
first item after the colon, without ``key=``; the rest are options.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

from interpret_core.api.errors import PluginError, UnknownNameError, UsageError
from interpret_core.registry.loader import NAME_PATTERN, get_registry

__all__ = ["parse_value", "split_items", "split_list", "parse_options", "parse_method_spec"]

_INT_TUPLE = re.compile(r"^\d+(?:x\d+)+$")


def parse_value(text: str) -> Any:
    """A typed value from its text; anything unreadable stays the (stripped) string.

    ``"true"``/``"yes"``/``"on"`` -> True, ``"false"``/``"no"``/``"off"`` -> False,
    ``"none"``/``"null"`` -> None (any case); ``"8x8"`` -> ``(8, 8)``; ``"32"`` -> 32;
    ``"0.1"`` -> 0.1; Python literals such as ``"[1, 2]"``, ``"(3, 4)"`` or ``"'a,b'"``
    -> that value; ``"blur"`` -> ``"blur"``.
    """
    value = text.strip()
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    if _INT_TUPLE.match(lowered):
        return tuple(int(v) for v in lowered.split("x"))
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return value


def split_items(text: str) -> list[str]:
    """Split on commas outside parentheses; items are stripped, empty ones dropped.

    ``"NoiseTunnel(A, B),nt_samples=8"`` -> ``["NoiseTunnel(A, B)", "nt_samples=8"]``.
    """
    items, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def split_list(text: str | None) -> list[str] | None:
    """``"conv1, conv2"`` -> ``["conv1", "conv2"]``; None or empty -> None."""
    if text is None:
        return None
    return split_items(text) or None


def parse_options(
    pairs: Iterable[str] | None, where: str = "--option", example: str = "steps=32"
) -> dict[str, Any]:
    """``["steps=32", "baseline=blur"]`` -> ``{"steps": 32, "baseline": "blur"}``.

    Options map onto the keyword arguments of a plugin class's ``__init__``;
    dashes in keys become underscores. ``where`` names the flag or spec the
    pairs came from and ``example`` is a pair that fits it, both for the error.
    """
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            hint = f"e.g. {where} {example}" if where.startswith("-") else f"write options as key=value, e.g. {example}"
            raise UsageError(f"{where} {pair!r} is not key=value (key a name of letters, digits and _)", hint)
        options[key] = parse_value(value)
    return options


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"captum:NoiseTunnel(Saliency),nt_samples=8"`` -> ``("captum", {"algorithm": ..., "nt_samples": 8})``.

    Raises UsageError for an empty or malformed spec, and for a plugin with a
    ``positional_option`` when that option is missing; unknown names are left
    to :func:`interpret_core.get_attribution`, which suggests close matches.
    """
    text = (spec or "").strip()
    if not text:
        raise UsageError("empty attribution method", "name a method, e.g. one listed by `interp plugins`")
    name, _, body = text.partition(":")
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"attribution method {name!r} is not a plugin name",
            "plugin names are lowercase words joined by dashes; options go after a colon (NAME:key=value)",
        )
    items = split_items(body)
    options: dict[str, Any] = {}
    positional = _positional_option(name)
    if positional is not None:
        first = items[0] if items else ""
        if first and "=" not in first.split("(", 1)[0]:
            options[positional] = first
            items = items[1:]
        elif not first.replace(" ", "").startswith(f"{positional}="):
            raise UsageError(
                f"method {spec!r} gives no {positional} (the first item after {name + ':'!r})",
                f"write {name}:VALUE (it fills {positional}=VALUE), then any key=value options",
            )
    options.update(parse_options(items, where=f"option of {name!r}"))
    return name, options


def _positional_option(name: str) -> str | None:
    """The ``positional_option`` the attribution class ``name`` declares (None if none, or not installed)."""
    try:
        cls = get_registry().get_class("attribution", name)
    except (UnknownNameError, PluginError):
        return None
    return cls.positional_option
