"""Localisation metrics: does the attribution point at the action units that are present?

``masks`` [N, H, W] is the union of the regions of the AUs present in each
image (ground-truth AU masks on SynthFACS, landmark regions on CK+), at the
attribution's resolution. Importance maps come from
:func:`.kernels.saliency_maps` (channels summed, then ``abs``/``positive``/``signed``).

A constant map (no variation, e.g. all zeros) localises nothing and scores 0
on all three metrics; an empty mask scores NaN (the bench excludes images
without AUs before calling).
"""

from __future__ import annotations

from typing import Any

from .base import SALIENCY_MODES, BenchMetric


class _Localisation(BenchMetric):
    family = "localisation"
    needs_masks = True
    higher_is_better = True
    default_saliency = "abs"

    def __init__(self, saliency: str | None = None, unknown: dict[str, Any] | None = None, **options: Any):
        saliency = self.default_saliency if saliency is None else saliency
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES)
        super().__init__(saliency=saliency, unknown=unknown, **options)
        self.saliency = saliency

    def _prepare(self, attributions, masks):
        import torch

        from .kernels import has_variation, saliency_maps

        maps = saliency_maps(attributions, self.saliency)
        masks = torch.as_tensor(masks).to(torch.bool)
        if masks.shape != maps.shape:
            raise ValueError(f"{self.name}: masks {tuple(masks.shape)} do not match maps {tuple(maps.shape)}")
        return maps, masks, has_variation(maps), masks.flatten(1).any(dim=1)

    @staticmethod
    def _finalise(scores, informative, nonempty):
        import torch

        scores = torch.where(informative, scores, torch.zeros_like(scores))
        return torch.where(nonempty, scores, torch.full_like(scores, float("nan")))


class AUPointingGame(_Localisation):
    """Hit (1) when the map's maximum lies within ``tolerance`` px of an AU region, else miss (0).

    Options:
        tolerance: pixels (Euclidean) around the regions that still count as a
            hit. Default 2 px on 64 px faces (TorchRay uses 15 px on ~224 px
            images, Quantus none); 0 is the strict game.
        saliency: ``abs`` (default, as TorchRay for gradient maps), ``positive`` or ``signed``.

    Ties for the maximum go to the first pixel in raster order (as ``argmax``).
    """

    name = "au-pointing-game"
    description = "Hit rate: the attribution maximum falls inside (or within tolerance px of) the present AUs' regions."

    def __init__(self, tolerance: float = 2.0, saliency: str | None = None, **unknown: Any):
        tolerance = self._check_number(self.name, "tolerance", tolerance, 0.0)
        super().__init__(saliency=saliency, tolerance=tolerance, unknown=unknown)
        self.tolerance = tolerance

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n, height, width = maps.shape
        peak = maps.reshape(n, -1).argmax(dim=1)
        py, px = peak // width, peak % width
        ys = torch.arange(height).view(1, height, 1)
        xs = torch.arange(width).view(1, 1, width)
        distance2 = (ys - py.view(n, 1, 1)) ** 2 + (xs - px.view(n, 1, 1)) ** 2
        near = distance2.to(torch.float64) <= self.tolerance**2
        hits = (masks & near).flatten(1).any(dim=1).to(torch.float64)
        return self._finalise(hits, informative, nonempty)


class AURelevanceMass(_Localisation):
    """Share of the map's mass inside the AU regions (Arras et al. 2022, relevance mass accuracy).

    Options:
        saliency: ``positive`` (default: positive relevance, as Arras et al.), or ``abs``.
    """

    name = "au-relevance-mass"
    description = "Share of positive attribution mass inside the present AUs' regions (Arras et al.)."
    default_saliency = "positive"

    def __init__(self, saliency: str | None = None, **unknown: Any):
        if saliency == "signed":
            self._check_choice(self.name, "saliency", saliency, ("abs", "positive"))
        super().__init__(saliency=saliency, unknown=unknown)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        total = maps.flatten(1).sum(dim=1)
        inside = (maps * masks).flatten(1).sum(dim=1)
        informative = informative & (total > 0)
        share = inside / total.clamp(min=1e-300)
        return self._finalise(share, informative, nonempty)


class AURelevanceRank(_Localisation):
    """Share of the top-K pixels that lie inside the AU regions, K = region size (Arras et al. 2022).

    Options:
        saliency: ``abs`` (default), ``positive`` or ``signed``.

    Ties at the K-th value go to pixels in raster order (a stable sort).
    """

    name = "au-relevance-rank"
    description = "Share of the top-|region| attribution pixels inside the present AUs' regions (Arras et al.)."

    def __init__(self, saliency: str | None = None, **unknown: Any):
        super().__init__(saliency=saliency, unknown=unknown)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import descending_order

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n = maps.shape[0]
        order = descending_order(maps)  # [N, P] pixel indices by importance
        flat_masks = masks.reshape(n, -1)
        size = flat_masks.sum(dim=1)  # K per image
        in_region_by_rank = torch.gather(flat_masks, 1, order)  # [N, P]: rank r pixel inside?
        ranks = torch.arange(order.shape[1]).view(1, -1)
        top = ranks < size.view(-1, 1)
        share = (in_region_by_rank & top).sum(dim=1).to(torch.float64) / size.clamp(min=1).to(torch.float64)
        return self._finalise(share, informative, nonempty)
