"""Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE).

Pixels are ranked by the importance map (most important first; tied pixels
in a random order seeded per map, see :mod:`.base`). ``deletion`` replaces them, ``steps`` equal shares at a time,
with the baseline image and records the softmax probability of the explained
class; ``insertion`` starts from the baseline and puts the original pixels
back in the same order. The score is the area under the probability curve
over the fraction of pixels changed, x = 0, 1/steps, ..., 1 (trapezoid rule).
Deletion: lower is better (the probability collapses early). Insertion:
higher is better.

Baseline (``baseline`` option), the same for both curves:
    ``blur`` (default): the image blurred with a Gaussian of ``sigma`` px
        (4 px on 64 px faces removes the eyes, brows and mouth shapes while
        keeping the overall grey levels, so the perturbed images stay closer
        to the data than black pixels would; mirror borders);
    ``mean``: every pixel set to the image's mean grey level (per channel);
    ``zero``: black, as the original deletion game.

Every step of every image of a batch goes through the model in forward
batches of ``forward_batch`` images (no per-step loop in Python). The
default, 64, was the fastest on CPU for fer-cnn (larger batches fall out of
cache: 512 cost ~1.3x more per image); raise it on a GPU.
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult

from .base import SALIENCY_MODES, BenchMetric

BASELINES = ("blur", "mean", "zero")


class _PerturbationCurve(BenchMetric):
    family = "faithfulness"
    needs_model = True
    deleting: bool = True

    def __init__(
        self,
        steps: int = 32,
        baseline: str = "blur",
        sigma: float = 4.0,
        saliency: str = "abs",
        forward_batch: int = 64,
        **unknown: Any,
    ):
        steps = self._check_number(self.name, "steps", steps, 1, integer=True)
        self._check_choice(self.name, "baseline", baseline, BASELINES)
        sigma = self._check_number(self.name, "sigma", sigma, 1e-6)
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES)
        forward_batch = self._check_number(self.name, "forward_batch", forward_batch, 1, integer=True)
        super().__init__(steps=steps, baseline=baseline, sigma=sigma, saliency=saliency, unknown=unknown)
        self.steps, self.baseline, self.sigma, self.saliency = steps, baseline, sigma, saliency
        self.forward_batch = forward_batch

    def baseline_images(self, inputs):
        """The baseline image of each input, [N, C, H, W]."""
        import torch

        from .kernels import gaussian_blur

        if self.baseline == "blur":
            return gaussian_blur(inputs, self.sigma)
        if self.baseline == "mean":
            return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)
        return torch.zeros_like(inputs)

    def curves(self, inputs, targets, attributions, model):
        """Target probability after each step: float64 [N, steps + 1]."""
        import torch

        from .base import TIE_SEED
        from .kernels import descending_order, saliency_maps

        n, channels, height, width = inputs.shape
        pixels = height * width
        order = descending_order(saliency_maps(attributions, self.saliency), TIE_SEED)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(pixels).expand(n, pixels))  # rank of each pixel
        counts = torch.round(torch.arange(self.steps + 1, dtype=torch.float64) * pixels / self.steps).to(torch.int64)
        base = self.baseline_images(inputs).to(inputs.dtype)
        # Deletion moves from the image to the baseline; insertion the other way.
        start, end = (inputs, base) if self.deleting else (base, inputs)
        targets = torch.as_tensor(targets).to(torch.int64).view(-1)
        total = n * (self.steps + 1)
        probabilities = torch.empty(total, dtype=torch.float64)
        device = next((p.device for p in model.parameters()), inputs.device)
        with torch.no_grad():
            for first in range(0, total, self.forward_batch):
                index = torch.arange(first, min(first + self.forward_batch, total))
                image, step = index // (self.steps + 1), index % (self.steps + 1)
                changed = (rank[image] < counts[step].view(-1, 1)).view(-1, 1, height, width)
                batch = torch.where(changed, end[image], start[image])
                logits = model(batch.to(device)).to(torch.float64)
                probs = torch.softmax(logits, dim=1)
                probabilities[index] = probs.gather(1, targets[image].to(probs.device).view(-1, 1)).view(-1).cpu()
        return probabilities.view(n, self.steps + 1)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        from .kernels import trapezoid

        return MetricResult(trapezoid(self.curves(inputs, targets, attributions, model)))


class Deletion(_PerturbationCurve):
    """Area under the target-probability curve as the most important pixels are deleted (lower is better).

    Options: ``steps`` (32), ``baseline`` (``blur``|``mean``|``zero``),
    ``sigma`` (4 px, for ``blur``), ``saliency`` (``abs``|``positive``|``signed``),
    ``forward_batch`` (64 images per forward pass).
    """

    name = "deletion"
    description = "Petsiuk et al. deletion AUC: probability of the explained class as top pixels are blurred away (lower is better)."
    higher_is_better = False
    deleting = True


class Insertion(_PerturbationCurve):
    """Area under the target-probability curve as the most important pixels are inserted (higher is better).

    Options as :class:`Deletion`.
    """

    name = "insertion"
    description = "Petsiuk et al. insertion AUC: probability of the explained class as top pixels are restored into a blurred image."
    higher_is_better = True
    deleting = False
