"""benchmarks/run_all.py: module rows, failures as rows, and the doc rewritten only between markers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_failures_and_doc_markers(run_all, tmp_path):
    good = tmp_path / "bench_good.py"
    good.write_text(
        "def run(quick=False):\n"
        "    return [{'area': 'demo', 'case': 'quick' if quick else 'full', 'ours_s': 0.5, 'baseline': 'x',\n"
        "             'baseline_s': 1.0, 'ratio': 2.0, 'peak_mb': 10.0, 'notes': 'a|b'}]\n"
    )
    broken = tmp_path / "bench_broken.py"
    broken.write_text("import no_such_module_for_run_all\n")
    rows, _ = run_all.run_module(good, quick=True)
    assert rows == [{"area": "demo", "case": "quick", "ours_s": 0.5, "baseline": "x", "baseline_s": 1.0,
                     "ratio": 2.0, "peak_mb": 10.0, "notes": "a|b", "module": "bench_good"}]
    failed, _ = run_all.run_module(broken, quick=True)
    assert failed[0]["case"] == "(module failed)" and "import failed" in failed[0]["notes"]

    info = run_all.machine()
    assert {"cpu", "logical_cpus", "torch", "numpy", "torch_threads", "date"} <= set(info)
    table = run_all.render_table(rows + failed, info, quick=True)
    assert "| demo | quick | 0.5 | x | 1 | 2 | 10 | a\\|b |" in table
    assert "Quick smoke run" in table

    doc = tmp_path / "performance.md"
    doc.write_text(f"# Perf\n\nintro\n\n{run_all.START}\nold table\n{run_all.END}\n\nhand-written notes\n")
    run_all.rewrite_doc(table, doc)
    text = doc.read_text()
    assert text.startswith("# Perf\n\nintro\n\n") and text.endswith("\n\nhand-written notes\n")
    assert "old table" not in text and "| demo | quick |" in text
    run_all.rewrite_doc("second", doc)
    assert doc.read_text().count(run_all.START) == 1 and "second" in doc.read_text()


def test_every_benchmark_module_exposes_run(run_all):
    modules = run_all.discover()
    assert "bench_bench" in {m.stem for m in modules}
    for path in modules:
        assert "def run(quick" in path.read_text(), path.name
