"""Axioms: does a map that claims to add up to the output's change actually add up?

``completeness`` (Sundararajan et al. 2017; DeepLIFT's summation-to-delta,
Shrikumar et al. 2017; LRP's conservation, Bach et al. 2015) for the methods
that claim it: those with ``claims_completeness`` true and a
``completeness_baseline(inputs)`` (the reference input, or None when the map
should sum to the output itself, as LRP's). The score of an image is the
relative violation

    |sum(attributions) - (f_c(x) - f_c(baseline))| / |f_c(x) - f_c(baseline)|

with ``f_c`` the explained logit (``f_c(baseline)`` = 0 without a baseline).
Lower is better; 0 is exact. A method that does not claim completeness gets
no cell (a :class:`CapabilityError`, which the bench shows as "n/a"). An
image whose output does not change (|f_c(x) - f_c(baseline)| below
``1e-6``) is undefined.

The result's ``warnings`` name the method when its median violation is above
``warn_above`` (10 %); the bench prints them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interpret_core import CapabilityError, MetricResult

from .base import BenchMetric

#: Median relative violation above which a method is flagged.
WARN_ABOVE = 0.10


def claims_completeness(method: Any) -> bool:
    """Whether ``method`` declares that its maps sum to f(x) - f(baseline)."""
    return bool(getattr(method, "claims_completeness", False)) and callable(getattr(method, "completeness_baseline", None))


class Completeness(BenchMetric):
    """Relative completeness violation |sum a - (f(x) - f(x0))| / |f(x) - f(x0)| (lower is better).

    Options:
        warn_above: median violation above which ``interp bench`` warns (default 0.10).

    Extra field ``gap``: the signed sum(a) - (f(x) - f(x0)), in logits.
    """

    name = "completeness"
    description = "Axiom: relative gap between the map's sum and f(x) - f(baseline), for methods that claim it (lower is better)."
    family = "axiom"
    higher_is_better = False
    needs_model = True
    needs_method = True
    extra_fields = ("gap",)

    def __init__(self, warn_above: float = WARN_ABOVE, **unknown: Any):
        warn_above = self._check_number(self.name, "warn_above", warn_above, 0.0)
        super().__init__(warn_above=warn_above, unknown=unknown)
        self.warn_above = warn_above

    def evaluate(self, **kwargs: Any) -> MetricResult:
        method = kwargs.get("method")
        if method is not None and not claims_completeness(method):
            raise CapabilityError(
                f"attribution metric 'completeness' does not apply to {getattr(method, 'name', method)!r}: "
                "the method does not claim that its maps sum to f(x) - f(baseline)",
                "completeness is scored for integrated-gradients, deeplift and the LRP methods",
            )
        result = super().evaluate(**kwargs)
        finite = result.scores[np.isfinite(result.scores)]
        if finite.size and float(np.median(finite)) > self.warn_above:
            result.warnings.append(
                f"method {getattr(method, 'name', method)!r} misses completeness by a median {float(np.median(finite)):.0%} "
                f"of f(x) - f(baseline) over {finite.size} images (> {self.warn_above:.0%}): its maps do not add up "
                "to what they claim")
        return result

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        targets = torch.as_tensor(targets).to(torch.int64).view(-1, 1)
        baseline = method.completeness_baseline(inputs)
        with torch.no_grad():
            output = model(inputs).to(torch.float64).gather(1, targets.to(inputs.device)).view(-1).cpu()
            if baseline is None:
                reference = torch.zeros_like(output)
            else:
                reference = model(baseline.to(inputs.dtype)).to(torch.float64).gather(1, targets.to(inputs.device)).view(-1).cpu()
        change = output - reference
        total = attributions.detach().to(torch.float64).flatten(1).sum(dim=1).cpu()
        gap = total - change
        violation = gap.abs() / change.abs()
        return MetricResult(torch.where(change.abs() > 1e-6, violation, torch.full_like(violation, float("nan"))), {"gap": gap})

