"""Localisation metrics: does the attribution point at the action units that are present?

``masks`` [N, H, W] is the union of the regions of the AUs present in each
image (ground-truth AU masks on SynthFACS, landmark regions on CK+), at the
attribution's resolution. Importance maps come from
:func:`.kernels.saliency_maps` (channels summed, then ``abs``/``positive``/``signed``).

A constant map (no variation, e.g. all zeros) localises nothing: it is
undefined (NaN, counted by the bench; see :mod:`.base`), as is an empty mask
(the bench excludes images without AUs before calling). Ties are scored by
their exact expectation over a random order of the tied pixels.
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult

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

        return torch.where(informative & nonempty, scores, torch.full_like(scores, float("nan")))


def pointing_tolerance(model, input_size) -> float:
    """The default pointing-game tolerance in input px: half the input stride of the model's last spatial block.

    The coarsest maps the bench scores (Grad-CAM and the CAM family) live on
    the grid of the last spatial block (:func:`interpret_core.nn.blocks.last_spatial_block`),
    whose cells are ``stride`` px apart; such a map can place its peak no
    closer than half a cell, so the game forgives that much, for every method
    alike. fer-cnn: conv3 is 16x16 on a 64 px input, stride 4, tolerance 2 px.
    """
    from interpret_core.nn.blocks import last_spatial_block

    block = last_spatial_block(model, tuple(int(v) for v in input_size))
    return max(block.stride) / 2


class AUPointingGame(_Localisation):
    """Hit (1) when the map's maximum lies within ``tolerance`` px of an AU region, else miss (0).

    Options:
        tolerance: pixels (Euclidean distance at the model's input) around the
            regions that still count as a hit; ``"auto"`` (default) = half the
            input stride of the model's last spatial block
            (:func:`pointing_tolerance`: 2 px for fer-cnn); 0 is the strict game
            (as Quantus). TorchRay uses 15 px on ~224 px images.
        saliency: ``abs`` (default, as TorchRay for gradient maps), ``positive`` or ``signed``.

    Ties for the maximum score their expectation: the share of the tied
    maxima that are hits. The extra field ``chance`` is the hit rate of a
    peak drawn uniformly over the image at the same tolerance (the share of
    pixels within ``tolerance`` of the regions), per image, so every cell
    carries its own chance level.
    """

    name = "au-pointing-game"
    short_name = "pointing-game"
    description = "Hit rate: the attribution maximum falls inside (or within tolerance px of) the present AUs' regions."
    extra_fields = ("chance", "tolerance_px")
    column_extras = {"chance": "chance"}
    reference_extras = ("chance",)  # the hit rate of a random peak: every method's cell has the same one

    def __init__(self, tolerance: float | str = "auto", saliency: str | None = None, **unknown: Any):
        if tolerance != "auto":
            tolerance = self._check_number(self.name, "tolerance", tolerance, 0.0)
        super().__init__(saliency=saliency, tolerance=tolerance, unknown=unknown)
        self.tolerance = tolerance
        self.needs_model = tolerance == "auto"
        self._auto: dict[tuple[int, tuple[int, ...]], float] = {}

    def tolerance_px(self, model, inputs) -> float:
        """The tolerance used for ``inputs`` on ``model``, in px."""
        if self.tolerance != "auto":
            return float(self.tolerance)
        key = (id(model), tuple(inputs.shape[1:]))
        if key not in self._auto:
            self._auto[key] = pointing_tolerance(model, inputs.shape[1:])
        return self._auto[key]

    def finish(self) -> None:
        self._auto.clear()

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import dilate

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n = maps.shape[0]
        tolerance = self.tolerance_px(model, inputs)
        near = dilate(masks, tolerance).reshape(n, -1)  # pixels where a peak counts as a hit
        flat = maps.reshape(n, -1)
        peaks = flat == flat.amax(dim=1, keepdim=True)
        hits = (peaks & near).sum(dim=1).to(torch.float64) / peaks.sum(dim=1).clamp(min=1).to(torch.float64)
        extras = {"chance": near.to(torch.float64).mean(dim=1), "tolerance_px": torch.full((n,), tolerance, dtype=torch.float64)}
        return MetricResult(self._finalise(hits, informative, nonempty), extras)


class AURelevanceMass(_Localisation):
    """Share of the map's mass inside the AU regions (Arras et al. 2022, relevance mass accuracy).

    Options:
        saliency: ``positive`` (default: positive relevance, as Arras et al.), or ``abs``.
    """

    name = "au-relevance-mass"
    short_name = "relevance-mass"
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
        informative = informative & (total > 0)  # a positive map with no positive pixel: undefined
        share = inside / total.clamp(min=1e-300)
        return MetricResult(self._finalise(share, informative, nonempty))


class AURelevanceRank(_Localisation):
    """Share of the top-K pixels that lie inside the AU regions, K = region size (Arras et al. 2022).

    Options:
        saliency: ``abs`` (default), ``positive`` or ``signed``.

    Ties at the K-th value score their expectation over a random order of
    the tied pixels: the pixels above the K-th value count as they are, and
    the tied group fills the remaining places in proportion to its share
    inside the region (:func:`.kernels.expected_top_k_inside`).
    """

    name = "au-relevance-rank"
    short_name = "relevance-rank"
    description = "Share of the top-|region| attribution pixels inside the present AUs' regions (Arras et al.)."

    def __init__(self, saliency: str | None = None, **unknown: Any):
        super().__init__(saliency=saliency, unknown=unknown)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import expected_top_k_inside

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n = maps.shape[0]
        flat_masks = masks.reshape(n, -1)
        size = flat_masks.sum(dim=1)  # K per image
        inside = expected_top_k_inside(maps.reshape(n, -1), flat_masks, size)
        share = inside / size.clamp(min=1).to(torch.float64)
        return MetricResult(self._finalise(share, informative, nonempty))


class TopKIntersection(_Localisation):
    """Share of the ``k`` most important pixels that lie inside the AU regions (Theiner et al. 2021).

    Options:
        k: pixels, or ``"auto"`` (default) = 2 % of the image's pixels, the
            share of Quantus' default k = 1000 on 224 x 224 (82 px at 64 x 64).
        saliency: ``abs`` (default), ``positive`` or ``signed``.

    Ties at the k-th value score their expectation (as ``au-relevance-rank``).
    Unlike relevance rank, k does not follow the region's size, so small AUs
    cap the score below 1 (k / region size).
    """

    name = "au-top-k-intersection"
    description = "Share of the top-k (2 % of pixels) attribution pixels inside the present AUs' regions (Theiner et al.)."

    def __init__(self, k: int | str = "auto", saliency: str | None = None, **unknown: Any):
        if k != "auto":
            k = self._check_number(self.name, "k", k, 1, integer=True)
        super().__init__(saliency=saliency, k=k, unknown=unknown)
        self.k = k

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import expected_top_k_inside

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n = maps.shape[0]
        pixels = maps[0].numel()
        k = max(1, round(0.02 * pixels)) if self.k == "auto" else min(int(self.k), pixels)
        inside = expected_top_k_inside(maps.reshape(n, -1), masks.reshape(n, -1), torch.full((n,), k))
        return MetricResult(self._finalise(inside / k, informative, nonempty))


class AULocalisationAUC(_Localisation):
    """ROC AUC of the map as a detector of the AU regions' pixels (Fawcett 2006; Quantus ``AUC``).

    0.5 is chance; ties count one half (the expectation over tie orders, as
    sklearn's ``roc_auc_score``). Options: ``saliency`` (``abs`` default).
    """

    name = "au-auc"
    description = "ROC AUC of the attribution map against the present AUs' region pixels (0.5 = chance)."

    def __init__(self, saliency: str | None = None, **unknown: Any):
        super().__init__(saliency=saliency, unknown=unknown)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        from .kernels import roc_auc

        maps, masks, informative, nonempty = self._prepare(attributions, masks)
        n = maps.shape[0]
        return MetricResult(self._finalise(roc_auc(maps.reshape(n, -1), masks.reshape(n, -1)), informative, nonempty))
