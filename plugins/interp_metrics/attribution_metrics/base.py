"""An intermediate base for the bench metrics: options, undefined maps, ties, extra fields.

:class:`interpret_core.AttributionMetric` batches in ``__call__`` and returns
one score per image. Some metrics measure more than one number per image
(``randomization`` gives a Spearman correlation and an SSIM); they record the
others with :meth:`BenchMetric.record_extra` inside ``evaluate_batch``, and
``metric.extras`` holds them, concatenated over batches, after each call.
Batching still happens only in the core's ``__call__``.

Undefined maps, in this one place for every metric
    A map with a NaN or inf value, or whose channel-summed map is constant
    (all zero, say), is *undefined*: it orders no pixel before another and
    points nowhere, so no metric can score it. :meth:`BenchMetric.__call__`
    gives such an image the score NaN without passing it to
    ``evaluate_batch``; metrics return NaN themselves where their own input
    is degenerate (a ``positive`` map with no positive pixel for relevance
    mass; a constant comparison map in the sanity checks). After a call,
    ``metric.undefined`` is the bool [N] of images without a score; the bench
    counts them per cell (``n_undefined``), shows the count in every table,
    leaves them out of the mean, never bolds a cell that has any, and warns
    naming the method.

Ties, in one rule for every metric
    Where an order of pixels decides a score and values tie, the expected
    score over a uniformly random order of the tied pixels is used where it
    has a closed form (pointing game: the share of the tied maxima that hit;
    relevance rank and top-k intersection: the tied group at the K-th value
    contributes in proportion to its pixels inside the region). Otherwise
    (deletion, insertion and the other perturbation curves) tied pixels go
    in a random order drawn per map from a generator seeded by the map's
    bytes and ``TIE_SEED`` (:func:`.kernels.tie_keys`): the same map gets the
    same order in any batch. Rank correlations give ties their average rank
    (as ``scipy.stats.spearmanr``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from interpret_core import AttributionMetric, UsageError

SALIENCY_MODES = ("abs", "positive", "signed")
#: Seed of the random order of tied pixels (see the module docstring).
TIE_SEED = 0
#: Keyword arguments of a metric call that hold one row per image.
PER_IMAGE_ARGUMENTS = ("inputs", "targets", "attributions", "masks")


class BenchMetric(AttributionMetric):
    """AttributionMetric with recorded options and optional extra per-image fields.

    Class attributes:
        family: ``"localisation"``, ``"faithfulness"``, ``"sanity"``, ``"robustness"``,
            ``"complexity"`` or ``"axiom"`` (for tables).
        extra_fields: names of the extra per-image values the metric records.
        column_extras: {extra field: label} of extras the bench tables show as their own column.
        version: bumped when the metric's numbers change for the same options
            (part of the bench's cell key, so old cells are recomputed).
    """

    family: ClassVar[str] = ""
    extra_fields: ClassVar[tuple[str, ...]] = ()
    column_extras: ClassVar[dict[str, str]] = {}
    version: ClassVar[int] = 1

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
        self.undefined: np.ndarray = np.zeros(0, dtype=bool)
        self._extra_parts: dict[str, list[np.ndarray]] = {}

    def __call__(self, **kwargs: Any) -> np.ndarray:
        """Scores float64 [N]; NaN for undefined maps (see the module docstring), which never reach ``evaluate_batch``."""
        import torch

        from .kernels import defined_maps

        attributions = kwargs["attributions"]
        n = int(attributions.shape[0])
        defined = defined_maps(torch.as_tensor(attributions)).cpu().numpy()
        rows = np.flatnonzero(defined)
        self._extra_parts = {name: [] for name in self.extra_fields}
        scores = np.full(n, np.nan)
        if len(rows) == n:
            scores = np.asarray(super().__call__(**kwargs), dtype=np.float64)
        else:  # also with no row left, so that the needs (model, masks, ...) are still checked
            index = torch.as_tensor(rows)
            subset = {
                key: (value[index] if key in PER_IMAGE_ARGUMENTS and value is not None else value)
                for key, value in kwargs.items()
            }
            scores[rows] = super().__call__(**subset)
        self.extras = {}
        for name, parts in self._extra_parts.items():
            full = np.full(n, np.nan)
            if parts:
                full[rows] = np.concatenate(parts)
            self.extras[name] = full
        self.undefined = ~np.isfinite(scores)
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
