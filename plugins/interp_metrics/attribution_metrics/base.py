"""An intermediate base for the bench metrics: options, undefined maps, ties, table families.

:class:`interpret_core.AttributionMetric` batches in ``evaluate`` and returns
a :class:`interpret_core.MetricResult`: one score per image plus the declared
per-image ``extra_fields`` (``randomization`` gives a Spearman correlation
and an SSIM), which ``evaluate_batch`` returns with its scores.

Undefined maps, in this one place for every metric
    A map with a NaN or inf value, or whose channel-summed map is constant
    (all zero, say), is *undefined*: it orders no pixel before another and
    points nowhere, so no metric can score it. :meth:`BenchMetric.evaluate`
    gives such an image the score NaN without passing it to
    ``evaluate_batch``; metrics return NaN themselves where their own input
    is degenerate (a ``positive`` map with no positive pixel for relevance
    mass; a constant comparison map in the sanity checks). A result's
    ``undefined`` is the bool [N] of images without a score; the bench
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

from interpret_core import AttributionMetric, MetricResult, UsageError

SALIENCY_MODES = ("abs", "positive", "signed")
#: Seed of the random order of tied pixels (see the module docstring).
TIE_SEED = 0
#: Images per forward pass of the perturbation metrics (their ``forward_batch`` option); raise it on a GPU.
#: On CPU, fer-cnn's per-image cost is flat from 16 to 64 images; what varies more is whether glibc's
#: malloc hands a pass's feature maps back to the OS and page-faults them in again on the next
#: (up to +40 % system time), which depends on the process's allocation history, not on this number.
FORWARD_BATCH = 64
#: Keyword arguments of a metric call that hold one row per image.
PER_IMAGE_ARGUMENTS = ("inputs", "targets", "attributions", "masks")
#: The order of the bench tables (``family_rank``): localisation, faithfulness, sanity, then the others.
FAMILY_RANKS: dict[str, int] = {"localisation": 0, "faithfulness": 1, "sanity": 2, "robustness": 3, "complexity": 4, "axiom": 5}


class BenchMetric(AttributionMetric):
    """AttributionMetric with recorded options, undefined maps handled once, and a ranked family.

    Class attributes:
        family: ``"localisation"``, ``"faithfulness"``, ``"sanity"``, ``"robustness"``,
            ``"complexity"`` or ``"axiom"``; sets ``family_rank`` from :data:`FAMILY_RANKS`.
        version: ``1``; bump it when the metric's numbers change for the same options.
    """

    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.family in FAMILY_RANKS:
            cls.family_rank = FAMILY_RANKS[cls.family]

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
        self._options: dict[str, Any] = dict(options)

    def options(self) -> dict[str, Any]:
        """The validated options this instance was made with."""
        return dict(self._options)

    def evaluate(self, **kwargs: Any) -> MetricResult:
        """Scores and extras, float64 [N] each; NaN for undefined maps (see the module docstring), which never reach ``evaluate_batch``."""
        import torch

        from .kernels import defined_maps

        attributions = kwargs["attributions"]
        n = int(attributions.shape[0])
        defined = defined_maps(torch.as_tensor(attributions)).cpu().numpy()
        rows = np.flatnonzero(defined)
        try:
            if len(rows) == n:
                return super().evaluate(**kwargs)
            # also with no row left, so that the needs (model, masks, ...) are still checked
            index = torch.as_tensor(rows)
            subset = {
                key: (value[index] if key in PER_IMAGE_ARGUMENTS and value is not None else value)
                for key, value in kwargs.items()
            }
            scored = super().evaluate(**subset)
        finally:
            self.finish()
        scores = np.full(n, np.nan)
        scores[rows] = scored.scores
        extras = {}
        for name, values in scored.extras.items():
            extras[name] = np.full(n, np.nan)
            extras[name][rows] = values
        return MetricResult(scores, extras, scored.warnings)

    def finish(self) -> None:
        """Called after every image is scored (e.g. to drop cached models)."""

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
