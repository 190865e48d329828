"""Cost of the temp-file lock of atomic writes (interpret_core.util.io).

``atomic_open`` holds an ``flock`` on its temporary file until the rename, so
that a killed writer's temp file can be told from a live one's and removed at
once. Ours: ``write_bytes`` as shipped; baseline: the same function with the
lock switched off (``fcntl`` unavailable, the Windows path: mkstemp, write,
rename). Both write ``N`` files of 4 KiB without fsync (``durable=False``,
as ``data generate`` does; an fsync would dwarf both) into one folder,
alternating ours/baseline, best of ``REPEATS``; CPU time (process_time) is
given beside wall time, and the 1-minute load average at the end. (Each write
also lists its folder for stale temp files, so the cost per file grows with
the files already in the folder: both sides pay that alike.)

Usage::

    python benchmarks/bench_atomic_io.py [--quick]    # prints one JSON row; run_all.py records it

About 10 s on an idle machine (``--quick``: 1 s).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # Linux reports KiB


def _write_many(folder: Path, count: int, payload: bytes) -> tuple[float, float]:
    """(wall s, CPU s) of ``count`` atomic writes into a fresh ``folder``."""
    from interpret_core.util.io import write_bytes

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(count):
        write_bytes(folder / f"file-{index:05d}.bin", payload, durable=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def run(quick: bool = False) -> list[dict]:
    import interpret_core.util.io as atomic_io

    count = 100 if quick else 500
    payload = os.urandom(4096)
    locked = atomic_io.fcntl
    best = {"ours": (float("inf"), float("inf")), "baseline": (float("inf"), float("inf"))}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(REPEATS):
            for name in ("ours", "baseline"):
                atomic_io.fcntl = locked if name == "ours" else None
                try:
                    wall, cpu = _write_many(Path(scratch) / name, count, payload)
                finally:
                    atomic_io.fcntl = locked
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    (ours_s, ours_cpu), (base_s, base_cpu) = best["ours"], best["baseline"]
    load = os.getloadavg()[0]
    return [{
        "area": "io", "case": f"atomic write with temp-file flock, {count} x 4 KiB, no fsync",
        "ours_s": round(ours_s, 3), "baseline": "same write without the lock (mkstemp, write, rename)",
        "baseline_s": round(base_s, 3), "ratio": round(ours_s / base_s, 2), "peak_mb": _peak_mb(),
        "notes": (f"ours_s / baseline_s, best of {REPEATS} alternating; CPU {ours_cpu:.3f} vs {base_cpu:.3f} s "
                  f"(ratio {ours_cpu / base_cpu:.2f}); {1e6 * ours_s / count:.0f} vs {1e6 * base_s / count:.0f} us "
                  f"per file; load average {load:.1f}"),
    }]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
