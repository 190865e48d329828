"""Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE), faithfulness and
monotonicity correlation (Bhatt et al. 2020; Nguyen & Martinez 2020) and ROAD (Rong et al. 2022).

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
batches of ``forward_batch`` images (no per-step loop in Python), default
:data:`.base.FORWARD_BATCH` (64); raise it on a GPU.
"""

from __future__ import annotations

from typing import Any

from interpret_core import MetricResult, UsageError

from .base import FORWARD_BATCH, SALIENCY_MODES, BenchMetric

BASELINES = ("blur", "mean", "zero")


def baseline_images(inputs, baseline: str, sigma: float = 4.0):
    """What perturbed pixels are replaced with, per input [N, C, H, W]: ``blur`` / ``mean`` / ``zero``."""
    import torch

    from .kernels import gaussian_blur

    if baseline == "blur":
        return gaussian_blur(inputs, sigma)
    if baseline == "mean":
        return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)
    return torch.zeros_like(inputs)


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
        forward_batch: int = FORWARD_BATCH,
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
        return baseline_images(inputs, self.baseline, self.sigma)

    def curves(self, inputs, targets, attributions, model):
        """Target probability after each step: float64 [N, steps + 1]."""
        import torch

        from .base import TIE_SEED
        from .kernels import descending_order, saliency_maps, target_outputs

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
        points = self.steps + 1

        def make_batch(index):
            image, step = index // points, index % points
            changed = (rank[image] < counts[step].view(-1, 1)).view(-1, 1, height, width)
            return torch.where(changed, end[image], start[image])

        probabilities = target_outputs(model, n * points, make_batch, torch.arange(n).repeat_interleave(points), targets,
                                       self.forward_batch, probability=True)
        return probabilities.view(n, points)

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


class _Perturbing(BenchMetric):
    """Shared options of the perturbation metrics below: baseline, sigma, output, forward_batch, seed."""

    family = "faithfulness"
    needs_model = True

    def __init__(self, own: dict[str, Any], baseline: str = "blur", sigma: float = 4.0, output: str = "logit",
                 forward_batch: int = FORWARD_BATCH, seed: int = 0, **unknown: Any):
        """``own``: the subclass's validated options; the rest are the shared ones, or unknown."""
        self._check_choice(self.name, "baseline", baseline, BASELINES)
        sigma = self._check_number(self.name, "sigma", sigma, 1e-6)
        self._check_choice(self.name, "output", output, ("logit", "probability"))
        forward_batch = self._check_number(self.name, "forward_batch", forward_batch, 1, integer=True)
        seed = self._check_number(self.name, "seed", seed, 0, integer=True)
        super().__init__(baseline=baseline, sigma=sigma, output=output, seed=seed, unknown=unknown, **own)
        self.baseline, self.sigma, self.output, self.forward_batch, self.seed = baseline, sigma, output, forward_batch, seed

    def outputs(self, model, inputs, targets):
        """The explained class's output of the unperturbed inputs, float64 [N]."""
        import torch

        from .kernels import target_outputs

        return target_outputs(model, inputs.shape[0], lambda index: inputs[index], torch.arange(inputs.shape[0]),
                              torch.as_tensor(targets).view(-1), self.forward_batch, self.output == "probability")


class FaithfulnessCorrelation(_Perturbing):
    """Pearson correlation, over random pixel subsets, of the map's sum on a subset and the output drop
    when the subset is replaced by the baseline (Bhatt et al. 2020). Higher is better.

    Options: ``runs`` (20 subsets; Quantus uses 100: each run is one forward pass per image, and
    20 keep every method x metric of the default bench under its 10-minute budget),
    ``subset_size`` (64 px, 1/64 of a 64 x 64 face),
    ``baseline`` (``blur``|``mean``|``zero``), ``sigma`` (4 px), ``output``
    (``logit`` default, as Quantus, or ``probability``), ``saliency``
    (``signed`` default: the sum of signed evidence, as Bhatt et al.), ``seed``.
    Subsets are drawn per map from a generator seeded by the seed and the map's bytes.
    """

    name = "faithfulness-correlation"
    #: 2: subsets drawn as permutations of one generator per map (was: one seeded key sort per map and run).
    version = 2
    description = "Bhatt et al.: correlation of subset attribution sums with the output drop when the subset is removed (higher is better)."
    higher_is_better = True

    def __init__(self, runs: int = 20, subset_size: int = 64, saliency: str = "signed", **unknown: Any):
        runs = self._check_number(self.name, "runs", runs, 2, integer=True)
        subset_size = self._check_number(self.name, "subset_size", subset_size, 1, integer=True)
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES)
        super().__init__({"runs": runs, "subset_size": subset_size, "saliency": saliency}, **unknown)
        self.runs, self.subset_size, self.saliency = runs, subset_size, saliency

    def subsets(self, maps):
        """LongTensor [N, runs, subset_size]: the pixel subsets of each map.

        Run r of a map is the first ``subset_size`` entries of the r-th random
        permutation of its pixels drawn from one generator per map, seeded by
        sha256 of ``seed * 100003 + 1`` and the map's bytes
        (:func:`.kernels.row_generators`): the same map gets the same subsets
        in any batch, runs are independent draws without replacement (as
        Quantus' ``np.random.choice(..., replace=False)``). One hash per map
        and one permutation per run, not a hash and a sort of P keys per run.
        """
        import torch

        from .kernels import row_generators

        n, pixels = maps.shape[0], maps[0].numel()
        size = min(self.subset_size, pixels)
        draws = torch.empty(n, self.runs, size, dtype=torch.int64)
        for image, generator in enumerate(row_generators(maps, seed=self.seed * 100003 + 1)):
            for run in range(self.runs):
                draws[image, run] = torch.randperm(pixels, generator=generator)[:size]
        return draws

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        from .kernels import pearson, saliency_maps, target_outputs

        maps = saliency_maps(attributions, self.saliency)
        n, channels, height, width = inputs.shape
        flat_maps = maps.reshape(n, -1)
        subsets = self.subsets(maps)  # [N, R, S]
        sums = torch.gather(flat_maps[:, None, :].expand(-1, self.runs, -1), 2, subsets).sum(dim=2)  # [N, R]
        base = baseline_images(inputs, self.baseline, self.sigma).to(inputs.dtype)
        targets = torch.as_tensor(targets).view(-1)
        image_of = torch.arange(n).repeat_interleave(self.runs)

        def make_batch(index):
            image, run = index // self.runs, index % self.runs
            removed = torch.zeros(len(index), height * width, dtype=torch.bool)
            removed.scatter_(1, subsets[image, run], True)
            removed = removed.view(-1, 1, height, width)
            return torch.where(removed, base[image], inputs[image])

        perturbed = target_outputs(model, n * self.runs, make_batch, image_of, targets, self.forward_batch,
                                   self.output == "probability").view(n, self.runs)
        drops = self.outputs(model, inputs, targets)[:, None] - perturbed
        return MetricResult(pearson(sums, drops))


class MonotonicityCorrelation(_Perturbing):
    """Spearman correlation of each pixel group's attribution with the output's squared change when only
    that group is replaced (Nguyen & Martinez 2020; Quantus ``MonotonicityCorrelation``). Higher is better.

    Pixels are sorted by the map (ascending; ties in the seeded random order)
    and cut into groups of ``features_in_step`` (256 px: 16 groups, one forward pass each, on
    64 x 64; Quantus' default 1 px costs 4096); group g's variance is
    (f(x with group g replaced) - f(x))^2 / f(x)^2. Options as
    ``faithfulness-correlation`` plus ``features_in_step``; ``output`` defaults to
    ``probability`` and ``saliency`` to ``signed``, as Quantus.
    """

    name = "monotonicity-correlation"
    description = "Nguyen & Martinez: Spearman of group attributions with the output change when each group is removed (higher is better)."
    higher_is_better = True

    def __init__(self, features_in_step: int = 256, saliency: str = "signed", output: str = "probability",
                 eps: float = 1e-5, **unknown: Any):
        features_in_step = self._check_number(self.name, "features_in_step", features_in_step, 1, integer=True)
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES)
        eps = self._check_number(self.name, "eps", eps, 0.0)
        super().__init__({"features_in_step": features_in_step, "saliency": saliency, "eps": eps}, output=output, **unknown)
        self.features_in_step, self.saliency, self.eps = features_in_step, saliency, eps

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import math

        import torch

        from .base import TIE_SEED
        from .kernels import descending_order, saliency_maps, spearman, target_outputs

        maps = saliency_maps(attributions, self.saliency)
        n, channels, height, width = inputs.shape
        pixels = height * width
        ascending = descending_order(-maps, TIE_SEED)  # [N, P], least important first
        groups = math.ceil(pixels / self.features_in_step)
        group_of_rank = torch.arange(pixels) // self.features_in_step
        group = torch.empty_like(ascending)
        group.scatter_(1, ascending, group_of_rank.expand(n, pixels))  # group of each pixel
        flat_maps = maps.reshape(n, -1)
        attributions_per_group = torch.zeros(n, groups, dtype=torch.float64).scatter_add_(1, group, flat_maps)
        base = baseline_images(inputs, self.baseline, self.sigma).to(inputs.dtype)
        targets = torch.as_tensor(targets).view(-1)
        image_of = torch.arange(n).repeat_interleave(groups)

        def make_batch(index):
            image, step = index // groups, index % groups
            removed = (group[image] == step.view(-1, 1)).view(-1, 1, height, width)
            return torch.where(removed, base[image], inputs[image])

        perturbed = target_outputs(model, n * groups, make_batch, image_of, targets, self.forward_batch,
                                   self.output == "probability").view(n, groups)
        original = self.outputs(model, inputs, targets)
        inverse = torch.where(original.abs() >= self.eps, 1.0 / original.abs(), torch.ones_like(original)) ** 2
        variances = (perturbed - original[:, None]) ** 2 * inverse[:, None]
        return MetricResult(spearman(attributions_per_group, variances))


#: Neighbour offsets (dy, dx) and weights of ROAD's noisy linear imputation (Rong et al. 2022):
#: the four direct neighbours weigh 1/6, the four diagonal ones 1/12.
IMPUTATION_WEIGHTS = (((0, 1), 1 / 6), ((0, -1), 1 / 6), ((1, 0), 1 / 6), ((-1, 0), 1 / 6),
                      ((1, 1), 1 / 12), ((1, -1), 1 / 12), ((-1, 1), 1 / 12), ((-1, -1), 1 / 12))


def linear_imputation(image, removed):
    """Fill the ``removed`` pixels of ``image`` [C, H, W] so each is the weighted mean of its neighbours.

    One sparse linear system per image (scipy): for a removed pixel i,
    sum_j w_ij (x_i - x_j) = 0 over its in-image neighbours j, the known
    neighbours' values moved to the right-hand side. ``removed``: bool [H, W].
    Returns float64 numpy [C, H, W].
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    values = np.asarray(image, dtype=np.float64)
    channels, height, width = values.shape
    removed = np.asarray(removed, dtype=bool)
    ys, xs = np.nonzero(removed)
    count = ys.size
    out = values.copy()
    if count == 0:
        return out
    variable = -np.ones((height, width), dtype=np.int64)
    variable[ys, xs] = np.arange(count)
    rows, cols, data = [], [], []
    diagonal = np.zeros(count)
    rhs = np.zeros((count, channels))
    for (dy, dx), weight in IMPUTATION_WEIGHTS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        i = np.flatnonzero(inside)
        ny, nx = ny[inside], nx[inside]
        diagonal[i] += weight
        neighbour = variable[ny, nx]
        unknown = neighbour >= 0
        rows.append(i[unknown]); cols.append(neighbour[unknown]); data.append(np.full(unknown.sum(), -weight))
        rhs[i[~unknown]] += weight * values[:, ny[~unknown], nx[~unknown]].T
    rows.append(np.arange(count)); cols.append(np.arange(count)); data.append(diagonal)
    system = coo_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(count, count)).tocsr()
    solution = spsolve(system, rhs)
    out[:, ys, xs] = np.asarray(solution).reshape(count, channels).T
    return out


class ROAD(_Perturbing):
    """ROAD, most relevant first (Rong et al. 2022): the output as the top p % of pixels are removed and
    *imputed* from their neighbours (noisy linear imputation), averaged over p. Lower is better.

    Removing pixels by imputation instead of a fixed baseline keeps the
    removal itself from leaking the mask's shape (ROAD's point). Options:
    ``percentages`` (``"10,30,50,70,90"``: one sparse solve and one forward pass each per image), ``noise`` (0.01: Gaussian noise on the imputed
    values, as Rong et al. and Quantus), ``output`` (``probability`` default; ``accuracy``
    = whether the prediction stays the explained class, as Quantus), ``saliency`` (abs), ``seed``.
    Tied pixels at the cut go in the seeded random order.
    """

    name = "road"
    description = "Rong et al. ROAD (MoRF): probability of the class as the top pixels are imputed from their neighbours (lower is better)."
    higher_is_better = False

    def __init__(self, percentages: str | list = "10,30,50,70,90", noise: float = 0.01, saliency: str = "abs",
                 output: str = "probability", **unknown: Any):
        if isinstance(percentages, str):
            try:
                percentages = [float(p) for p in percentages.replace(";", ",").split(",") if p.strip()]
            except ValueError:
                percentages = []
        percentages = [float(p) for p in percentages] if isinstance(percentages, (list, tuple)) else []
        if not percentages or any(not 0 < p < 100 for p in percentages):
            raise UsageError(f"attribution metric 'road': percentages must be numbers between 0 and 100, got {percentages!r}",
                             "e.g. --metric-option road.percentages=10,30,50")
        noise = self._check_number(self.name, "noise", noise, 0.0)
        self._check_choice(self.name, "saliency", saliency, SALIENCY_MODES)
        self._check_choice(self.name, "output", output, ("probability", "accuracy"))
        super().__init__({"percentages": percentages, "noise": noise, "saliency": saliency, "road_output": output},
                         output="probability", **unknown)
        self.percentages, self.noise, self.saliency, self.road_output = percentages, noise, saliency, output

    def perturbed(self, inputs, attributions):
        """float32 [N, len(percentages), C, H, W]: each input with its top p % pixels imputed (plus noise)."""
        import numpy as np
        import torch

        from .base import TIE_SEED
        from .kernels import descending_order, row_generators, saliency_maps

        n, channels, height, width = inputs.shape
        order = descending_order(saliency_maps(attributions, self.saliency), TIE_SEED).numpy()
        generators = row_generators(inputs, self.seed)
        out = np.empty((n, len(self.percentages), channels, height, width), dtype=np.float32)
        for i in range(n):
            image = inputs[i].detach().cpu().numpy()
            for j, percentage in enumerate(self.percentages):
                count = int(round(percentage / 100 * height * width))
                removed = np.zeros(height * width, dtype=bool)
                removed[order[i, :count]] = True
                removed = removed.reshape(height, width)
                filled = linear_imputation(image, removed)
                noise = torch.randn((channels, int(removed.sum())), generator=generators[i], dtype=torch.float64).numpy()
                filled[:, removed] += self.noise * noise
                out[i, j] = filled
        return torch.from_numpy(out)

    def evaluate_batch(self, *, inputs, targets, attributions, masks, model, method):
        import torch

        perturbed = self.perturbed(inputs, attributions)
        n, steps = perturbed.shape[:2]
        flat = perturbed.reshape(n * steps, *inputs.shape[1:])
        targets = torch.as_tensor(targets).view(-1)
        device = next((p.device for p in model.parameters()), inputs.device)
        with torch.no_grad():
            logits = torch.cat([model(flat[k : k + self.forward_batch].to(device)).to(torch.float64).cpu()
                                for k in range(0, len(flat), self.forward_batch)])
        chosen = targets.repeat_interleave(steps).view(-1, 1)
        if self.road_output == "accuracy":
            values = (logits.argmax(dim=1, keepdim=True) == chosen).to(torch.float64)
        else:
            values = torch.softmax(logits, dim=1).gather(1, chosen)
        return MetricResult(values.view(n, steps).mean(dim=1))
