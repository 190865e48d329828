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


def parameterised_layers(module) -> list[str]:
    """Dotted names of the submodules that own parameters, input side first."""
    return [name for name, sub in module.named_modules() if any(True for _ in sub.parameters(recurse=False))]


def reinitialise(layer, seed: int) -> None:
    """Re-draw ``layer``'s own parameters deterministically for ``seed``.

    Uses the layer's ``reset_parameters()`` (PyTorch's default initialisation)
    where it has one, else a normal draw with each parameter's current standard
    deviation. The global RNG state is left as it was.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            else:
                for parameter in layer.parameters(recurse=False):
                    std = float(parameter.std()) if parameter.numel() > 1 else 0.02
                    parameter.normal_(0.0, std if std > 0 else 0.02)


class ModelRandomization(BenchMetric):
    """Cascading model-parameter randomisation (Adebayo et al. 2018).

    On a deep copy of the model, the parameterised layers are re-initialised
    from the top (output side) down, one more at each stage, and the method
    is re-run on each stage's model for the same targets. The score of an
    image is its Spearman similarity to the trained model's map, averaged
    over the stages (as Quantus' ``return_average_correlation``); ``ssim`` is
    averaged likewise, and ``spearman_final`` / ``ssim_final`` hold the last
    stage's values. Lower is better: 1 means the map ignores the weights.

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
    extra_fields = ("ssim", "spearman_final", "ssim_final")
    column_extras = {"ssim": "SSIM"}

    def __init__(self, layers: int = 0, stages: int = 3, seed: int = 0, **unknown: Any):
        layers = self._check_number(self.name, "layers", layers, 0, integer=True)
        stages = self._check_number(self.name, "stages", stages, 0, integer=True)
        seed = self._check_number(self.name, "seed", seed, 0, integer=True)
        super().__init__(layers=layers, stages=stages, seed=seed, unknown=unknown)
        self.layers, self.stages, self.seed = layers, stages, seed

    def stage_points(self, count: int) -> list[int]:
        """How many layers are randomised at each evaluated stage (1-based, increasing)."""
        if self.stages == 0 or self.stages >= count:
            return list(range(1, count + 1))
        if self.stages == 1:
            return [count]
        step = (count - 1) / (self.stages - 1)
        return sorted({1 + round(i * step) for i in range(self.stages)})

    def cascade(self, model) -> list[str]:
        """The layers randomised, top first, in the order the cascade adds them."""
        names = parameterised_layers(model)[::-1]
        return names if self.layers == 0 else names[: self.layers]

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import copy

        import torch

        names = self.cascade(model)
        if not names:
            raise ValueError("randomization: the model has no parameterised layers")
        randomised = copy.deepcopy(model).eval()
        modules = dict(randomised.named_modules())
        original_index = {name: i for i, name in enumerate(parameterised_layers(model))}
        rhos, ssims = [], []
        evaluate_after = set(self.stage_points(len(names)))
        for done, name in enumerate(names, start=1):
            reinitialise(modules[name], self.seed * 1000 + original_index[name])
            if done not in evaluate_after:
                continue
            other = method.attribute(randomised, inputs, targets).detach()
            rho, structural = _similarity(attributions, other)
            rhos.append(rho)
            ssims.append(structural)
        rho = torch.stack(rhos).mean(dim=0)
        extras = {"ssim": torch.stack(ssims).mean(dim=0), "spearman_final": rhos[-1], "ssim_final": ssims[-1]}
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
