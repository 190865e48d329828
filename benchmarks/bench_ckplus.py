"""The CK+ reader's cold open: what checking every frame costs.

Rows (see the benchmark convention in the team brief):

* ``frame check``: :func:`interp_datasets.ckplus.frames.check_frame` (chunk
  checksums, then a full decode, so a PNG whose checksums are valid but whose
  pixel data is corrupt is found when the data set is opened) over every
  frame the default protocol uses. Baseline: Pillow's ``verify()`` alone
  (checksums only, the check before this reader skipped such PNGs).
  ``ratio = ours_s / baseline_s`` (cost factor of the complete check).
* ``open cold``: ``CKPlusDataset(root, cache=False)`` (index, landmarks,
  frame checks). Baseline: decoding and aligning every crop afterwards
  (``arrays()``, cold), the work every command that reads pixels does next.
  ``ratio = ours_s / baseline_s``.

Full run: the default SynthFACS set (generated into the cache on first use);
quick run: 3 subjects in a temporary folder. Best of 3 for each timing.

Run alone: ``python benchmarks/bench_ckplus.py [--quick]``.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # Linux reports KiB


def _best(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _rows(root: Path) -> list[dict]:
    from PIL import Image

    from interp_datasets.ckplus import CKPlusDataset
    from interp_datasets.ckplus.frames import check_frame

    data = CKPlusDataset(data_root=root, cache=False)
    frames = [str(root / item.image) for item in data._items]

    def verify_only():
        for path in frames:
            with Image.open(path) as picture:
                picture.verify()

    def complete_check():
        for path in frames:
            assert check_frame(path) is None

    verify_s = _best(verify_only)
    check_s = _best(complete_check)
    opened: list[CKPlusDataset] = []
    open_s = _best(lambda: opened.append(CKPlusDataset(data_root=root, cache=False)))
    decode_s = _best(lambda: CKPlusDataset(data_root=root, cache=False).arrays()) - open_s
    n = len(frames)
    return [
        {
            "area": "datasets", "case": f"ckplus frame check, {n} frames", "ours_s": round(check_s, 3),
            "baseline": "Pillow verify() only", "baseline_s": round(verify_s, 3),
            "ratio": round(check_s / verify_s, 2), "peak_mb": _peak_mb(),
            "notes": f"ours_s / baseline_s; {1e3 * check_s / n:.2f} vs {1e3 * verify_s / n:.2f} ms per frame",
        },
        {
            "area": "datasets", "case": f"ckplus open cold, {n} samples", "ours_s": round(open_s, 3),
            "baseline": "arrays() cold (decode + align)", "baseline_s": round(decode_s, 3),
            "ratio": round(open_s / decode_s, 2), "peak_mb": _peak_mb(),
            "notes": "ours_s / baseline_s: the open's share of a first full read is ours / (ours + baseline)",
        },
    ]


def run(quick: bool = False) -> list[dict]:
    if quick:
        from interp_datasets.synthfacs import generate

        with tempfile.TemporaryDirectory(prefix="bench-ckplus-") as tmp:
            root = Path(tmp) / "release"
            generate(root, subjects=3, seed=0)
            return _rows(root)
    from interp_datasets.synthfacs.generator import ensure_default

    return _rows(ensure_default())


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
