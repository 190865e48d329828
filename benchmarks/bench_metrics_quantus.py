"""The attribution metrics Quantus 0.6.0 also has: ours vs Quantus on the same arrays, in one run.

Data: the shipped fer-cnn, 64 seeded uniform-noise 64x64 images, their
predicted classes, and input x gradient maps (one signed map per image);
AU-like masks: a fixed 20x40 px box. Each case runs our metric and the
Quantus metric with the same settings (tests/test_metrics_vs_quantus.py
checks they give the same numbers on identical arrays, with our subsets or
noise replayed into Quantus; here Quantus draws its own where it draws).
Deterministic metrics are asserted equal here too before timing.

``ratio`` = quantus_s / ours_s (higher: ours faster). Times: best of 2.
Run alone: ``python benchmarks/bench_metrics_quantus.py [--quick]``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def _setup(images: int):
    import numpy as np
    import torch

    from interpret_core import get_model

    torch.manual_seed(0)
    model = get_model("fer-cnn")
    net = model.module
    x = torch.rand(images, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    inputs = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(inputs).gather(1, y.view(-1, 1)).sum(), inputs)
    a = (grad * x).detach()
    masks = torch.zeros(images, 64, 64, dtype=torch.bool)
    masks[:, 36:56, 12:52] = True
    return net, x, y, a, masks, np


class _InputTimesGradient:
    name = "input-x-gradient"

    def attribute(self, model, inputs, target):
        import torch

        inputs = inputs.detach().clone().requires_grad_(True)
        chosen = model(inputs).gather(1, torch.as_tensor(target).view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(chosen, inputs)
        return (grad * inputs).detach()


def _best(fn, repeats: int = 2) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(quick: bool = False) -> list[dict]:
    import quantus

    from interpret_core import get_attribution_metric

    import torch

    torch.set_num_threads(1)  # Quantus' numpy kernels run on one thread; the models of both sides do too
    images = 8 if quick else 64
    net, x, y, a, masks, np = _setup(images)
    xs, ys, as_, ss = x.numpy(), y.numpy(), a.numpy(), masks[:, None].numpy()
    method = _InputTimesGradient()

    def quantus_explain(model, inputs, targets, **_):
        import torch

        return method.attribute(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    runs = 10 if quick else 100
    samples = 2 if quick else 8
    cases = [
        ("sparseness", {}, lambda: quantus.Sparseness(disable_warnings=True), {}, True),
        ("complexity", {}, lambda: quantus.Complexity(disable_warnings=True), {}, True),
        ("au-top-k-intersection", {"k": 82}, lambda: quantus.TopKIntersection(k=82, abs=True, disable_warnings=True), {}, True),
        ("au-auc", {}, lambda: quantus.AUC(abs=True, disable_warnings=True), {}, True),
        ("faithfulness-correlation", {"runs": runs, "subset_size": 64, "baseline": "zero"},
         lambda: quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=64, perturb_baseline=0.0, abs=False, normalise=False,
                                                 return_aggregate=False, disable_warnings=True), {"softmax": False}, False),
        ("monotonicity-correlation", {"features_in_step": 64, "baseline": "zero"},
         lambda: quantus.MonotonicityCorrelation(features_in_step=64, nr_samples=1, perturb_baseline=0.0, abs=False,
                                                 normalise=False, disable_warnings=True), {"softmax": True}, True),
        ("max-sensitivity", {"samples": samples, "radius": 0.02, "normalise": False},
         lambda: quantus.MaxSensitivity(nr_samples=samples, lower_bound=0.02, normalise=False, abs=False, disable_warnings=True,
                                        return_nan_when_prediction_changes=False),
         {"explain_func": quantus_explain}, False),
        ("local-lipschitz", {"samples": samples, "sigma": 0.02, "normalise": False},
         lambda: quantus.LocalLipschitzEstimate(nr_samples=samples, perturb_std=0.02, normalise=False, abs=False,
                                                disable_warnings=True, return_nan_when_prediction_changes=False),
         {"explain_func": quantus_explain}, False),
    ]
    rows = []
    for name, options, make_quantus, extra, deterministic in cases:
        metric = get_attribution_metric(name, **options)

        def ours():
            return metric(inputs=x, targets=y, attributions=a, masks=masks, model=net, method=method)

        def theirs():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(make_quantus()(model=net, x_batch=xs, y_batch=ys, a_batch=as_.copy(), s_batch=ss,
                                                 device="cpu", **extra), dtype=np.float64)

        ours_s, ours_scores = _best(ours)
        quantus_s, quantus_scores = _best(theirs)
        if deterministic:
            np.testing.assert_allclose(ours_scores, quantus_scores, rtol=1e-4, atol=1e-6)
        rows.append({
            "area": "metrics-vs-quantus", "case": name, "ours_s": ours_s, "baseline": "Quantus 0.6.0",
            "baseline_s": quantus_s, "ratio": quantus_s / ours_s, "peak_mb": None,
            "notes": (f"{images} images, 1 torch thread; ratio = quantus_s / ours_s, best of 2; "
                      + ("scores asserted equal" if deterministic else "random draws: equality is checked in the tests")),
        })
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
