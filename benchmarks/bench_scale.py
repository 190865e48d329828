"""Real-world size: the unit scan's memory against N, and ResNet-18 at 224x224.

Rows (area ``scale``; the data are ``synthfacs-stream`` faces, rendered on
the fly, nothing on disk):

* ``scan memory, N=...`` (one row per N): :func:`scan_units` of ``fer-cnn``
  (shipped weights, 64x64 input, layers conv1-3 = 112 units) over N 64x64
  faces, batch 64, top-k 9, each N in a fresh Python process (1 torch
  thread); ``peak_mb`` is that process's ``ru_maxrss``, and ``notes`` give
  the RSS growth during the scan over the level after one warm-up batch
  (``/proc/self/statm`` sampled every 10 ms). ``ours_s`` is the
  scan's wall time, ``notes`` give its CPU time. The faces come from
  ``synthfacs-stream``, rendered as the scan asks for them (``--source
  stream``, the default: ~12.5 ms of CPU a face, so N = 10^5 is ~21 minutes
  on one core), or, with ``--source pool``, the stream's first 256 faces
  rendered once and repeated (face ``i`` is pool face ``i mod 256``): the scan
  keeps the same numbers either way, and the pool costs only the forward
  passes.
* ``scan memory slope``: the least-squares slope of that growth against N,
  divided by the 112 units: bytes kept per (image, unit), against the 12 the
  scan documents (float32 maximum + two int32 argmax coordinates);
  ``ratio = fitted / 12`` (1.0 = exactly as documented). Keeping the
  activation maps instead would cost 4 x h x w bytes per (image, unit)
  (4,096 on average over conv1-3 of fer-cnn at 64x64).
* ``scan vs forward, fer-resnet18 224x224``: :func:`scan_units` over the 5
  analysable layers (1024 units) against a plain batched no-grad forward pass
  over the same in-memory images and batches (untrained, seeded weights);
  ``ratio = ours_s / baseline_s`` (cost factor, target <= 1.2).
* ``units <layer> <rule>, fer-resnet18 224x224``: our batched
  ``attribute_units`` against Captum's one-call-per-unit
  ``NeuronDeconvolution`` / ``NeuronGuidedBackprop`` loop
  (``bench_attribution``'s two functions), on a few units of each layer;
  results asserted allclose; ``ratio = baseline_s / ours_s`` (higher = we
  are faster).

* ``pairs <layer> deconv, fer-resnet18 224x224``: the (image, unit) pairs
  the au-distance localiser asks for on the deep layers (several units per
  image; layer3's and layer4's receptive fields cover the face, so no crop),
  through ``attribute_unit_pairs`` (each image forwarded once, its pairs
  backpropagated in rounds) against the same pairs with every pair its own
  image copy (one forward pass per pair, the path before); results asserted
  allclose; ``ratio = baseline_s / ours_s``.
* ``interp run fer-resnet18 x synthfacs-stream``: the whole default command
  (deconv, au-distance) on ``--run-images`` faces (default 200) at 224x224 in
  a child process: wall and CPU time (``RUSAGE_CHILDREN``), the run's own
  phases (scan, metric, figures), against a plain forward pass over the same
  faces rendered beforehand; ``ratio = ours_s / baseline_s``.
* The memory rows also give glibc's heap accounting after the scan
  (``mallinfo2``): malloc'd bytes still live (the scan's arrays) and freed
  bytes the heap keeps resident for reuse, which RSS counts too.

Timings: ours and the baseline alternate, best of ``repeats`` by wall clock;
``notes`` also give the best CPU time (``time.process_time``, much less
sensitive to other processes on a shared machine) and the 1-minute load
average when the row was measured.

Run: ``python benchmarks/bench_scale.py`` (N = 10^3, 10^4, 10^5 streamed:
about 25 minutes of one core for the memory rows, nearly all of it rendering
111,000 faces at ~12.5 ms of CPU each, then ~5 minutes for the ResNet-18
rows and a few minutes for the pair and run rows; ``--source pool`` for the
memory rows in ~3 minutes; ``--images 1000 10000 30000`` for a shorter
curve), ``--only memory,scan,projections,pairs,run`` (any of them),
``--threads K`` (torch threads of the ResNet rows and the run), ``--quick``
(N = 200, 400, 800; few images), ``--record`` (replace this module's rows in
docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: What the scan documents keeping per (image, unit): float32 max + int32 (row, col).
DOCUMENTED_BYTES = 12
MEMORY_SIZES = (1_000, 10_000, 100_000)
QUICK_MEMORY_SIZES = (200, 400, 800)
#: Units of each fer-resnet18 layer projected in the projection rows (Captum needs one call per unit).
PROJECTED_UNITS = 4


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _paired(functions: dict, repeats: int, warm_up: bool = True) -> dict[str, dict[str, float]]:
    """Best wall and best CPU seconds of each function, called alternately ``repeats`` times (after one warm-up each)."""
    for function in functions.values() if warm_up else ():
        function()
    best = {name: {"wall": float("inf"), "cpu": float("inf")} for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            best[name]["wall"] = min(best[name]["wall"], time.perf_counter() - wall)
            best[name]["cpu"] = min(best[name]["cpu"], time.process_time() - cpu)
    return best


def _paired_row(case: str, baseline: str, best: dict[str, dict[str, float]], *, cost: bool, baseline_name: str,
                details: str, threads: int, repeats: int) -> dict:
    """A ResNet row from :func:`_paired`'s best times of ``"ours"`` and ``"baseline"``.

    ``cost``: ratio = ours / baseline (a cost factor, target <= 1.2); else baseline / ours (a speedup).
    ``details`` goes into the notes before the torch threads; ``baseline_name`` names the baseline's CPU time.
    """
    ours, base = best["ours"], best["baseline"]
    top, bottom = (ours, base) if cost else (base, ours)
    formula = "ours_s / baseline_s (target <= 1.2)" if cost else "baseline_s / ours_s"
    return {
        "area": "scale",
        "case": case,
        "ours_s": round(ours["wall"], 3),
        "baseline": baseline,
        "baseline_s": round(base["wall"], 3),
        "ratio": round(top["wall"] / bottom["wall"], 3),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notes": f"ratio = {formula}; CPU: ours {ours['cpu']:.2f} s, {baseline_name} {base['cpu']:.2f} s, "
                 f"ratio {top['cpu'] / bottom['cpu']:.3f}; {details}torch threads {threads}, best of {repeats}, "
                 f"alternating; untrained weights; load {_load()}",
    }


# -- memory against N -------------------------------------------------------------------
def _rss_bytes() -> int:
    """The current resident set size (``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_bytes() -> dict[str, int] | None:
    """glibc's heap accounting (``mallinfo2``): bytes malloc'd and still live, and bytes freed but kept by the allocator.

    ``live`` = in-use heap chunks + mmapped chunks (numpy and torch CPU
    buffers both come from malloc); ``retained`` = free chunks the heap keeps
    resident for reuse. None where glibc >= 2.33 is not the C library.
    """
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return {"live": int(info.uordblks + info.hblkhd), "retained": int(info.fordblks), "heap": int(info.arena)}


class _Pool:
    """``images`` faces served from a few pre-rendered ones (face ``i`` = ``pool[i % len(pool)]``), read by the scan in batches."""

    def __init__(self, pool: np.ndarray, images: int):
        self.pool, self.images = pool, images

    def __len__(self) -> int:
        return self.images

    def arrays(self, indices):
        indices = np.asarray(indices)
        return self.pool[indices % len(self.pool)], np.zeros(len(indices), dtype=np.int64)


def memory_child(images: int, source: str = "stream") -> dict:
    """In this process: scan ``images`` faces with fer-cnn; peak RSS and what the scan kept."""
    import torch

    from interpret_core import get_dataset, get_model
    from interpret_core.analysis.unit_scan import scan_units

    torch.set_num_threads(1)
    model = get_model("fer-cnn")
    size = int(model.input_size[-1])
    data = get_dataset("synthfacs-stream", images=images, size=size)
    if source == "pool":
        data = _Pool(data.arrays(np.arange(min(256, images)))[0], images)
    scan_units(model, data, model.layers, batch_size=64, top_k=9, indices=np.arange(min(64, images)))  # warm-up
    before = _rss_bytes()
    heap_before = _malloc_bytes()
    peak = [before]
    running = [True]

    def sample() -> None:  # the RSS growth over the level before the scan, sampled every 10 ms
        while running[0]:
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        scan = scan_units(model, data, model.layers, batch_size=64, top_k=9)
    finally:
        running[0] = False
        thread.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    heap_after = _malloc_bytes()  # the scan's transient buffers are freed by now; its arrays are live
    kept = sum(scan.maxima[layer].nbytes + scan.argmax[layer].nbytes for layer in scan.layers)
    return {
        "images": images,
        "units": int(sum(scan.units(layer) for layer in scan.layers)),
        "map_bytes_per_image": int(sum(4 * np.prod(scan.shapes[layer]) for layer in scan.layers)),
        "kept_bytes": int(kept),
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "growth_bytes": max(peak[0], _rss_bytes()) - before,
        # After the scan: malloc'd bytes still live and freed bytes the heap keeps, each over the level before it.
        "live_growth_bytes": None if heap_before is None else heap_after["live"] - heap_before["live"],
        "retained_growth_bytes": None if heap_before is None else heap_after["retained"] - heap_before["retained"],
        "wall_s": wall,
        "cpu_s": cpu,
        "size": size,
        "trained": model.card is not None,
        "source": source,
        "load": _load(),
    }


def _memory_point(images: int, source: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(images), "--source", source],
        capture_output=True, text=True, check=True, env=dict(os.environ, INTERP_NO_PROGRESS="1"),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _heap_note(point: dict) -> str:
    if point.get("live_growth_bytes") is None:
        return ""
    return (f"after the scan, malloc'd bytes still live +{point['live_growth_bytes'] / 2**20:.1f} MB and freed bytes the "
            f"heap keeps resident {point['retained_growth_bytes'] / 2**20:+.1f} MB (glibc mallinfo2); ")


def memory_rows(sizes, source: str = "stream") -> list[dict]:
    points = [_memory_point(int(n), source) for n in sizes]
    units = points[0]["units"]
    faces = "streamed faces" if source == "stream" else "256 streamed faces repeated"
    rows = []
    for point in points:
        rows.append({
            "area": "scale",
            "case": f"scan memory, {source}, N={point['images']:,} (fer-cnn {point['size']}x{point['size']}, conv1-3, {units} units)",
            "ours_s": round(point["wall_s"], 2),
            "baseline": None,
            "baseline_s": None,
            "ratio": None,
            "peak_mb": round(point["peak_bytes"] / 2**20, 1),
            "notes": f"peak_mb = ru_maxrss of a fresh process; RSS growth during the scan "
                     f"{point['growth_bytes'] / 2**20:.1f} MB; scan arrays {point['kept_bytes'] / 2**20:.1f} MB; "
                     f"{_heap_note(point)}CPU {point['cpu_s']:.1f} s; {faces}; 1 torch thread; "
                     f"load {point['load']}",
        })
    counts = np.array([p["images"] for p in points], dtype=np.float64)
    growth = np.array([p["growth_bytes"] for p in points], dtype=np.float64)
    peaks = np.array([p["peak_bytes"] for p in points], dtype=np.float64)
    slope = float(np.polyfit(counts, growth, 1)[0]) / units if len(points) > 1 else float("nan")
    peak_slope = float(np.polyfit(counts, peaks, 1)[0]) / units if len(points) > 1 else float("nan")
    maps = points[0]["map_bytes_per_image"] / units
    live = [p.get("live_growth_bytes") for p in points]
    live_note = ""
    if len(points) > 1 and all(v is not None for v in live):
        live_slope = float(np.polyfit(counts, np.array(live, dtype=np.float64), 1)[0]) / units
        live_note = f"; from the malloc'd bytes still live after the scan (glibc mallinfo2): {live_slope:.2f}"
    rows.append({
        "area": "scale",
        "case": f"scan memory slope, {source}, N={', '.join(f'{int(n):,}' for n in counts)}",
        "ours_s": None,
        "baseline": f"documented {DOCUMENTED_BYTES} bytes per (image, unit)",
        "baseline_s": None,
        "ratio": round(slope / DOCUMENTED_BYTES, 3),
        "peak_mb": None,
        "notes": f"fitted {slope:.2f} bytes per (image, unit) (least squares of the scan's RSS growth on N, / {units} "
                 f"units; from ru_maxrss instead: {peak_slope:.2f}{live_note}); ratio = fitted / {DOCUMENTED_BYTES}; "
                 f"keeping the activation maps would cost {maps:,.0f}; {faces}",
    })
    return rows


# -- ResNet-18 at 224x224 -------------------------------------------------------------------
def _resnet_and_images(images: int):
    import torch

    from interpret_core import get_dataset, get_model

    model = get_model("fer-resnet18")  # ships no weights: seeded, untrained
    data = get_dataset("synthfacs-stream", images=images, size=int(model.input_size[-1]))
    pixels, _ = data.arrays(np.arange(images))
    return model, pixels, torch.get_num_threads()


def scan_rows(images: int, repeats: int, batch_size: int = 16) -> list[dict]:
    from bench_au_distance import _InMemory, _plain_forward

    from interpret_core.analysis.unit_scan import scan_units

    model, pixels, threads = _resnet_and_images(images)
    data = _InMemory(pixels)
    best = _paired({
        "ours": lambda: scan_units(model, data, model.layers, batch_size=batch_size, top_k=9),
        "baseline": lambda: _plain_forward(model, pixels, batch_size),
    }, repeats)
    return [_paired_row(f"scan vs forward, fer-resnet18 224x224 ({images} images, 5 layers, 1024 units)",
                        "plain forward pass, same images and batches", best, cost=True, baseline_name="forward",
                        details=f"batch {batch_size}, ", threads=threads, repeats=repeats)]


def projection_rows(images: int, repeats: int, rules=("deconv", "guided-backprop")) -> list[dict]:
    import torch
    from bench_attribution import _captum_units, _ours_units

    model, pixels, threads = _resnet_and_images(images)
    net, x = model.module, model.to_input(pixels)
    _ours_units(net, x[:1], "stem", "deconv", [0])  # warm-up once (lazy imports); each pair below is then timed cold
    _captum_units(net, x[:1], "stem", "deconv", [0])
    rows = []
    for rule in rules:
        for layer in model.layers:
            units = list(range(PROJECTED_UNITS))
            results: dict[str, torch.Tensor] = {}

            def call(which, layer=layer, rule=rule, units=units):
                function = _ours_units if which == "ours" else _captum_units
                results[which] = function(net, x, layer, rule, units)

            best = _paired({"ours": lambda: call("ours"), "baseline": lambda: call("baseline")}, repeats, warm_up=False)
            torch.testing.assert_close(results["ours"], results["baseline"], atol=1e-5, rtol=1e-4)
            captum = "NeuronDeconvolution" if rule == "deconv" else "NeuronGuidedBackprop"
            rows.append(_paired_row(f"units {layer} {rule}, fer-resnet18 224x224 ({images} images x {len(units)} units)",
                                    f"captum {captum}, one call per unit", best, cost=False, baseline_name="captum",
                                    details="results asserted allclose; ", threads=threads, repeats=repeats))
    return rows


#: Pairs per image of the deep-layer pair rows: what the au-distance localiser asked for on 200 faces
#: (layer3: 332 pairs on 126 images, layer4: 692 on 136).
PAIRS_PER_IMAGE = {"layer3": 3, "layer4": 5}


def pair_rows(images: int, repeats: int) -> list[dict]:
    """Deep-layer (image, unit) pair projections: each image forwarded once vs once per pair (the path before)."""
    import torch

    from interpret_core import get_attribution

    model, pixels, threads = _resnet_and_images(images)
    net, x = model.module, model.to_input(pixels)
    method = get_attribution("deconv")
    rows = []
    for layer, per_image in PAIRS_PER_IMAGE.items():
        image_of = [i for i in range(images) for _ in range(per_image)]
        unit_of = [(37 * p + 11) % 256 for p in range(len(image_of))]  # spread over the layer, distinct per image
        results: dict[str, torch.Tensor] = {}

        def grouped(layer=layer, image_of=image_of, unit_of=unit_of):
            results["ours"] = method.attribute_unit_pairs(net, x, layer, image_of, unit_of)

        def per_pair(layer=layer, image_of=image_of, unit_of=unit_of):
            # Each pair its own copy of its image: one forward and one backward per pair, as before.
            results["baseline"] = method.attribute_unit_pairs(net, x[image_of], layer, range(len(image_of)), unit_of)

        best = _paired({"ours": grouped, "baseline": per_pair}, repeats)
        torch.testing.assert_close(results["ours"], results["baseline"], atol=1e-5, rtol=1e-4)
        rows.append(_paired_row(f"pairs {layer} deconv, fer-resnet18 224x224 ({images} images x {per_image} units)",
                                "the same pairs with one forward pass per pair (the path before)", best, cost=False,
                                baseline_name="before", details="whole-image path (the receptive field covers the face); "
                                "results asserted allclose; ", threads=threads, repeats=repeats))
    return rows


def run_rows(images: int) -> list[dict]:
    """``interp run --model fer-resnet18 --dataset synthfacs-stream`` (deconv, au-distance) on ``images`` faces, in a child process."""
    import shutil
    import tempfile

    from bench_au_distance import _plain_forward

    model, pixels, threads = _resnet_and_images(images)
    forward = _paired({"forward": lambda: _plain_forward(model, pixels, 64)}, 2)["forward"]
    out = Path(tempfile.mkdtemp(prefix="bench-scale-run-"))
    command = [sys.executable, "-c", "import sys; from interpret_core.cli import run; sys.exit(run())", "run", "--model", "fer-resnet18", "--dataset", "synthfacs-stream",
               "--dataset-option", f"images={images}", "--out", str(out / "run"), "--json"]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True, env=dict(os.environ, INTERP_NO_PROGRESS="1"))
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        results = json.loads((out / "run" / "results.json").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    timings = results["timings"]
    phases = ", ".join(f"{name[:-2]} {timings[name]:.1f} s" for name in ("scan_s", "metric_s", "figures_s") if name in timings)
    return [{
        "area": "scale",
        "case": f"interp run fer-resnet18 x synthfacs-stream ({images} faces at 224x224, deconv, au-distance)",
        "ours_s": round(wall, 1),
        "baseline": "plain forward pass over the same faces (rendered beforehand), batch 64",
        "baseline_s": round(forward["wall"], 3),
        "ratio": round(wall / forward["wall"], 1),
        "peak_mb": round(after.ru_maxrss / 1024, 1),
        "notes": f"ratio = ours_s / baseline_s (the whole command: rendering, scan, metric, figures); CPU: run "
                 f"{cpu:.1f} s, forward {forward['cpu']:.2f} s; phases (wall): {phases}; "
                 f"verdicts {results['summary'].get('verdicts')}; peak_mb = the command's ru_maxrss; "
                 f"torch threads {threads}; one run; untrained weights; load {_load()}",
    }]


def run(quick: bool = False, only: tuple[str, ...] = ("memory", "scan", "projections", "pairs", "run"), sizes=None,
        source: str = "stream", run_images: int = 200) -> list[dict]:
    """Benchmark rows (see the module docstring)."""
    rows: list[dict] = []
    if "memory" in only:
        rows += memory_rows(sizes or (QUICK_MEMORY_SIZES if quick else MEMORY_SIZES), source)
    if "scan" in only:
        rows += scan_rows(images=8 if quick else 64, repeats=1 if quick else 3)
    if "projections" in only:
        rows += projection_rows(images=2 if quick else 4, repeats=1 if quick else 2,
                                rules=("deconv",) if quick else ("deconv", "guided-backprop"))
    if "pairs" in only:
        rows += pair_rows(images=2 if quick else 4, repeats=1 if quick else 2)
    if "run" in only:
        rows += run_rows(images=run_images)
    return rows


def record(rows: list[dict]) -> None:
    """Replace this module's rows (area ``scale``) in docs/performance.md's table, keeping every other row."""
    from run_all import DOC, END, START, render_row, replace_marked

    from interpret_core.util.io import write_text

    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{DOC} has no {START} ... {END} markers")
    table = text.split(START, 1)[1].split(END, 1)[0]
    def key(case: str) -> str:  # what a row measures, without its sizes
        return case.split(", N=")[0].split(" (")[0]

    ours = {key(row["case"]) for row in rows}
    kept = [line for line in table.strip("\n").splitlines()
            if not (line.startswith("| scale | ") and key(line.split(" | ")[1]) in ours)]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for row in rows:
        kept.append(render_row({**row, "notes": f"{row['notes']}; measured {stamp} by "
                                "`python benchmarks/bench_scale.py`, not yet by run_all"}))
    write_text(DOC, replace_marked(text, START, END, "\n".join(kept), DOC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--only", default="memory,scan,projections,pairs,run",
                        help="comma-separated: memory, scan, projections, pairs, run")
    parser.add_argument("--run-images", type=int, default=200, help="faces of the `interp run` row (default 200)")
    parser.add_argument("--threads", type=int, help="torch threads of the ResNet rows and the run (default: torch's)")
    parser.add_argument("--images", type=int, nargs="+", help="the N of the memory rows (default 1000 10000 100000)")
    parser.add_argument("--source", choices=("stream", "pool"), default="stream",
                        help="memory rows: render every face (stream) or repeat 256 rendered ones (pool)")
    parser.add_argument("--record", action="store_true", help="replace this module's rows in docs/performance.md")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        print(json.dumps(memory_child(args.memory_child, args.source)))
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the `interp run` child
    only = tuple(part.strip() for part in args.only.split(","))
    rows = run(quick=args.quick, only=only, sizes=args.images, source=args.source, run_images=args.run_images)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.record:
        record(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
