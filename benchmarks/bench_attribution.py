"""Attribution speed and memory: our batched deconvnet / guided backprop vs Captum.

Cases (fer-cnn with its shipped weights, or seeded untrained weights where
none are shipped; 64 grey 64x64 uniform-noise images, seeded):

* ``units <layer> <rule>``: every unit of the layer projected at each image's
  argmax. Ours: ``get_attribution(rule).attribute_units(net, x, layer, all
  units)`` (batched over (image, unit) pairs, inputs cropped to receptive
  fields). Baseline: a loop of ``captum.attr.NeuronDeconvolution`` (or
  ``NeuronGuidedBackprop``) calls, one per unit, each batched over the images,
  ``neuron_selector`` = that unit's per-image maximum. The two results are
  asserted equal (allclose).
* ``class deconv`` / ``class guided-backprop``: class-level maps of the 64
  images vs ``captum.attr.Deconvolution`` / ``GuidedBackprop``.

``ratio`` = baseline_s / ours_s (higher is better for us). Times are the best
of 2 runs for unit cases and of 5 for class cases, ours and Captum's
alternating. ``peak_mb`` /
``baseline_peak_mb``: peak resident memory above the level before one call, sampled every millisecond from
``/proc/self/statm`` by a thread, in a fresh subprocess per (case,
implementation) after the model and data are loaded and one warm-up call --
torch's CPU allocator is invisible to tracemalloc, and ``ru_maxrss`` is a
lifetime peak that the imports already exceed.

Run alone: ``python benchmarks/bench_attribution.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

LAYERS = ("conv1", "conv2", "conv3")
_MODEL_STATE: dict[str, str] = {}


def _setup(images: int):
    import torch

    from interpret_core import get_model

    torch.manual_seed(0)
    model = get_model("fer-cnn")
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(images, *model.input_size, generator=generator)
    _MODEL_STATE["weights"] = "shipped weights" if model.card is not None else "seeded untrained weights"
    return model.module, x


def _ours_units(net, x, layer, rule="deconv", units=None):
    """Our projections of ``units`` (default: every unit) of ``layer``: [N, U, C, H, W]."""
    from interpret_core import get_attribution

    return get_attribution(rule).attribute_units(net, x, layer, units)


def _captum_units(net, x, layer, rule="deconv", units=None):
    """The same with Captum: one ``NeuronDeconvolution`` / ``NeuronGuidedBackprop`` call per unit."""
    import torch
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    module = dict(net.named_modules())[layer]
    method = (NeuronDeconvolution if rule == "deconv" else NeuronGuidedBackprop)(net, module)
    maps = []
    chosen = range(_unit_count(net, x, layer)) if units is None else units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit in chosen:
            maps.append(method.attribute(x, neuron_selector=lambda out, u=unit: out[:, u].flatten(1).max(dim=1).values))
    return torch.stack(maps, dim=1)


def _unit_count(net, x, layer):
    import torch

    from interpret_core.nn.hooks import capture_outputs

    with torch.no_grad(), capture_outputs(net, [layer]) as captured:
        net(x[:1])
    return int(captured[layer].shape[1])


def _ours_class(net, x, rule):
    from interpret_core import get_attribution

    return get_attribution(rule).attribute(net, x, 3)


def _captum_class(net, x, rule):
    import captum.attr

    cls = captum.attr.Deconvolution if rule == "deconv" else captum.attr.GuidedBackprop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(net).attribute(x, target=3)


def _call(case: str, impl: str, net, x):
    """``case`` is ``"units <layer> <rule>"`` or ``"class <rule>"``."""
    kind, *args = case.split()
    if kind == "units":
        return (_ours_units if impl == "ours" else _captum_units)(net, x, *args)
    return (_ours_class if impl == "ours" else _captum_class)(net, x, *args)


def _timed_pair(ours, baseline, repeats: int):
    """Results of the first calls and best times of ``ours`` and ``baseline``.

    The two alternate (ours, baseline, ours, ...), so a burst of load on a
    shared machine hits both rather than one.
    """
    results: dict[str, object] = {}
    best = {"ours": float("inf"), "baseline": float("inf")}
    for _ in range(repeats):
        for key, fn in (("ours", ours), ("baseline", baseline)):
            start = time.perf_counter()
            value = fn()
            best[key] = min(best[key], time.perf_counter() - start)
            results.setdefault(key, value)
    return results["ours"], best["ours"], results["baseline"], best["baseline"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure_peak(case: str, impl: str, images: int) -> float:
    """In this process: peak resident memory above the level before one call, in MB.

    A thread samples the current RSS (``/proc/self/statm``) every millisecond
    while the call runs; torch's CPU allocations are invisible to tracemalloc,
    and ``ru_maxrss`` is a lifetime peak that the imports may already exceed.
    """
    import threading

    net, x = _setup(images)
    _call(case, impl, net, x[:2])  # warm-up: lazy imports, allocator pools
    base = _rss_mb()
    peak = [base]
    running = [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        _call(case, impl, net, x)
    finally:
        running[0] = False
        thread.join()
    return max(peak[0], _rss_mb()) - base


def _peak_mb(case: str, impl: str, images: int) -> float | None:
    """:func:`_measure_peak` in a fresh interpreter (so earlier cases leave no pools behind)."""
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import bench_attribution as b\n"
        f"print(json.dumps(b._measure_peak({case!r}, {impl!r}, {images})))\n"
    )
    if not os.path.exists("/proc/self/statm"):
        return None
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=True)
        return round(float(done.stdout.strip().splitlines()[-1]), 1)
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows (see the module docstring)."""
    import torch

    images = 16 if quick else 64
    net, x = _setup(images)
    threads = torch.get_num_threads()
    _call("class deconv", "ours", net, x[:2])  # warm-up: lazy imports
    _call("class deconv", "captum", net, x[:2])
    rows = []
    cases = [f"units {layer} {rule}" for rule in ("deconv", "guided-backprop") for layer in LAYERS]
    cases += ["class deconv", "class guided-backprop"]
    for case in cases:
        repeats = 1 if quick else (2 if case.startswith("units") else 5)
        ours, ours_s, reference, baseline_s = _timed_pair(
            lambda: _call(case, "ours", net, x), lambda: _call(case, "captum", net, x), repeats
        )
        # Identical results, or the timing means nothing.
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
        kind, *args = case.split()
        rule = args[-1]
        if kind == "units":
            label = f"units {args[0]} {rule} ({images} images x {ours.shape[1]} units)"
            baseline = f"captum {'NeuronDeconvolution' if rule == 'deconv' else 'NeuronGuidedBackprop'}, one call per unit"
        else:
            label = f"class {rule} ({images} images)"
            baseline = f"captum {'Deconvolution' if rule == 'deconv' else 'GuidedBackprop'}"
        rows.append(
            {
                "area": "attribution",
                "case": label,
                "ours_s": round(ours_s, 4),
                "baseline": baseline,
                "baseline_s": round(baseline_s, 4),
                "ratio": round(baseline_s / ours_s, 2),
                "peak_mb": None if quick else _peak_mb(case, "ours", images),
                "baseline_peak_mb": None if quick else _peak_mb(case, "captum", images),
                "notes": f"fer-cnn ({_MODEL_STATE.get('weights')}), uniform-noise images, torch threads={threads}, best of {repeats}; "
                "ratio = baseline_s / ours_s; peak_mb / baseline_peak_mb = sampled RSS growth during one call "
                "(fresh subprocess); results asserted allclose",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
