"""Cost of the ``au-distance`` metric, and wall time of the default ``interp run``.

Rows (benchmarks convention; here ``ratio = ours_s / baseline_s``, the cost
factor over a plain forward pass, because the targets are stated that way):

* ``unit scan (fer-cnn, N images)``: :func:`scan_units` (forward hooks on
  conv1-3, per-unit max/argmax, streaming top-k) against a plain batched
  forward pass over the same in-memory images, both under
  ``torch.inference_mode`` with the same batch size and threads (target <= 1.5).
* ``au-distance total``: the whole metric with its defaults (scan, per-sequence
  Mann-Whitney/BH/controls, 5-fold held-out selection, projection peaks of
  the localised pool with deconvnet, shuffled-mask null, 200-resample subject
  bootstrap) against the same plain forward pass, on SynthFACS (target <= 2);
  a second row with ``locate=receptive-field`` (no projections) and, in the
  full run, a third with ``selection=paper`` (the paper's procedure).
* ``default interp run``: wall and CPU time of ``interp run --method deconv
  --metric au-distance`` with every default (fer-cnn, default SynthFACS set,
  all layers, figures, report), 2 torch threads, the data set already
  generated, a fresh output folder (so the scan is not reused). Target < 120 s.
  No baseline.

Each timed pair runs ours and the baseline alternately, best of ``--repeats``,
and records process CPU time (``time.process_time``: all threads of this
process, much less sensitive to other jobs on the machine than wall time)
beside wall time, and the 1-minute load average before and after.
``peak_mb`` is the process's peak resident memory after the row (coarse).

Run alone::

    python benchmarks/bench_au_distance.py [--quick | --metric-only] [--repeats N] [--with-run] [--write-doc]

``--metric-only``: the two au-distance rows on the default set; ``--with-run``
adds the default ``interp run``; ``--write-doc`` rewrites the table between
the ``au-distance-table`` markers in docs/performance.md. Each row is printed
as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START = "<!-- au-distance-table:start -->"
END = "<!-- au-distance-table:end -->"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> float:
    return round(os.getloadavg()[0], 2)


class _InMemory:
    """Minimal data set over an image array, with the bulk accessor the scan prefers."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self, indices):
        return self.images[np.asarray(indices)], np.zeros(len(indices), dtype=np.int64)


def _timed(function) -> tuple[float, float]:
    """(wall s, process CPU s) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _paired_best(baseline, ours, repeats: int) -> dict:
    """Best-of-``repeats`` wall and CPU times of two functions, run alternately (shared-machine load hits both)."""
    baseline()  # warm-up both (lazy imports, allocator, caches)
    ours()
    load_before = _load()
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
    for _ in range(repeats):
        for name, function in (("baseline", baseline), ("ours", ours)):
            times[name].append(_timed(function))
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
    return {
        "ours_s": best["ours"][0], "baseline_s": best["baseline"][0], "ratio": best["ours"][0] / best["baseline"][0],
        "ours_cpu_s": best["ours"][1], "baseline_cpu_s": best["baseline"][1],
        "cpu_ratio": best["ours"][1] / best["baseline"][1], "load_1min": [load_before, _load()], "repeats": repeats,
    }


def _timing_note(timing: dict) -> str:
    return (f"CPU {timing['ours_cpu_s']:.2f} s vs {timing['baseline_cpu_s']:.2f} s, CPU ratio {timing['cpu_ratio']:.2f}; "
            f"best of {timing['repeats']}, alternating; 1-min load {timing['load_1min'][0]}-{timing['load_1min'][1]}")


def _plain_forward(model, images: np.ndarray, batch_size: int) -> None:
    import torch

    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            model.module(model.to_input(images[start : start + batch_size]))


def _scan_row(model, images: np.ndarray, repeats: int, batch_size: int = 64) -> dict:
    from interpret_core.analysis.unit_scan import scan_units

    data = _InMemory(images)
    timing = _paired_best(
        lambda: _plain_forward(model, images, batch_size),
        lambda: scan_units(model, data, model.layers, batch_size=batch_size, top_k=9),
        repeats,
    )
    return {
        "area": "au-distance",
        "case": f"unit scan (fer-cnn, {len(images)} images, conv1-3)",
        **timing,
        "baseline": "plain forward pass, same images and batches",
        "peak_mb": _peak_mb(),
        "notes": "ratio = ours/baseline (cost factor; target <= 1.5); " + _timing_note(timing),
    }


def _metric_row(model, dataset, repeats: int, batch_size: int = 64, **options) -> dict:
    from interpret_core import get_attribution
    from interp_metrics.au_distance import AUDistance

    images = dataset.arrays(np.arange(len(dataset)))[0] if hasattr(dataset, "arrays") else np.stack([s.image for s in dataset])
    metric = AUDistance(batch_size=batch_size, **options)
    method = get_attribution("deconv")
    extra = {}

    def ours():
        result = metric.evaluate(model, dataset, model.layers, method=method)
        extra["projections"] = result.extra.get("projections")

    timing = _paired_best(lambda: _plain_forward(model, images, batch_size), ours, repeats)
    label = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
    return {
        "area": "au-distance",
        "case": f"au-distance total ({label}; SynthFACS {len(dataset)} images)",
        **timing,
        "baseline": "plain forward pass over the decoded images",
        "peak_mb": _peak_mb(),
        "notes": f"ratio = ours/baseline (target <= 2); {extra.get('projections')} unit projections; data set decoded "
        f"and cached beforehand; " + _timing_note(timing),
    }


def _default_run_row(generation_s: float | None) -> dict:
    """One default ``interp run`` into a fresh folder (its scan is computed, not reused)."""
    from interpret_core.workflows.run import RunConfig
    from interpret_core.workflows.run import run as interp_run

    with tempfile.TemporaryDirectory() as tmp:
        load_before = _load()
        box = {}
        wall, cpu = _timed(lambda: box.setdefault("results", interp_run(RunConfig(out=f"{tmp}/run"))))
    results = box["results"]
    timings = json.dumps({k: round(v, 2) for k, v in results["timings"].items()})
    generation = "" if generation_s is None else f"; data set load beforehand {generation_s:.1f} s"
    return {
        "area": "au-distance",
        "case": "default `interp run --method deconv --metric au-distance`",
        "ours_s": wall,
        "ours_cpu_s": cpu,
        "baseline": "none (target < 120 s)",
        "baseline_s": None,
        "ratio": None,
        "load_1min": [load_before, _load()],
        "peak_mb": _peak_mb(),
        "notes": (
            f"CPU {cpu:.1f} s; {results['dataset']['images']} images, {len(results['mapping'])} AUs mapped, "
            f"model trained: {results['model']['trained']}; timings {timings}{generation}; one run, "
            f"1-min load {load_before}-{_load()}"
        ),
    }


def run(quick: bool = False, metric_only: bool = False, repeats: int | None = None, with_run: bool = False) -> list[dict]:
    import torch

    torch.set_num_threads(2)
    from interpret_core import get_dataset, get_model

    torch.manual_seed(0)
    model = get_model("fer-cnn")
    rows = []
    if metric_only:  # the default metric against a forward pass on the default set
        started = time.perf_counter()
        dataset = get_dataset("synthfacs")
        dataset.arrays(np.arange(len(dataset)))  # decode + cache crops once
        generation_s = time.perf_counter() - started
        count = repeats or 3
        rows.append(_metric_row(model, dataset, repeats=count))
        rows.append(_metric_row(model, dataset, repeats=count, locate="receptive-field"))
        if with_run:
            rows.append(_default_run_row(generation_s))
        return rows
    rng = np.random.default_rng(0)
    images = rng.random((256 if quick else 2048, 64, 64), dtype=np.float32)
    rows.append(_scan_row(model, images, repeats=repeats or (2 if quick else 5)))

    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            from interp_datasets.synthfacs import generate

            generate(tmp, subjects=3, seed=0)
            dataset = get_dataset("synthfacs", data_root=tmp)
            generation_s = None
        else:
            started = time.perf_counter()
            dataset = get_dataset("synthfacs")  # generated into the cache once
            if hasattr(dataset, "arrays"):
                dataset.arrays(np.arange(len(dataset)))  # decode + cache crops once
            generation_s = time.perf_counter() - started
        small = {"min_observations": 3, "min_subjects": 2} if quick else {}
        count = repeats or (1 if quick else 3)
        rows.append(_metric_row(model, dataset, repeats=count, **small))
        rows.append(_metric_row(model, dataset, repeats=count, locate="receptive-field", **small))
        rows.append(_metric_row(model, dataset, repeats=count, selection="paper",
                                **({"min_observations": 3} if quick else {})))
    if not quick:
        rows.append(_default_run_row(generation_s))
    return rows


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def render_table(rows: list[dict]) -> str:
    lines = ["| case | ours wall (s) | forward wall (s) | ratio | ours CPU (s) | forward CPU (s) | CPU ratio | 1-min load |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        load = row.get("load_1min") or ["-", "-"]
        cells = [row["case"], _number(row.get("ours_s")), _number(row.get("baseline_s")), _number(row.get("ratio")),
                 _number(row.get("ours_cpu_s")), _number(row.get("baseline_cpu_s")), _number(row.get("cpu_ratio")),
                 f"{load[0]}-{load[1]}"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def rewrite_doc(rows: list[dict], command: str, doc: Path = DOC) -> None:
    """Replace the text between the au-distance-table markers in docs/performance.md."""
    import datetime

    sys.path.insert(0, str(doc.parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import replace_marked

    from interpret_core.util.io import write_text

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f"Measured {stamp} by `{command}` ({os.cpu_count()} CPUs, 2 torch threads):"
    text = doc.read_text(encoding="utf-8")
    write_text(doc, replace_marked(text, START, END, f"{head}\n\n{render_table(rows)}", doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke run)")
    parser.add_argument("--metric-only", action="store_true", help="only the two au-distance rows on the default set")
    parser.add_argument("--repeats", type=int, default=None, help="alternations per timed pair (default 3)")
    parser.add_argument("--with-run", action="store_true", help="with --metric-only: also time the default interp run")
    parser.add_argument("--write-doc", action="store_true", help="rewrite the au-distance table in docs/performance.md")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, metric_only=args.metric_only, repeats=args.repeats, with_run=args.with_run)
    for row in rows:
        print(json.dumps(row, default=float))
    if args.write_doc:
        rewrite_doc(rows, "python benchmarks/bench_au_distance.py " + " ".join(argv if argv is not None else sys.argv[1:]))
        print(f"rewrote the au-distance table in {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
