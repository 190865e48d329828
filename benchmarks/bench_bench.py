"""Throughput of ``interp bench``: attribution methods and metrics, per image, against a forward pass.

Rows (benchmarks convention; here ``ratio = ours_s / baseline_s``: the cost
of one image in plain forward passes of the same model, lower is cheaper):

* ``method <name>``: ``Attribution.attribute`` on fer-cnn for the
  explained (predicted) class, 64 SynthFACS images in batches of 32 as the
  bench runs it, seconds per image; ``notes`` gives images/s.
* ``metric <name>``: the metric's cost per image on ``saliency`` maps (the
  sanity metrics re-run ``saliency``, so their cost scales with the method's).
* ``default interp bench`` (full run only): wall time of ``interp bench``
  with every default, in a fresh output folder, 2 torch threads, the default
  SynthFACS set already generated (the generation is timed in ``notes``).
  ``ratio = 600 / ours_s`` for this row (> 1: within the 10-minute target).

The baseline is a no-grad forward pass of the same images with the same
batch size and threads. Times are the best of 3 repeats (1 with --quick).
Run alone: ``python benchmarks/bench_bench.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

METHODS = (
    "saliency", "deconv", "guided-backprop", "input-x-gradient", "integrated-gradients", "deeplift",
    "occlusion", "grad-cam", "guided-grad-cam", "centre-gaussian", "random-map",
)
TARGET_S = 600.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _best(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _setup(images: int):
    """fer-cnn (shipped weights if any), ``images`` SynthFACS crops with masks, predicted targets."""
    import numpy as np
    import torch

    from interp_datasets.synthfacs import generate
    from interpret_core import get_dataset, get_model
    from interpret_core.analysis.sampling import stratified_indices
    from interpret_core.workflows.bench import union_mask

    root = tempfile.mkdtemp(prefix="bench-bench-")
    generate(root, subjects=6, seed=0)
    dataset = get_dataset("synthfacs", data_root=root)
    indices = stratified_indices(list(dataset.emotions), images, seed=0)
    samples = [dataset[int(i)] for i in indices]
    model = get_model("fer-cnn")
    inputs = model.to_input(np.stack([s.image for s in samples]))
    masks = []
    for sample in samples:
        union = union_mask(sample, sample.image.shape)
        masks.append(union if union is not None else np.ones(sample.image.shape, dtype=bool))
    with torch.no_grad():
        targets = model.module(inputs).argmax(dim=1)
    return model, inputs, targets, torch.as_tensor(np.stack(masks))


def _batched(function, inputs, batch_size: int = 32):
    import torch

    return torch.cat([function(inputs[i : i + batch_size], i) for i in range(0, len(inputs), batch_size)])


def _rows(quick: bool) -> list[dict]:
    import torch

    from interpret_core import get_attribution, get_attribution_metric, get_registry

    images = 16 if quick else 64
    repeats = 1 if quick else 3
    model, inputs, targets, masks = _setup(images)
    module = model.module
    threads = torch.get_num_threads()

    def forward():
        with torch.no_grad():
            _batched(lambda x, _i: module(x), inputs)

    forward()  # warm-up
    forward_s = _best(forward, repeats) / images
    rows = []
    available = set(get_registry().names("attribution"))
    saliency_maps = None
    for name in METHODS:
        if name not in available:
            continue
        method = get_attribution(name)

        def attribute(method=method):
            return _batched(lambda x, i: method.attribute(module, x, targets[i : i + len(x)]).detach(), inputs)

        try:
            maps = attribute()  # warm-up and result
            seconds = _best(attribute, repeats) / images
        except Exception as exc:  # a method that cannot run on fer-cnn is reported, not fatal
            rows.append({"area": "bench", "case": f"method {name}", "ours_s": None, "baseline": "forward pass",
                         "baseline_s": forward_s, "ratio": None, "peak_mb": _peak_mb(),
                         "notes": f"failed: {type(exc).__name__}: {exc}"})
            continue
        if name == "saliency":
            saliency_maps = maps
        rows.append({
            "area": "bench",
            "case": f"method {name} ({images} images)",
            "ours_s": seconds,
            "baseline": "forward pass (no grad), per image",
            "baseline_s": forward_s,
            "ratio": seconds / forward_s,
            "peak_mb": _peak_mb(),
            "notes": f"{1 / seconds:.0f} images/s; ratio = ours_s / baseline_s; threads={threads}; best of {repeats}",
        })
    if saliency_maps is not None:
        saliency = get_attribution("saliency")
        for name in get_registry().names("attribution-metric"):
            metric = get_attribution_metric(name)

            def score(metric=metric):
                return metric(inputs=inputs, targets=targets, attributions=saliency_maps,
                              masks=masks if metric.needs_masks else None, model=module, method=saliency)

            score()
            seconds = _best(score, repeats) / images
            rows.append({
                "area": "bench",
                "case": f"metric {name} on saliency maps ({images} images)",
                "ours_s": seconds,
                "baseline": "forward pass (no grad), per image",
                "baseline_s": forward_s,
                "ratio": seconds / forward_s,
                "peak_mb": _peak_mb(),
                "notes": f"options {getattr(metric, 'options', {})}; ratio = ours_s / baseline_s; best of {repeats}",
            })
    return rows


def _default_bench_row() -> dict:
    """Wall time of ``interp bench`` with every default (fresh output folder, 2 threads)."""
    from interpret_core import get_dataset

    started = time.perf_counter()
    get_dataset("synthfacs")  # generates the default set into the cache once
    generation_s = time.perf_counter() - started
    environment = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", INTERP_NO_PROGRESS="1")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from interpret_core.cli import main; sys.exit(main(sys.argv[1:]))",
             "bench", "--out", out, "--json"],
            capture_output=True, text=True, env=environment,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"area": "bench", "case": "default interp bench", "ours_s": None, "baseline": f"target {TARGET_S:.0f} s",
                "baseline_s": TARGET_S, "ratio": None, "peak_mb": None,
                "notes": f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"}
    result = json.loads(done.stdout)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "area": "bench",
        "case": "default interp bench (fer-cnn, default SynthFACS, 2 threads)",
        "ours_s": wall,
        "baseline": f"target {TARGET_S:.0f} s",
        "baseline_s": TARGET_S,
        "ratio": TARGET_S / wall,
        "peak_mb": peak,
        "notes": f"{result['images']['n']} images x {len(result['methods'])} methods x {len(result['metrics'])} metrics; "
        f"ratio = target / wall; default SynthFACS generation (once, cached) {generation_s:.0f} s",
    }


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows; ``quick`` uses 16 images, one repeat, and skips the default-bench row."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        rows = _rows(quick)
        if not quick:
            rows.append(_default_bench_row())
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(row))
