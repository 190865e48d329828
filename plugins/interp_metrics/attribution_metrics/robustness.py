"""Robustness: does the map stay put when the input barely moves? (The method is re-run.)

``max-sensitivity`` (Yeh et al. 2019)
    max over ``samples`` draws of ||e(x + d) - e(x)||_F / ||e(x)||_F, with d
    uniform in [-``radius``, ``radius``] per pixel.
``local-lipschitz`` (Alvarez-Melis & Jaakkola 2018)
    max over ``samples`` draws of ||e(x + d) - e(x)||_2 / ||d||_2, with d
    Gaussian of standard deviation ``sigma`` per pixel.

Lower is better for both. As Quantus by default, each map is divided by its
maximum absolute value first (``normalise=True``), so the scores compare
shapes, not scales. The noise is drawn per image from a generator seeded by
``seed`` and the image's bytes; the method is re-run on all images of a
batch at once, once per sample. A perturbed map that is undefined (constant,
NaN or inf) makes the image's score undefined.
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult

from .base import BenchMetric


class _Robustness(BenchMetric):
    family = "robustness"
    higher_is_better = False
    needs_model = True
    needs_method = True
    noise_option = ""

    def __init__(self, samples: int = 3, noise: float = 0.02, normalise: bool = True, seed: int = 0,
                 unknown: dict[str, Any] | None = None):
        samples = self._check_number(self.name, "samples", samples, 1, integer=True)
        noise = self._check_number(self.name, self.noise_option, noise, 1e-12)
        seed = self._check_number(self.name, "seed", seed, 0, integer=True)
        if not isinstance(normalise, bool):
            self._check_choice(self.name, "normalise", normalise, ("true", "false"))
        super().__init__(samples=samples, **{self.noise_option: noise}, normalise=normalise, seed=seed, unknown=unknown)
        self.samples, self.noise, self.normalise, self.seed = samples, noise, normalise, seed

    def perturbations(self, inputs):
        """float32 [samples, N, C, H, W]: the input changes d of every sample."""
        import torch

        from .kernels import row_generators

        draws = []
        for generator in row_generators(inputs, self.seed):
            draws.append(self.draw((self.samples, *inputs.shape[1:]), generator))
        return torch.stack(draws, dim=1).to(inputs.dtype)

    def draw(self, shape, generator):
        raise NotImplementedError

    def ratio(self, change, before, step):
        raise NotImplementedError

    def _scaled(self, maps):
        import torch

        maps = maps.detach().to(torch.float64).flatten(1)
        if not self.normalise:
            return maps
        peak = maps.abs().amax(dim=1, keepdim=True)
        return maps / torch.where(peak > 0, peak, torch.ones_like(peak))

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import defined_maps

        before = self._scaled(attributions)
        worst = torch.full((inputs.shape[0],), float("-inf"), dtype=torch.float64)
        defined = torch.ones(inputs.shape[0], dtype=torch.bool)
        for step in self.perturbations(inputs):
            after_raw = method.attribute(model, inputs + step, targets).detach()
            defined &= defined_maps(after_raw).cpu()
            after = self._scaled(torch.nan_to_num(after_raw))
            worst = torch.maximum(worst, self.ratio(after - before, before, step.to(torch.float64).flatten(1)))
        return MetricResult(torch.where(defined, worst, torch.full_like(worst, float("nan"))))


class MaxSensitivity(_Robustness):
    """max ||e(x + d) - e(x)|| / ||e(x)|| over uniform d in [-radius, radius] (lower is better).

    Options: ``samples`` (3 re-runs of the method: the default bench re-runs every method this
    often per image, so it is kept small; Quantus uses 200), ``radius`` (0.02 of the
    [0, 1] grey range), ``normalise`` (True), ``seed``.
    """

    name = "max-sensitivity"
    description = "Yeh et al.: worst relative change of the map under uniform input noise of radius 0.02 (lower is better)."
    noise_option = "radius"

    def __init__(self, samples: int = 3, radius: float = 0.02, normalise: bool = True, seed: int = 0, **unknown: Any):
        super().__init__(samples=samples, noise=radius, normalise=normalise, seed=seed, unknown=unknown)

    def draw(self, shape, generator):
        import torch

        return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * self.noise

    def ratio(self, change, before, step):
        return change.norm(dim=1) / before.norm(dim=1)


class LocalLipschitz(_Robustness):
    """max ||e(x + d) - e(x)|| / ||d|| over Gaussian d of std sigma (lower is better).

    Options: ``samples`` (3), ``sigma`` (0.02), ``normalise`` (True), ``seed``.
    """

    name = "local-lipschitz"
    description = "Alvarez-Melis & Jaakkola: worst ratio of map change to input change under Gaussian noise (lower is better)."
    noise_option = "sigma"

    def __init__(self, samples: int = 3, sigma: float = 0.02, normalise: bool = True, seed: int = 0, **unknown: Any):
        super().__init__(samples=samples, noise=sigma, normalise=normalise, seed=seed, unknown=unknown)

    def draw(self, shape, generator):
        import torch

        return torch.randn(shape, generator=generator, dtype=torch.float64) * self.noise

    def ratio(self, change, before, step):
        return change.norm(dim=1) / step.norm(dim=1)
