"""The plugin-option flags as commands receive them, turned into what the workflows take.

``--method-option KEY=VALUE`` adds to the method spec; ``--metric-option
[METRIC.]KEY=VALUE`` goes to the metric it names (or, where one metric runs,
to that one). Values are read by :func:`interpret_core.registry.options.parse_value`
like every other option.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from interpret_core.api.errors import UsageError
from interpret_core.registry.options import parse_options


def method_spec(spec: str, method_options: Iterable[str]) -> str:
    """``"deconv"`` + ``["max_batch=64"]`` -> ``"deconv:max_batch=64"`` (items append to a spec's own)."""
    items = [item.strip() for item in method_options if item.strip()]
    if not items:
        return spec
    parse_options(items, where="--method-option", example="max_batch=256")  # refuse malformed pairs here
    return spec + ("," if ":" in spec else ":") + ",".join(items)


def metric_options(metric: str, items: Iterable[str]) -> dict[str, Any]:
    """Options of the one metric ``metric`` from ``[METRIC.]KEY=VALUE`` items."""
    plain = []
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, key = key.rpartition(".") if "." in key else ("", "", key)
        if dot and name.strip() != metric:
            raise UsageError(
                f"--metric-option {item!r} is for metric {name.strip()!r}, but this command runs {metric!r}",
                f"write --metric-option KEY=VALUE (or {metric}.KEY=VALUE)",
            )
        plain.append(f"{key}{sep}{value}")
    return parse_options(plain, where="--metric-option", example="distance=smd")
