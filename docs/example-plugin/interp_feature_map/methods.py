"""An attribution method and an attribution metric, written against interpret_core's interfaces.

torch is imported inside the methods, so ``interp plugins`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

from interpret_core import Attribution, AttributionMetric, MetricResult
from interpret_core.nn.hooks import capture_outputs


class FeatureMapUpsampling(Attribution):
    """A unit's activation map, upsampled bilinearly to the input (as in Network Dissection).

    Class level: the input gradient's magnitude (a saliency map).
    """

    name = "feature-map"
    description = "unit activation maps upsampled to the input (NetDissect style)"
    supports_units = True
    signed = False

    def __init__(self, mode: str = "bilinear"):
        super().__init__()
        self.mode = mode

    def attribute(self, module, inputs, target):
        import torch

        inputs = inputs.detach().clone().requires_grad_(True)
        logits = module(inputs)
        index = torch.as_tensor(target).expand(inputs.shape[0]).to(logits.device)
        chosen = logits.gather(1, index[:, None]).sum()
        (gradient,) = torch.autograd.grad(chosen, inputs)
        return gradient.abs()

    def attribute_units(self, module, inputs, layer: str, units: Sequence[int]):
        import torch
        import torch.nn.functional as F

        with torch.no_grad(), capture_outputs(module, [layer]) as captured:
            module(inputs)
        maps = captured[layer][:, list(units)].clamp(min=0)  # [N, U, h, w]
        upsampled = F.interpolate(maps, size=inputs.shape[-2:], mode=self.mode, align_corners=False)
        return upsampled[:, :, None].expand(-1, -1, inputs.shape[1], -1, -1).contiguous()


class TopDecileShare(AttributionMetric):
    """Share of absolute attribution in the top 10 % of pixels: higher = more concentrated."""

    name = "top-decile-share"
    description = "how concentrated a map is (no annotations needed)"
    higher_is_better = True

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        flat = attributions.abs().flatten(1)
        k = max(1, int(round(flat.shape[1] * 0.1)))
        top = flat.topk(k, dim=1).values.sum(1)
        total = flat.sum(1)
        return MetricResult(torch.where(total > 0, top / total.clamp(min=1e-12), torch.zeros_like(total)))
