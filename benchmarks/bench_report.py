"""What building the report costs in ``interp run``: figures and pages against the run without them.

Row (benchmarks convention; ``ratio = ours_s / baseline_s``):

* ``report (figures + pages)``: the time :func:`draw_run_figures` and
  :func:`write_outputs` take in one default ``interp run`` (every per-AU figure
  with its projections, the heatmaps, the agreement chart, the layer summary,
  the unit densities, scores.csv, mapping.csv, mapping.md, report.html),
  against the rest of the same run (scan and metric: the run without figures).
  The target is stated in seconds: the report adds under 15 s on 2 cores.

``peak_mb`` is the process's peak resident memory after the row (coarse).
Run alone: ``python benchmarks/bench_report.py [--quick]`` (``--quick``: 400 images).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(quick: bool = False) -> list[dict]:
    import torch

    from interpret_core.workflows.run import RunConfig, run as run_pipeline, write_outputs

    torch.set_num_threads(2)
    limit = 400 if quick else None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        results = run_pipeline(RunConfig(out=str(out), limit=limit))
        timings = results["timings"]
        start = time.perf_counter()
        write_outputs(out, {k: v for k, v in results.items() if k != "out"})
        pages_s = time.perf_counter() - start
        figures = len(list((out / "figures").glob("*.png")))
    report_s = timings["figures_s"] + pages_s
    rest_s = timings["scan_s"] + timings["metric_s"]
    images = results["dataset"]["images"]
    return [{
        "area": "report",
        "case": f"report (figures + pages), default run, {images} images",
        "ours_s": report_s,
        "baseline": "the same run's scan + metric (the run without figures)",
        "baseline_s": rest_s,
        "ratio": report_s / rest_s,
        "peak_mb": _peak_mb(),
        "notes": f"{figures} PNGs; figures {timings['figures_s']:.1f} s, pages {pages_s:.2f} s; target: under 15 s added",
    }]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
