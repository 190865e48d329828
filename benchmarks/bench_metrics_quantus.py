"""The attribution metrics Quantus 0.6.0 also has: ours vs Quantus on the same arrays, in one run.

Data: the shipped fer-cnn, 64 seeded uniform-noise 64x64 images, their
predicted classes, and input x gradient maps (one signed map per image);
AU-like masks: a fixed 20x40 px box. Each case runs our metric and the
Quantus metric with the same settings (tests/test_metrics_vs_quantus.py
checks they give the same numbers on identical arrays, with our subsets or
noise replayed into Quantus; here Quantus draws its own where it draws).
Deterministic metrics are asserted equal here too before timing.

The two sides **alternate** (ours, Quantus, ours, Quantus, ...) ``repeats``
times and each keeps its best, so a load change on a shared machine hits
both alike. Both wall time (``time.perf_counter``) and CPU time of this
process (``time.process_time``, much less sensitive to other processes)
are recorded; ``ratio`` = quantus_s / ours_s on wall time, ``cpu_ratio``
the same on CPU time (higher: ours faster). One torch thread on both sides
(Quantus' numpy kernels run on one thread). Faithfulness and monotonicity
correlation spend almost all their time in the model's forward passes, the
same ones on both sides, so their notes also give the CPU time of those
forward passes alone (a third side in the rotation): the floor neither side
can go below.

Run alone (prints JSON rows; ``--write-doc`` also rewrites the table under
"metrics vs Quantus" in docs/performance.md)::

    python benchmarks/bench_metrics_quantus.py [--quick] [--repeats N] [--only a,b] [--write-doc]

Full run: about 4 minutes on an idle 2-core machine (repeats 3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START = "<!-- quantus-table:start -->"
END = "<!-- quantus-table:end -->"


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


def _timed(function) -> tuple[float, float, object]:
    """(wall s, CPU s of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = function()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def alternate(sides: dict, repeats: int) -> dict:
    """Call each of ``sides`` ({name: function}) in turn, ``repeats`` rounds.

    Returns ``{name}_s`` and ``{name}_cpu_s`` (the best wall and CPU time of each side) and ``{name}`` (its last result).
    """
    best: dict = {}
    for _ in range(repeats):
        for side, function in sides.items():
            wall, cpu, best[side] = _timed(function)
            best[f"{side}_s"] = min(best.get(f"{side}_s", float("inf")), wall)
            best[f"{side}_cpu_s"] = min(best.get(f"{side}_cpu_s", float("inf")), cpu)
    return best


def _row(case: str, timing: dict, baseline: str, notes: str) -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "area": "metrics-vs-quantus", "case": case, "ours_s": timing["ours_s"], "baseline": baseline,
        "baseline_s": timing["theirs_s"], "ratio": timing["theirs_s"] / timing["ours_s"], "peak_mb": None,
        "ours_cpu_s": timing["ours_cpu_s"], "baseline_cpu_s": timing["theirs_cpu_s"],
        "cpu_ratio": timing["theirs_cpu_s"] / timing["ours_cpu_s"], "load_average_1min": load,
        "notes": (f"ratio = baseline_s / ours_s (wall; CPU: {timing['theirs_cpu_s']:.3g} / {timing['ours_cpu_s']:.3g} s "
                  f"= {timing['theirs_cpu_s'] / timing['ours_cpu_s']:.2f}); {notes}; 1-min load {load:.1f}"),
    }


def run(quick: bool = False, repeats: int | None = None, only: list[str] | None = None) -> list[dict]:
    import quantus
    import torch

    from interpret_core import get_attribution_metric

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Quantus' numpy kernels run on one thread; the models of both sides do too
    try:
        return _rows(quantus, get_attribution_metric, quick, repeats or (1 if quick else 3), only)
    finally:
        torch.set_num_threads(threads)


def _rows(quantus, get_attribution_metric, quick: bool, repeats: int, only: list[str] | None) -> list[dict]:
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
        if only and name not in only:
            continue
        metric = get_attribution_metric(name, **options)

        def ours(metric=metric):
            return metric(inputs=x, targets=y, attributions=a, masks=masks, model=net, method=method)

        def theirs(make_quantus=make_quantus, extra=extra):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(make_quantus()(model=net, x_batch=xs, y_batch=ys, a_batch=as_.copy(), s_batch=ss,
                                                 device="cpu", **extra), dtype=np.float64)

        sides = {"ours": ours, "theirs": theirs}
        if name in FORWARD_BOUND:
            sides["floor"] = _forward_floor(net, x, FORWARD_BOUND[name](options, len(x), x[0].numel()))
        timing = alternate(sides, repeats)
        if deterministic:
            np.testing.assert_allclose(timing["ours"], timing["theirs"], rtol=1e-4, atol=1e-6)
        floor = (f"; the same forward passes alone: {timing['floor_cpu_s']:.3g} s CPU" if "floor_cpu_s" in timing else "")
        rows.append(_row(name, timing, "Quantus 0.6.0",
                         f"{images} images, 1 torch thread, alternating, best of {repeats}{floor}; "
                         + ("scores asserted equal" if deterministic else "random draws: equality is checked in the tests"))
                    | {"floor_cpu_s": timing.get("floor_cpu_s")})
    return rows


#: Cases whose cost is the model's forward passes: how many images they push through it (options, N, pixels).
FORWARD_BOUND = {
    "faithfulness-correlation": lambda options, n, pixels: n * (options["runs"] + 1),
    "monotonicity-correlation": lambda options, n, pixels: n * (-(-pixels // options["features_in_step"]) + 1),
}


def _forward_floor(net, x, count: int):
    """A plain no-grad forward of ``count`` images (x repeated) in passes of 64, as both sides: what neither can avoid."""
    import torch

    images = x.repeat((count + len(x) - 1) // len(x), 1, 1, 1)[:count]

    def forward():
        with torch.no_grad():
            for first in range(0, count, 64):
                net(images[first : first + 64])

    return forward


def render_table(rows: list[dict]) -> str:
    """The Markdown table between the markers: one line per row, wall and CPU ratios, the load."""
    lines = ["| metric | ours (s) | Quantus (s) | ratio (wall) | ours CPU (s) | Quantus CPU (s) | ratio (CPU) "
             "| forward passes alone, CPU (s) | 1-min load | check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        check = row["notes"].split("; ")[-2] if "; " in row["notes"] else ""
        floor = f"{row['floor_cpu_s']:.3f}" if row.get("floor_cpu_s") is not None else "-"
        lines.append(f"| `{row['case']}` | {row['ours_s']:.3f} | {row['baseline_s']:.3f} | {row['ratio']:.2f} | "
                     f"{row['ours_cpu_s']:.3f} | {row['baseline_cpu_s']:.3f} | {row['cpu_ratio']:.2f} | {floor} | "
                     f"{row['load_average_1min']:.1f} | {check} |")
    return "\n".join(lines)


def rewrite_doc(rows: list[dict], doc: Path = DOC) -> None:
    """Replace the text between the quantus-table markers in docs/performance.md."""
    import datetime
    import platform

    sys.path.insert(0, str(doc.parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import replace_marked

    from interpret_core.util.io import write_text

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"Measured {stamp} by `python benchmarks/bench_metrics_quantus.py --write-doc` "
            f"({os.cpu_count()} CPUs, Python {platform.python_version()}):")
    text = doc.read_text(encoding="utf-8")
    write_text(doc, replace_marked(text, START, END, f"{head}\n\n{render_table(rows)}", doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 images, 10 subsets, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="alternations per case (default 3; 1 with --quick)")
    parser.add_argument("--only", help="comma-separated metric names")
    parser.add_argument("--write-doc", action="store_true", help="rewrite the table in docs/performance.md")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, repeats=args.repeats, only=args.only.split(",") if args.only else None)
    for row in rows:
        print(json.dumps(row))
    if args.write_doc:
        rewrite_doc(rows)
        print(f"rewrote the table in {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
