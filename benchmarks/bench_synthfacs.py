"""SynthFACS generation speed.

Rows (see the benchmark convention in the team brief):

* ``generate <N> subjects``: wall time of
  ``interp_datasets.synthfacs.generate(tmp, subjects=N, seed=0)`` with the
  default workers (the available CPUs, at most 8). Full run: the default set
  (120 subjects, ~600 sequences, ~4200 frames); target < 120 s on 2 cores.
  Quick run: 4 subjects.
  Baseline: writing the same frames without drawing them - decoding each
  generated PNG and encoding + writing it again (PIL, same options), in one
  process. ``ratio = baseline_s / ours_s``: the share of the generation time
  that is bare PNG I/O (1.0 would mean rendering and the masks are free).
  ``notes`` gives frames, ms per frame, the workers and the CPU seconds.
* ``default SynthFACS set vs the 2-minute target`` (full run only): the
  generation row again with ``baseline_s = 120`` and ``ratio = 120 / ours_s``
  (>= 1 meets the target).
* ``render one frame``: one frame with its masks (a full render per AU
  present) vs one full render alone, in-process; ratio = render_s / with_masks_s.

Run alone: ``python benchmarks/bench_synthfacs.py [--quick]``.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

#: The issue's target for the default set (120 subjects) on 2 CPU cores, seconds.
TARGET_S = 120.0


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024.0, 1)  # Linux reports KiB


def _generation_row(subjects: int) -> dict:
    from PIL import Image

    from interp_datasets.synthfacs import generate
    from interp_datasets.synthfacs.generator import default_workers

    with tempfile.TemporaryDirectory(prefix="bench-synthfacs-") as tmp:
        cpu0 = _cpu_seconds()
        started = time.perf_counter()
        summary = generate(Path(tmp) / "release", subjects=subjects, seed=0)
        ours = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu0
        frames = sorted((Path(tmp) / "release" / "cohn-kanade-images").rglob("*.png"))
        out = Path(tmp) / "rewrite"
        out.mkdir()
        started = time.perf_counter()
        for index, path in enumerate(frames):
            with Image.open(path) as picture:
                picture.load()
                buffer = io.BytesIO()
                picture.save(buffer, format="PNG", compress_level=6, optimize=False)
            (out / f"{index}.png").write_bytes(buffer.getvalue())
        baseline = time.perf_counter() - started
    return {
        "area": "datasets",
        "case": f"generate SynthFACS, {subjects} subjects",
        "ours_s": round(ours, 3),
        "baseline": "decode + PNG-encode + write the same frames (PIL, 1 process)",
        "baseline_s": round(baseline, 3),
        "ratio": round(baseline / ours, 4) if ours > 0 else None,
        "peak_mb": _peak_mb(),
        "notes": (
            f"{summary['sequences']} sequences, {summary['frames']} frames "
            f"({1000 * ours / summary['frames']:.1f} ms/frame wall), {default_workers()} workers, "
            f"{cpu:.1f} CPU s; target for 120 subjects < 120 s on 2 cores"
        ),
    }


def _render_row(repeats: int) -> dict:
    import numpy as np

    from interp_datasets.synthfacs import generator as gen
    from interp_datasets.synthfacs.face import Identity

    identity = Identity.sample(np.random.default_rng(0))
    plan = gen.SequencePlan("S001", 1, identity, "happy", ((6, 4), (12, 4), (25, 3)), (), 6, (0, 1, 1, 2))

    def run(with_masks: bool) -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            list(gen.sequence_frames(plan, with_masks=with_masks))
        return (time.perf_counter() - started) / (repeats * plan.frames)

    plain = run(False)
    masked = run(True)
    return {
        "area": "datasets",
        "case": "SynthFACS frame with masks (3 AUs)",
        "ours_s": round(masked, 5),
        "baseline": "the same frame rendered once, without masks",
        "baseline_s": round(plain, 5),
        "ratio": round(plain / masked, 4),
        "peak_mb": _peak_mb(),
        "notes": "per frame, in-process; one extra full render per AU present",
    }


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows; ``quick`` generates 4 subjects instead of the default 120."""
    os.environ.setdefault("INTERP_NO_PROGRESS", "1")
    rows = [_render_row(2 if quick else 10), _generation_row(4 if quick else 120)]
    if not quick:
        generation = rows[-1]
        rows.append({
            **generation,
            "case": "default SynthFACS set vs the 2-minute target",
            "baseline": "target: 120 s on 2 CPU cores",
            "baseline_s": TARGET_S,
            "ratio": round(TARGET_S / generation["ours_s"], 4),
            "notes": "ratio >= 1 meets the target; " + generation["notes"],
        })
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(row))
