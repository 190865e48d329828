"""``interp bench`` and ``interp train`` on a 2-worker Dask LocalCluster against a 1-worker one.

Rows (the run_all.py convention; ``ratio = baseline_s / ours_s``, the speedup, target >= 1.6):

* ``bench``: fer-cnn on the default SynthFACS release, ``--limit 64``, 4 methods
  x 4 metrics with ``--executor dask`` (each method's attributions are one task
  per batch of 32 images; each cell is a task, queued as soon as its method's
  attributions are complete), on a 2-worker cluster (ours) and a 1-worker
  cluster (baseline), each worker one process with one thread.
* ``train``: fer-cnn, 8-fold cross-validation on 40 SynthFACS subjects,
  2 epochs, and the final model, each a task, on the same two clusters.

Each cluster is started before the clock starts (its start-up, a few seconds,
is the same for both and not part of the work compared), and runs each
workload once at its ``--quick`` size, untimed, so that first-use costs in
its worker processes (imports, the model, kernels) are paid before. Runs alternate
(2 workers, 1 worker, 2, 1, ...) into fresh output folders, and the best wall
time of each counts. CPU seconds are the workers' plus this process's
(``time.process_time`` read on every worker through ``client.run``): far less
sensitive to other load on the machine than wall time; CPU s / wall s is the
number of cores kept busy. Serial s is the wall time before the first task
and after the last one (Dask's task stream), when only this process works:
with it the speedup on 2 workers is at most (serial + work) / (serial + work / 2). The results of every
run are asserted identical (the bench table without its timing fields; the
trained weights' sha256 and the cross-validation metrics).

Run alone (prints the rows and writes them into docs/performance.md between the
``distributed`` markers)::

    python benchmarks/bench_distributed.py [--quick] [--repeats N] [--only bench,train] [--no-write-doc]

``--only`` measures some areas and prints their rows; the doc is rewritten only
when both are measured (its section holds both rows of one run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "performance.md"

METHODS = ["saliency", "guided-backprop", "integrated-gradients", "occlusion"]
METRICS = ["au-pointing-game", "deletion", "insertion", "sparseness"]


def _warm_up() -> None:
    """What every worker process pays once whatever it runs (imports, plugin discovery, the model): not timed."""
    import captum.attr  # noqa: F401 - the attribution methods' library

    from interpret_core.registry.loader import get_model, get_registry, open_dataset

    get_registry()
    get_model("fer-cnn")
    open_dataset("synthfacs", None, {})


def _workers_cpu(client) -> float:
    return float(sum(client.run(time.process_time).values()))


def _timed(client, work) -> tuple[float, float, float, object]:
    """(wall s, CPU s of the workers and this process, serial s, result) of ``work()``.

    Serial s: the wall time before the first task starts computing on a worker
    and after the last one ends (Dask's task stream), when only this process
    works (loading the data, assembling and writing the results).
    """
    from distributed import get_task_stream

    cpu_start, own_start = _workers_cpu(client), time.process_time()
    with get_task_stream(client) as stream:
        started, started_epoch = time.perf_counter(), time.time()
        result = work()
        wall = time.perf_counter() - started
        ended_epoch = started_epoch + wall
    spans = [(part["start"], part["stop"]) for task in stream.data for part in task["startstops"]
             if part["action"] == "compute" and not str(task["key"]).startswith("shared-")]
    serial = (min(a for a, _ in spans) - started_epoch) + (ended_epoch - max(b for _, b in spans)) if spans else wall
    return wall, _workers_cpu(client) - cpu_start + time.process_time() - own_start, serial, result


def _bench_table(result: dict) -> list:
    rows = []
    for row in result["methods"]:
        cells = {name: {k: v for k, v in cell.items() if k not in ("metric_seconds", "reused")} for name, cell in row["cells"].items()}
        rows.append({**{k: v for k, v in row.items() if k != "time_per_image_s"}, "cells": cells})
    return rows


def _bench(address: str, out: Path, quick: bool):
    from interpret_core.workflows.bench import BenchConfig, run_bench
    from interpret_core.workflows.executors import ExecutorChoice

    config = BenchConfig(methods=METHODS[:2] if quick else METHODS, metrics=METRICS[:2] if quick else METRICS,
                         model="fer-cnn", dataset="synthfacs", limit=16 if quick else 64, out=str(out), baselines=False,
                         executor=ExecutorChoice("dask", scheduler=address))
    result = run_bench(config)
    assert result["computed"] == len(config.methods) * len(config.metrics) and not result["failed_cells"], result["failed_cells"]
    return _bench_table(result)


def _train(address: str, out: Path, quick: bool):
    from interpret_core.nn.weights import sha256_file
    from interpret_core.workflows.executors import ExecutorChoice
    from interpret_core.workflows.training import TrainConfig, train

    config = TrainConfig(model="fer-cnn", dataset="synthfacs", subjects=12 if quick else 40, folds=4 if quick else 8,
                         epochs=1 if quick else 2, patience=2, seed=0)
    result = train(config, out, executor=ExecutorChoice("dask", scheduler=address))

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seconds", "command")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return sha256_file(result.weights_path), strip(result.metrics)


AREAS = ("bench", "train")


def run(quick: bool = False, repeats: int | None = None, only: tuple[str, ...] = AREAS) -> list[dict]:

    from distributed import Client

    from interpret_core.workflows.executors import local_cluster

    from interpret_core.registry.loader import open_dataset

    repeats = repeats or (1 if quick else 2)
    os.environ.setdefault("INTERP_NO_PROGRESS", "1")
    open_dataset("synthfacs", None, {})  # the default release is generated once, before any clock starts
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as scratch, \
            local_cluster(2) as two, local_cluster(1) as one, \
            Client(two) as two_client, Client(one) as one_client:
        two_client.run(_warm_up)
        one_client.run(_warm_up)
        _warm_up()  # and this process's own imports (the attribution library, for the methods' flags)
        for area, work in (("bench", _bench), ("train", _train)):
            if area not in only:
                continue
            for label, cluster in (("2", two), ("1", one)):  # first-use costs in each worker (kernels, caches): not timed
                work(cluster.scheduler_address, Path(scratch) / f"warm-up-{area}-{label}", True)
            times: dict[str, list[tuple[float, float, float]]] = {"2 workers": [], "1 worker": []}
            results = []
            for repeat in range(repeats):
                for label, cluster, client in (("2 workers", two, two_client), ("1 worker", one, one_client)):
                    out = Path(scratch) / f"{area}-{label.replace(' ', '-')}-{repeat}"
                    wall, cpu, serial, result = _timed(client, lambda: work(cluster.scheduler_address, out, quick))
                    times[label].append((wall, cpu, serial))
                    results.append(result)
                    print(f"[bench_distributed] {area} {label}: {wall:.1f} s wall, {cpu:.1f} CPU s ({cpu / wall:.2f} cores busy), "
                          f"{serial:.1f} s serial, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            assert all(result == results[0] for result in results), f"{area}: results differ between runs"
            ours, baseline = min(times["2 workers"]), min(times["1 worker"])
            load = os.getloadavg()[0]
            what = (f"{len(METHODS[:2] if quick else METHODS)} methods x {len(METRICS[:2] if quick else METRICS)} metrics, "
                    f"{16 if quick else 64} images" if area == "bench" else
                    f"fer-cnn, {4 if quick else 8}-fold CV + final model, {12 if quick else 40} SynthFACS subjects, "
                    f"{1 if quick else 2} epochs")
            rows.append({
                "area": "distributed",
                "case": f"{area}: {what}; Dask LocalCluster, 2 workers x 1 thread",
                "ours_s": ours[0],
                "baseline": "the same on a 1-worker LocalCluster",
                "baseline_s": baseline[0],
                "ratio": baseline[0] / ours[0],
                "peak_mb": None,
                "notes": f"speedup (target >= 1.6); best of {repeats}, alternating; CPU s workers+client: "
                         f"{ours[1]:.1f} (2 workers, {ours[1] / ours[0]:.2f} cores busy) vs {baseline[1]:.1f} (1 worker, "
                         f"{baseline[1] / baseline[0]:.2f}); serial s (this process only, before the first and after the last task): "
                         f"{ours[2]:.1f} vs {baseline[2]:.1f}; results identical in all {len(results)} runs "
                         f"(asserted); 1-min load {load:.1f} at the end",
            })
    return rows


def write_doc(rows: list[dict], doc: Path = DOC) -> None:
    """Put the rows, with the machine line, between the ``distributed`` markers of ``doc``."""
    sys.path.insert(0, str(HERE))
    from run_all import rewrite_marked_rows

    rewrite_marked_rows(rows, "distributed", doc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat; the doc is left alone")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each cluster size (default 2; quick 1)")
    parser.add_argument("--only", default=",".join(AREAS), help="comma-separated areas to measure (bench, train; default both)")
    parser.add_argument("--no-write-doc", action="store_true", help="print the rows only")
    args = parser.parse_args()
    only = tuple(part.strip() for part in args.only.split(",") if part.strip())
    unknown = sorted(set(only) - set(AREAS))
    if unknown or not only:
        parser.error(f"--only: unknown area {', '.join(unknown) or '(none given)'}; choose from {', '.join(AREAS)}")
    found = run(quick=args.quick, repeats=args.repeats, only=only)
    for row in found:
        print(json.dumps(row))
    if not args.quick and not args.no_write_doc and set(only) == set(AREAS):
        write_doc(found)
        print(f"[bench_distributed] wrote {len(found)} rows into {DOC}", file=sys.stderr)
