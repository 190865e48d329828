"""Complexity: how concentrated is a map? (No model, no masks.)

``sparseness``
    The Gini index of the absolute map (Chalasani et al. 2020; Hurley &
    Rickard 2009): sorted ascending a_(1..P), G = sum_i (2i - P - 1) a_(i) /
    (P sum a). 0 for a uniform map, (P - 1) / P for a single pixel. Higher is
    better (a sparse map is easier to read).
``complexity``
    The Shannon entropy (nats) of the absolute map as a distribution,
    p = |a| / sum |a| (Bhatt et al. 2020). Between 0 (one pixel) and log P
    (uniform: 8.32 at 64 x 64). Lower is better.

Both are scale-free, so Quantus' default normalisation (divide by the
maximum) does not change them; Quantus adds 1e-7 to every pixel before the
Gini index, which moves it by about 1e-6 on a 64 x 64 map, and we do not.
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult

from .base import SALIENCY_MODES, BenchMetric


class _Complexity(BenchMetric):
    family = "complexity"

    def __init__(self, saliency: str = "abs", **unknown: Any):
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES[:2])
        super().__init__(saliency=saliency, unknown=unknown)
        self.saliency = saliency

    #: name of the :mod:`.kernels` function that scores the non-negative rows
    statistic = ""

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from . import kernels
        from .kernels import saliency_maps

        maps = saliency_maps(attributions, self.saliency).flatten(1)
        nan = torch.full((maps.shape[0],), float("nan"), dtype=torch.float64)
        return MetricResult(torch.where(maps.sum(dim=1) > 0, getattr(kernels, self.statistic)(maps), nan))


class Sparseness(_Complexity):
    """Gini index of the absolute map (higher is better). Options: ``saliency`` (``abs``|``positive``)."""

    name = "sparseness"
    description = "Gini index of |map| (Chalasani et al. 2020): 0 uniform, ~1 one pixel (higher is better)."
    higher_is_better = True
    statistic = "gini"


class Complexity(_Complexity):
    """Entropy (nats) of the absolute map as a distribution (lower is better). Options: ``saliency``."""

    name = "complexity"
    description = "Entropy of |map| / sum |map| (Bhatt et al. 2020), nats (lower is better)."
    higher_is_better = False
    statistic = "entropy"
