"""Cost of the temp-file lock of atomic writes (interpret_core.util.io).

``atomic_open`` holds an ``flock`` on its temporary file until the rename, so
that a killed writer's temp file can be told from a live one's and removed at
once. Ours: ``write_bytes`` as shipped; baseline: the same function with the
lock switched off (``fcntl`` unavailable, the Windows path: mkstemp, write,
rename). Both write ``N`` files of 4 KiB without fsync (``durable=False``,
as ``data generate`` does; an fsync would dwarf both) into one folder,
alternating ours/baseline, best of ``REPEATS``; CPU time (process_time) is
given beside wall time, and the 1-minute load average at the end.

A second row writes 5,000 files into one folder and compares the cost per
file of the last 500 (4,500 files already there) with that of the first 500:
a write lists its folder for dead writers' temp files only on the process's
first write there, so the ratio should stay near 1 (4.9 on 2026-12-01 when every
write listed the folder: O(N^2) for N files).

Usage::

    python benchmarks/bench_atomic_io.py [--quick]    # prints the JSON rows and, unless --quick, writes them
                                                      # into docs/performance.md ("atomic writes")

About 15 s on an idle machine (``--quick``: 2 s).
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


def _folder_growth(folder: Path, count: int, payload: bytes) -> dict:
    """Per-file wall and CPU cost of the first and the last tenth of ``count`` writes into one fresh folder."""
    from interpret_core.util.io import write_bytes

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    tenth, marks = count // 10, []
    for index in range(count):
        if index in (0, tenth, count - tenth):
            marks.append((time.perf_counter(), time.process_time()))
        write_bytes(folder / f"file-{index:05d}.bin", payload, durable=False)
    marks.append((time.perf_counter(), time.process_time()))
    (w0, c0), (w1, c1), (w2, c2), (w3, c3) = marks
    return {"first_s": w1 - w0, "first_cpu": c1 - c0, "last_s": w3 - w2, "last_cpu": c3 - c2, "tenth": tenth}


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
        growth_count = 1000 if quick else 5000
        growth = min((_folder_growth(Path(scratch) / "growth", growth_count, payload) for _ in range(3)),
                     key=lambda g: g["last_s"])
    (ours_s, ours_cpu), (base_s, base_cpu) = best["ours"], best["baseline"]
    load = os.getloadavg()[0]
    tenth = growth["tenth"]
    growth_row = {
        "area": "io", "case": f"atomic write into a folder already holding {growth_count - tenth:,} files (4 KiB, no fsync)",
        "ours_s": round(growth["last_s"], 3), "baseline": f"the first {tenth} writes into the same, then empty, folder",
        "baseline_s": round(growth["first_s"], 3), "ratio": round(growth["last_s"] / growth["first_s"], 2),
        "peak_mb": _peak_mb(),
        "notes": (f"{tenth} writes each; ratio = cost per file with the folder full / empty (1 = no growth); best of 3; "
                  f"CPU {growth['last_cpu']:.3f} vs {growth['first_cpu']:.3f} s; load average {load:.1f}"),
    }
    return [growth_row, {
        "area": "io", "case": f"atomic write with temp-file flock, {count} x 4 KiB, no fsync",
        "ours_s": round(ours_s, 3), "baseline": "same write without the lock (mkstemp, write, rename)",
        "baseline_s": round(base_s, 3), "ratio": round(ours_s / base_s, 2), "peak_mb": _peak_mb(),
        "notes": (f"ours_s / baseline_s, best of {REPEATS} alternating; CPU {ours_cpu:.3f} vs {base_cpu:.3f} s "
                  f"(ratio {ours_cpu / base_cpu:.2f}); {1e6 * ours_s / count:.0f} vs {1e6 * base_s / count:.0f} us "
                  f"per file; load average {load:.1f}"),
    }]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    found = run(quick=quick)
    for row in found:
        print(json.dumps(row))
    if not quick:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from run_all import rewrite_marked_rows

        rewrite_marked_rows(found, "atomic-io")
        print("[bench_atomic_io] wrote the rows into docs/performance.md (atomic writes)", file=sys.stderr)
