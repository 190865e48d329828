"""Method specs and option values as users type them (no torch here).

A *method spec* names an attribution method and, optionally, its options::

    deconv
    guided-backprop:max_batch=512
    occlusion:window=12,stride=6
    integrated-gradients:steps=64,baseline=zero
    captum:Saliency
    captum:NoiseTunnel(IntegratedGradients),nt_type=smoothgrad,nt_samples=10,stdevs=0.1
    captum:LayerGradCam,layer=conv3

``parse_method_spec`` turns one into ``(registered name, options)`` for
:func:`interpret_core.get_attribution`. For ``captum:`` the first item after
the colon is the Captum class (``algorithm``); the rest are options. Values
are read as int, float, bool (``true``/``false``), ``none``, an int tuple
(``8x8``) or else a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from interpret_core.errors import UsageError

__all__ = ["parse_method_spec", "parse_options", "coerce_value", "split_items"]

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TUPLE = re.compile(r"^\d+(?:x\d+)+$")


def coerce_value(text: str) -> Any:
    """``"32"`` -> 32, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"8x8"`` -> (8, 8), else the string."""
    value = text.strip()
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    if _TUPLE.match(lowered):
        return tuple(int(v) for v in lowered.split("x"))
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def split_items(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
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


def parse_options(items: Iterable[str], where: str = "option") -> dict[str, Any]:
    """``["steps=64", "baseline=zero"]`` -> ``{"steps": 64, "baseline": "zero"}``."""
    options: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"{where} {item!r} is not key=value", "write options as key=value, e.g. steps=64")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise UsageError(f"{where} name {key!r} is not a valid name", "option names are words joined by _")
        options[key] = coerce_value(value)
    return options


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"captum:NoiseTunnel(Saliency),nt_samples=8"`` -> ``("captum", {"algorithm": ..., "nt_samples": 8})``.

    Raises UsageError for an empty or malformed spec; unknown names are left
    to :func:`interpret_core.get_attribution`, which suggests close matches.
    """
    text = (spec or "").strip()
    if not text:
        raise UsageError("empty attribution method", "name a method, e.g. deconv or captum:Saliency")
    name, _, body = text.partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise UsageError(
            f"attribution method {name!r} is not a plugin name",
            "plugin names are lowercase words joined by dashes; Captum classes go after 'captum:'",
        )
    items = split_items(body)
    options: dict[str, Any] = {}
    if name == "captum":
        if not items or "=" in items[0].split("(", 1)[0]:
            raise UsageError(
                f"method {spec!r} names no Captum class",
                "write captum:ClassName, e.g. captum:Saliency or captum:NoiseTunnel(IntegratedGradients)",
            )
        options["algorithm"] = items[0]
        items = items[1:]
    options.update(parse_options(items, where=f"option of {name!r}"))
    return name, options
