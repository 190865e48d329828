"""Sanity checks: does the map depend on the learned weights, and on the class explained?

Both metrics compare two attribution maps of the same images with

* the Spearman rank correlation of the absolute maps (channels summed, then
  ``abs``), over all pixels: the main score;
* the SSIM (Wang et al. 2004; 11 px Gaussian window, sigma 1.5) of the absolute
  maps, each scaled to [0, 1] by its maximum: an extra field ``ssim``.

For both, lower means the method is more sensitive to what changed, which is
what a faithful explanation should be. Where the compared map is undefined
(constant, e.g. all zero, or with a NaN or inf value) the similarity is
undefined too: NaN for that image, counted by the bench (see :mod:`.base`;
the explained map itself is checked there).
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult

from .base import BenchMetric


def _similarity(first, second):
    """(spearman [N], ssim [N]) of two attribution batches, per image."""
    import torch

    from .kernels import has_variation, normalise_unit_range, saliency_maps, spearman, ssim

    from .kernels import defined_maps

    a = saliency_maps(first, "abs")
    b = saliency_maps(second, "abs")
    defined = defined_maps(second) & has_variation(a) & has_variation(b)
    b = torch.where(torch.isfinite(b), b, torch.zeros_like(b))
    undefined = torch.full((a.shape[0],), float("nan"), dtype=torch.float64)
    rho = torch.where(defined, spearman(a, b), undefined)
    structural = torch.where(defined, ssim(normalise_unit_range(a), normalise_unit_range(b), data_range=1.0), undefined)
    return rho, structural


def parameterised_layers(module, inputs=None) -> list[str]:
    """Dotted names of the submodules that own parameters, input side first.

    With ``inputs`` (a probe batch), in the order a forward pass first calls
    them (what Adebayo et al.'s cascade follows); without, in registration order.
    """
    names = [name for name, sub in module.named_modules() if any(True for _ in sub.parameters(recurse=False))]
    if inputs is None:
        return names
    import torch

    from interpret_core.nn.hooks import forward_hooks

    called: list[str] = []

    def hook(name):
        def record(_module, _args, _output):
            if name not in called:
                called.append(name)
        return record

    with torch.no_grad(), forward_hooks(module, {name: hook(name) for name in names}):
        module(inputs[:1])
    return called + [name for name in names if name not in called]  # never-called layers last


def reinitialise(layer, seed: int) -> None:
    """Re-draw ``layer``'s own parameters deterministically for ``seed``.

    Uses the layer's ``reset_parameters()`` (PyTorch's default initialisation)
    where it has one, else a normal draw with each parameter's current standard
    deviation. Batch norm is the exception: its ``reset_parameters()`` makes
    it the identity (weight 1, bias 0), which removes the layer instead of
    randomising it; its affine weight and bias are drawn from N(0, 1) instead
    (running statistics stay as trained). The global RNG state is left as it was.
    """
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            if isinstance(layer, nn.modules.batchnorm._NormBase) and layer.affine:
                layer.weight.normal_(0.0, 1.0)
                layer.bias.normal_(0.0, 1.0)
            elif hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            else:
                for parameter in layer.parameters(recurse=False):
                    std = float(parameter.std()) if parameter.numel() > 1 else 0.02
                    parameter.normal_(0.0, std if std > 0 else 0.02)


class ModelRandomization(BenchMetric):
    """Cascading model-parameter randomisation (Adebayo et al. 2018).

    On a deep copy of the model, the parameterised layers are re-initialised
    from the top (output side) down, in forward execution order, one more at
    each stage, and the method is re-run on each stage's model for the same
    targets. The score of an image is its Spearman similarity (absolute
    maps) to the trained model's map, averaged over the stages (as Quantus'
    ``return_average_correlation``): the summary. The curve Adebayo et al.
    plot is kept too, stage by stage: ``spearman_stage{i}`` (absolute maps),
    ``signed_spearman_stage{i}`` (signed maps: does the sign pattern survive?)
    and ``ssim_stage{i}``, i = 1 (top layer only) .. ``stages``; ``ssim`` and
    ``signed_spearman`` are their stage averages and ``spearman_final`` /
    ``ssim_final`` the last stage's. ``stage_layers`` (after a call) names
    the layers randomised up to each stage. Lower is better: 1 means the map
    ignores the weights.

    Options:
        layers: how many top layers the cascade randomises (0 = all, default).
        stages: at how many points of the cascade the method is re-run,
            evenly spaced and always including the first (top layer only) and
            the last (all ``layers``) stage; 0 = after every layer. Default 3:
            each stage costs one more attribution pass, and the three points
            (top layer, half the network, all of it) show the trend Adebayo et
            al. plot at a third of the cost on ``fer-cnn``.
        seed: seed of the re-initialisation (layer ``j`` uses ``seed * 1000 + j``).
    """

    name = "randomization"
    description = "Adebayo et al. cascading parameter randomisation: Spearman similarity to the trained model's map (lower is better)."
    family = "sanity"
    higher_is_better = False
    needs_model = True
    needs_method = True
    extra_fields = ("ssim", "signed_spearman", "spearman_final", "ssim_final")
    column_extras = {"ssim": "SSIM"}

    def __init__(self, layers: int = 0, stages: int = 3, seed: int = 0, **unknown: Any):
        layers = self._check_number(self.name, "layers", layers, 0, integer=True)
        stages = self._check_number(self.name, "stages", stages, 0, integer=True)
        seed = self._check_number(self.name, "seed", seed, 0, integer=True)
        super().__init__(layers=layers, stages=stages, seed=seed, unknown=unknown)
        self.layers, self.stages, self.seed = layers, stages, seed
        curve = [f"{kind}_stage{i}" for i in range(1, stages + 1) for kind in ("spearman", "signed_spearman", "ssim")]
        self.extra_fields = type(self).extra_fields + tuple(curve)
        self.stage_layers: list[list[str]] = []

    def stage_points(self, count: int) -> list[int]:
        """How many layers are randomised at each evaluated stage (1-based, increasing)."""
        if self.stages == 0 or self.stages >= count:
            return list(range(1, count + 1))
        if self.stages == 1:
            return [count]
        step = (count - 1) / (self.stages - 1)
        return sorted({1 + round(i * step) for i in range(self.stages)})

    def cascade(self, model, inputs=None) -> list[str]:
        """The layers randomised, top first, in the order the cascade adds them (execution order with ``inputs``)."""
        names = parameterised_layers(model, inputs)[::-1]
        return names if self.layers == 0 else names[: self.layers]

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import copy

        import torch

        from .kernels import has_variation, saliency_maps, spearman

        names = self.cascade(model, inputs)
        if not names:
            raise ValueError("randomization: the model has no parameterised layers")
        randomised = copy.deepcopy(model).eval()
        modules = dict(randomised.named_modules())
        original_index = {name: i for i, name in enumerate(parameterised_layers(model))}
        rhos, signed, ssims = [], [], []
        self.stage_layers = []
        evaluate_after = set(self.stage_points(len(names)))
        signed_map = saliency_maps(attributions, "signed")
        for done, name in enumerate(names, start=1):
            reinitialise(modules[name], self.seed * 1000 + original_index[name])
            if done not in evaluate_after:
                continue
            other = method.attribute(randomised, inputs, targets).detach()
            rho, structural = _similarity(attributions, other)
            other_signed = saliency_maps(torch.nan_to_num(other), "signed")
            rho_signed = torch.where(torch.isfinite(rho) & has_variation(other_signed), spearman(signed_map, other_signed),
                                     torch.full_like(rho, float("nan")))
            rhos.append(rho)
            signed.append(rho_signed)
            ssims.append(structural)
            self.stage_layers.append(names[:done])
        rho = torch.stack(rhos).mean(dim=0)
        extras = {"ssim": torch.stack(ssims).mean(dim=0), "signed_spearman": torch.stack(signed).mean(dim=0),
                  "spearman_final": rhos[-1], "ssim_final": ssims[-1]}
        for i in range(1, self.stages + 1):
            have = i <= len(rhos)
            for kind, values in (("spearman", rhos), ("signed_spearman", signed), ("ssim", ssims)):
                extras[f"{kind}_stage{i}"] = values[i - 1] if have else torch.full_like(rho, float("nan"))
        return MetricResult(rho, extras)


class ClassSensitivity(BenchMetric):
    """Similarity of the maps for the explained class and for another class (Nie et al. 2018).

    The other class is, per image, the most likely class other than the
    explained one (``other="second"``, default) or the least likely
    (``other="least"``). Lower is better: 1 means the map ignores the class,
    as Nie et al. prove for deconvnet and guided backprop.
    Extra field ``ssim`` as for ``randomization``.
    """

    name = "class-sensitivity"
    description = "Spearman similarity of the maps for the explained and the runner-up class (lower is better; Nie et al.)."
    family = "sanity"
    higher_is_better = False
    needs_model = True
    needs_method = True
    extra_fields = ("ssim",)
    column_extras = {"ssim": "SSIM"}

    def __init__(self, other: str = "second", **unknown: Any):
        self._check_choice(self.name, "other", other, ("second", "least"))
        super().__init__(other=other, unknown=unknown)
        self.other = other

    def other_classes(self, model, inputs, targets):
        """LongTensor [N]: the class compared with each target."""
        import torch

        with torch.no_grad():
            logits = model(inputs).detach().to(torch.float64)
        targets = torch.as_tensor(targets).to(torch.int64).view(-1).to(logits.device)
        if logits.shape[1] < 2:
            raise ValueError("class-sensitivity needs a model with at least two classes")
        if self.other == "second":
            logits.scatter_(1, targets.view(-1, 1), float("-inf"))
            return logits.argmax(dim=1)
        logits.scatter_(1, targets.view(-1, 1), float("inf"))
        return logits.argmin(dim=1)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        others = self.other_classes(model, inputs, targets)
        other = method.attribute(model, inputs, others.to(inputs.device)).detach()
        rho, structural = _similarity(attributions, other)
        return MetricResult(rho, {"ssim": structural})
