"""Option parsing shared by every command: ``--option key=value`` and comma lists."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from ..errors import UsageError


def parse_value(text: str) -> Any:
    """Turn ``"3"``, ``"0.5"``, ``"true"``, ``"none"``, ``"[1,2]"`` into Python values; else keep the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text


def parse_options(pairs: Sequence[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["steps=32", "baseline=blur"]`` -> ``{"steps": 32, "baseline": "blur"}``.

    Options map onto the keyword arguments of a plugin class's ``__init__``.
    """
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UsageError(f"{flag} {pair!r} is not of the form key=value", f"e.g. {flag} steps=32")
        options[key] = parse_value(value)
    return options


def split_list(text: str | None) -> list[str] | None:
    """``"conv1, conv2"`` -> ``["conv1", "conv2"]``; None or empty -> None."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    return items or None
