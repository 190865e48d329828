"""Run every speed comparison of the project in one go and rewrite the table in docs/performance.md.

Each ``benchmarks/bench_*.py`` exposes ``run(quick=False) -> list[dict]``
with rows ``{"area", "case", "ours_s", "baseline", "baseline_s", "ratio",
"peak_mb", "notes"}`` (``notes`` says how each module defines ``ratio``).
Every module runs in its own Python process, so one module's memory peak or
crash does not leak into the next; a module that fails to import or run is
reported as a row, not fatal.

Usage::

    python benchmarks/run_all.py            # full run, rewrites docs/performance.md
    python benchmarks/run_all.py --quick    # smoke run: small sizes, table printed, doc left alone
    python benchmarks/run_all.py --only bench_bench,bench_attribution --json results.json
    python benchmarks/run_all.py --from-json results.json   # rewrite the doc's table from saved rows

Only the text between ``<!-- perf-table:start -->`` and
``<!-- perf-table:end -->`` in docs/performance.md is replaced.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "performance.md"
START = "<!-- perf-table:start -->"
END = "<!-- perf-table:end -->"
COLUMNS = ("area", "case", "ours_s", "baseline", "baseline_s", "ratio", "peak_mb", "notes")

# Runs one module in a child process and prints its rows as JSON on the last line.
_CHILD = """
import importlib.util, json, sys, traceback
path, quick = sys.argv[1], sys.argv[2] == "1"
try:
    spec = importlib.util.spec_from_file_location("bench_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except BaseException as exc:
    print("\\n" + json.dumps({"error": "import failed: %s: %s" % (type(exc).__name__, exc)}))
    sys.exit(0)
try:
    rows = module.run(quick=quick)
except BaseException as exc:
    traceback.print_exc()
    print("\\n" + json.dumps({"error": "run failed: %s: %s" % (type(exc).__name__, exc)}))
    sys.exit(0)
print("\\n" + json.dumps({"rows": rows}, default=float))
"""


def discover(only: list[str] | None = None) -> list[Path]:
    """The ``bench_*.py`` modules next to this script (optionally only the named ones)."""
    modules = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {name.removesuffix(".py") for name in only}
        missing = wanted - {m.stem for m in modules}
        if missing:
            raise SystemExit(f"no benchmark module(s) {sorted(missing)} in {HERE}; have {[m.stem for m in modules]}")
        modules = [m for m in modules if m.stem in wanted]
    return modules


def run_module(path: Path, quick: bool, timeout: float | None = None) -> tuple[list[dict], float]:
    """(rows, wall seconds) of one module, run in a child process."""
    started = time.perf_counter()
    environment = dict(os.environ, INTERP_NO_PROGRESS="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), environment.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), "1" if quick else "0"],
            capture_output=True, text=True, env=environment, cwd=str(ROOT), timeout=timeout,
        )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            payload = json.loads(lines[-1]) if lines else {"error": f"no output (exit {done.returncode})"}
        except json.JSONDecodeError:
            payload = {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    except subprocess.TimeoutExpired:
        payload = {"error": f"timed out after {timeout} s"}
    wall = time.perf_counter() - started
    if "error" in payload:
        return [failure_row(path, payload["error"])], wall
    rows = []
    for row in payload.get("rows", []):
        rows.append({column: row.get(column) for column in COLUMNS} | {"module": path.stem})
    return rows, wall


def failure_row(path: Path, error: str) -> dict:
    return {"area": path.stem.removeprefix("bench_"), "case": "(module failed)", "ours_s": None, "baseline": None,
            "baseline_s": None, "ratio": None, "peak_mb": None, "notes": error, "module": path.stem}


def machine() -> dict:
    """CPU, cores, library versions, threads, date: what a reader needs to compare figures."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        import numpy
        import torch

        info.update(torch=torch.__version__, numpy=numpy.__version__, torch_threads=torch.get_num_threads(),
                    cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        pass
    try:  # the version only: importing captum itself takes seconds
        from importlib.metadata import version

        info["captum"] = version("captum")
    except Exception:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["load_average_1min"] = None if load is None else round(load[0], 2)
    return info


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def _cell(text) -> str:
    return str(text if text is not None else "—").replace("|", "\\|").replace("\n", " ")


def render_table(rows: list[dict], info: dict, quick: bool) -> str:
    """The Markdown between the markers: machine line plus one table row per benchmark row."""
    machine_line = (
        f"Measured {info['date']} on {info['cpu']} ({info['usable_cpus']} usable of {info['logical_cpus']} logical CPUs, "
        f"1-min load {info.get('load_average_1min')}), Python {info['python']}, torch {info.get('torch')}, "
        f"numpy {info.get('numpy')}, captum {info.get('captum')}, default torch threads {info.get('torch_threads')}"
        + (f", GPU {info['cuda']} (unused unless a row says so)" if info.get("cuda") else "")
        + (". **Quick smoke run: sizes reduced, not representative.**" if quick else ".")
    )
    lines = [
        machine_line,
        "",
        "| area | case | ours (s) | baseline | baseline (s) | ratio | peak MB | notes |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    lines.extend(render_row(row) for row in rows)
    return "\n".join(lines)


def render_row(row: dict) -> str:
    """One benchmark row as a line of the table."""
    return "| " + " | ".join([
        _cell(row.get("area")), _cell(row.get("case")), _number(row.get("ours_s")), _cell(row.get("baseline")),
        _number(row.get("baseline_s")), _number(row.get("ratio"), 3), _number(row.get("peak_mb"), 4),
        _cell(row.get("notes")),
    ]) + " |"


def replace_marked(text: str, start: str, end: str, block: str, path: Path) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``block``.

    Every benchmark that writes its own section of a doc goes through here; a missing
    marker ends the benchmark with the doc's path, before anything is written.
    """
    if start not in text or end not in text or text.index(start) > text.index(end):
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{block}\n{end}{after}"


def rewrite_marked_rows(rows: list[dict], name: str, doc: Path = DOC) -> None:
    """Put ``rows`` as a table, with the machine line, between ``doc``'s ``<!-- name:start/end -->`` markers.

    For a benchmark that records its rows in its own section of the doc rather than the main table.
    """
    sys.path.insert(0, str(ROOT))
    from interpret_core.util.io import write_text

    text = doc.read_text(encoding="utf-8")
    write_text(doc, replace_marked(text, f"<!-- {name}:start -->", f"<!-- {name}:end -->",
                                   render_table(rows, machine(), quick=False), doc))


def rewrite_doc(table: str, doc: Path = DOC) -> None:
    """Replace the text between the markers in ``doc`` (append a marked section if absent)."""
    sys.path.insert(0, str(ROOT))
    from interpret_core.util.io import write_text

    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Performance\n"
    if START in text and END in text and text.index(START) < text.index(END):
        text = replace_marked(text, START, END, table, doc)
    else:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{START}\n{table}\n{END}\n"
    write_text(doc, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one repeat")
    parser.add_argument("--only", help="comma-separated module names, e.g. bench_bench,bench_attribution")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and machine description as JSON")
    parser.add_argument("--write-doc", dest="write_doc", action="store_true", default=None,
                        help="rewrite the table in docs/performance.md (default: on for full runs, off with --quick)")
    parser.add_argument("--no-write-doc", dest="write_doc", action="store_false")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per module")
    parser.add_argument("--from-json", metavar="PATH", help="re-render the table from a --json file instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        table = render_table(saved["rows"], saved["machine"], saved["quick"])
        print(table)
        if args.write_doc is not False:
            rewrite_doc(table)
        return 0
    modules = discover([m.strip() for m in args.only.split(",")] if args.only else None)
    info = machine()
    rows: list[dict] = []
    for path in modules:
        print(f"[run_all] {path.name} ...", file=sys.stderr, flush=True)
        module_rows, wall = run_module(path, args.quick, args.timeout)
        failed = any(r["case"] == "(module failed)" for r in module_rows)
        print(f"[run_all] {path.name}: {len(module_rows)} row(s) in {wall:.1f} s" + (" (FAILED)" if failed else ""),
              file=sys.stderr, flush=True)
        rows.extend(module_rows)
    table = render_table(rows, info, args.quick)
    print(table)
    write_doc = (not args.quick) if args.write_doc is None else args.write_doc
    if write_doc:
        rewrite_doc(table)
        print(f"[run_all] rewrote the table in {DOC}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "quick": args.quick, "rows": rows}, indent=2, default=float) + "\n")
    return 1 if any(r["case"] == "(module failed)" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
