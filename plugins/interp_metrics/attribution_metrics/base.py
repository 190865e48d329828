"""An intermediate base for the bench metrics: options recorded, extra per-image fields.

:class:`interpret_core.AttributionMetric` batches in ``__call__`` and returns
one score per image. Some metrics measure more than one number per image
(``randomization`` gives a Spearman correlation and an SSIM); they record the
others with :meth:`BenchMetric.record_extra` inside ``evaluate_batch``, and
``metric.extras`` holds them, concatenated over batches, after each call.
Batching still happens only in the core's ``__call__``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from interpret_core import AttributionMetric, UsageError

SALIENCY_MODES = ("abs", "positive", "signed")


class BenchMetric(AttributionMetric):
    """AttributionMetric with recorded options and optional extra per-image fields.

    Class attributes:
        family: ``"localisation"``, ``"faithfulness"`` or ``"sanity"`` (for tables).
        extra_fields: names of the extra per-image values the metric records.
    """

    family: ClassVar[str] = ""
    extra_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, unknown: dict[str, Any] | None = None, **options: Any):
        if unknown:
            import inspect

            valid = [n for n in inspect.signature(type(self).__init__).parameters if n not in ("self", "unknown")]
            raise UsageError(
                f"attribution metric {self.name!r} does not take option(s) {sorted(unknown)}; "
                f"its options: {', '.join(valid) or 'none'}",
                "see docs/benchmark.md for the metric's options",
            )
        super().__init__()
        self.options: dict[str, Any] = dict(options)
        self.extras: dict[str, np.ndarray] = {}
        self._extra_parts: dict[str, list[np.ndarray]] = {}

    def __call__(self, **kwargs: Any) -> np.ndarray:
        self._extra_parts = {name: [] for name in self.extra_fields}
        scores = super().__call__(**kwargs)
        self.extras = {
            name: (np.concatenate(parts) if parts else np.zeros(0)) for name, parts in self._extra_parts.items()
        }
        self.finish()
        return scores

    def finish(self) -> None:
        """Called after every image is scored (e.g. to drop cached models)."""

    def record_extra(self, name: str, values: Any) -> None:
        """Record [n] extra values of the current batch under ``name``."""
        if name not in self._extra_parts:
            raise KeyError(f"{type(self).__name__}.extra_fields does not declare {name!r}")
        array = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
        self._extra_parts[name].append(np.asarray(array, dtype=np.float64))

    @staticmethod
    def _check_choice(metric: str, option: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise UsageError(
                f"attribution metric {metric!r}: option {option}={value!r} is not one of {', '.join(choices)}",
                "see docs/benchmark.md for the metric's options",
            )
        return value

    @staticmethod
    def _check_number(metric: str, option: str, value: Any, minimum: float, integer: bool = False) -> Any:
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or number < minimum or (integer and float(value) != int(value)):
            kind = "an integer" if integer else "a number"
            raise UsageError(
                f"attribution metric {metric!r}: option {option}={value!r} must be {kind} >= {minimum}",
                "see docs/benchmark.md for the metric's options",
            )
        return number
