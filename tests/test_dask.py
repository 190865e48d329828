"""``--executor dask``: bench cells, training folds, the sharded unit scan and sharded SynthFACS
generation give exactly the results of one local process; a lost worker mid-bench and an
unreachable scheduler are handled (interpret_core/workflows/executors.py).

One LocalCluster (2 worker processes, 1 thread each) serves the whole module.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from distributed import Client

from interpret_core.api.errors import UsageError
from interpret_core.cli import main
from interpret_core.nn.weights import sha256_file
from interpret_core.workflows import executors
from interpret_core.workflows.executors import ExecutorChoice, open_executor
from test_train import _strip_times

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 2-worker cluster; its workers see the kill hook's marker path (the marker itself is made by a test)."""
    marker = tmp_path_factory.mktemp("kill") / "kill-next-task"
    os.environ[executors.KILL_TASK_VARIABLE] = str(marker)  # inherited by the worker processes started below
    try:
        with executors.local_cluster(2) as local:
            # not the default client: the commands' own clients must not lean on one (as in the CLI)
            with Client(local, set_as_default=False) as client:
                yield SimpleNamespace(address=local.scheduler_address, scheduler=local.scheduler, marker=marker, client=client)
    finally:
        del os.environ[executors.KILL_TASK_VARIABLE]


def test_local_clusters_leave_glibc_malloc_alone(cluster):
    # Dask's default MALLOC_TRIM_THRESHOLD_ makes glibc mmap every tensor above 128 KiB
    # (system time above user time in training steps); the clusters interp starts unset it.
    environ = cluster.client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")))
    assert len(environ) == 2
    assert all(trim is None and threads == "1" for trim, threads in environ.values()), environ


def _dask(cluster) -> ExecutorChoice:
    return ExecutorChoice("dask", scheduler=cluster.address)


# -- bench --------------------------------------------------------------------------------------------
def _bench_argv(root: Path, out: Path, *extra: str) -> list[str]:
    # --batch-size 4: each method's 12 images are 3 attribution tasks (shards) on workers, one in this process
    return ["bench", "--dataset", "synthfacs", "--data-root", str(root), "--limit", "12", "--batch-size", "4", "--methods", "saliency,deconv",
            "--metrics", "au-pointing-game,deletion,sparseness", "--no-baselines", "-o", str(out), "--json", *extra]


def _table(result: dict) -> list[dict]:
    """The bench table without wall-clock fields and without whether a cell was reused."""
    rows = []
    for row in result["methods"]:
        cells = {name: {k: v for k, v in cell.items() if k not in ("metric_seconds", "reused")} for name, cell in row["cells"].items()}
        rows.append({**{k: v for k, v in row.items() if k != "time_per_image_s"}, "cells": cells})
    return rows


def _cell_scores(out: Path) -> dict[str, list]:
    return {path.name: json.loads(path.read_text())["scores"] for path in sorted((out / "cells").glob("*.json"))}


@pytest.fixture(scope="module")
def local_bench(synthfacs_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-local") / "bench"
    assert main(_bench_argv(synthfacs_root, out)) == 0
    return out, json.loads((out / "bench.json").read_text())


def test_bench_cells_on_dask_equal_the_local_ones(cluster, local_bench, synthfacs_root, tmp_path, capsys):
    local_out, local = local_bench
    capsys.readouterr()
    out = tmp_path / "bench"
    assert main(_bench_argv(synthfacs_root, out, "--executor", "dask", "--scheduler", cluster.address)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["computed"] == 6 and result["failed_cells"] == []
    assert _table(result) == _table(local)
    assert _cell_scores(out) == _cell_scores(local_out)  # every image's score, not only the means
    assert (out / "bench.md").is_file() and (out / "bench.html").is_file()


@pytest.mark.parametrize("where", ["this process", "local processes", "dask"])
def test_items_appended_while_the_results_come_back_run_too(where, cluster):
    # bench queues a method's cells the moment its attributions are back: map() must run what is appended meanwhile
    choice = {"this process": ExecutorChoice(), "local processes": ExecutorChoice("local", workers=2), "dask": _dask(cluster)}[where]
    items, results = [-1, -2], {}
    with open_executor(choice) as executor:
        for position, result in executor.map(abs, items, name=lambda item: f"number {item}"):
            assert position not in results and result == abs(items[position])
            results[position] = result
            if len(items) < 6:
                items.append(-10 * (position + 1))  # new work that depends on a finished result
    assert sorted(results) == list(range(6)) and len(items) == 6


def _reads_the_announcement(item: str, announcement) -> object:
    """A task: "now" answers what it hears at once; "wait" asks until it hears something (at most 60 s)."""
    deadline = time.monotonic() + 60
    while (heard := announcement.heard()) is None and item == "wait" and time.monotonic() < deadline:
        time.sleep(0.02)
    return heard


@pytest.mark.parametrize("where", ["this process", "local processes", "dask"])
def test_an_announcement_made_while_tasks_run_reaches_them(where, cluster):
    # train announces the folds' median best epoch to a final model already training
    choice = {"this process": ExecutorChoice(), "local processes": ExecutorChoice("local", workers=2), "dask": _dask(cluster)}[where]
    items, results = ["now", "wait"], {}
    with open_executor(choice) as executor:
        announcement = executor.announcement()
        for position, result in executor.map(_reads_the_announcement, items, shared=(announcement,)):
            results[items[position]] = result
            if items[position] == "now":
                announcement.announce(7)
        announcement.close()
        assert announcement.heard() is None  # closed: forgotten
    assert results == {"now": None, "wait": 7}


def test_a_worker_killed_mid_bench_fails_cleanly_and_the_rerun_gives_the_same_table(cluster, local_bench, synthfacs_root, tmp_path, capsys):
    _, local = local_bench
    out = tmp_path / "bench"
    argv = _bench_argv(synthfacs_root, out, "--executor", "dask", "--scheduler", cluster.address)
    cluster.marker.write_text("bench cell", encoding="utf-8")  # the first cell task to start kills its worker
    allowed = cluster.scheduler.allowed_failures
    cluster.scheduler.allowed_failures = 0  # no retry: the run must stop with a clear error
    try:
        capsys.readouterr()
        assert main(argv) == 1
    finally:
        cluster.scheduler.allowed_failures = allowed
    captured = capsys.readouterr()
    assert not cluster.marker.exists()  # a worker really died
    assert "lost its Dask worker" in captured.err and cluster.address in captured.err and "hint:" in captured.err
    assert captured.out == ""  # no result on stdout
    assert not (out / "bench.json").exists()
    saved = sorted((out / "cells").glob("*.json")) if (out / "cells").is_dir() else []
    assert len(saved) < 6  # stopped part-way; what is there is complete JSON
    for path in saved:
        assert json.loads(path.read_text())["scores"]
    assert not list(out.rglob("*.tmp"))

    cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reused"] == len(saved) and result["computed"] == 6 - len(saved)
    assert _table(result) == _table(local)


def _stopped_part_way(out: Path) -> int:
    """How many cells a stopped bench saved; asserts that it left no result and nothing half-written."""
    assert not (out / "bench.json").exists()
    saved = sorted((out / "cells").glob("*.json"))
    assert 1 <= len(saved) < 6
    for path in saved:
        assert json.loads(path.read_text())["scores"]  # complete JSON
    assert not [path for path in out.rglob("*") if path.name.endswith(".tmp") or ".interp.lock" in path.name]
    return len(saved)


@pytest.fixture
def own_scheduler(tmp_path):
    """A `dask scheduler` process and one `dask worker` of its own (so killing it leaves the module's cluster alone)."""
    import subprocess
    import time

    dask = Path(sys.executable).parent / "dask"
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", info], **quiet)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not (info.is_file() and info.read_text().strip()):
            assert scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                   "--death-timeout", "5"], **quiet)
        with Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield SimpleNamespace(address=address, process=scheduler)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.kill()
                process.wait()


def test_a_scheduler_lost_mid_bench_is_one_error_line_and_the_rerun_gives_the_same_table(
        own_scheduler, local_bench, synthfacs_root, tmp_path, capfd, monkeypatch):
    from interpret_core.workflows import bench

    _, local = local_bench
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2.0)  # how long the client tries to reconnect
    save_cell = bench.Bench.save_cell

    def save_then_kill_the_scheduler(self, *args, **kwargs):
        saved = save_cell(self, *args, **kwargs)
        if own_scheduler.process.poll() is None:  # the scheduler dies right after the first cell is saved
            own_scheduler.process.kill()
            own_scheduler.process.wait()
        return saved

    monkeypatch.setattr(bench.Bench, "save_cell", save_then_kill_the_scheduler)
    out = tmp_path / "bench"
    capfd.readouterr()
    assert main(_bench_argv(synthfacs_root, out, "--executor", "dask", "--scheduler", own_scheduler.address)) == 1
    captured = capfd.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lost the Dask scheduler" in errors[0] and own_scheduler.address in errors[0], captured.err
    assert "hint:" in captured.err and "Failed to reconnect" not in captured.err  # Dask's own log line is ours now
    assert captured.out == ""
    saved = _stopped_part_way(out)

    monkeypatch.setattr(bench.Bench, "save_cell", save_cell)
    assert main(_bench_argv(synthfacs_root, out)) == 0  # finished here, in this process
    result = json.loads(capfd.readouterr().out)
    assert result["reused"] == saved and result["computed"] == 6 - saved
    assert _table(result) == _table(local)


def test_ctrl_c_stops_a_dask_bench_with_exit_130_and_the_rerun_gives_the_same_table(cluster, local_bench, synthfacs_root, tmp_path, capsys):
    import subprocess

    _, local = local_bench
    out = tmp_path / "bench"
    argv = _bench_argv(synthfacs_root, out, "--executor", "dask", "--scheduler", cluster.address)
    # A real SIGINT to the command's process, the moment its first cell is saved.
    script = (
        "import os, signal, sys\n"
        "from interpret_core.cli import main\n"
        "from interpret_core.workflows import bench\n"
        "save_cell = bench.Bench.save_cell\n"
        "def save_then_interrupt(self, *args, **kwargs):\n"
        "    saved = save_cell(self, *args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return saved\n"
        "bench.Bench.save_cell = save_then_interrupt\n"
        f"sys.exit(main({argv!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and done.stdout == ""
    saved = _stopped_part_way(out)

    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reused"] == saved and result["computed"] == 6 - saved
    assert _table(result) == _table(local)


def test_a_lost_worker_is_retried_by_dask(cluster, local_bench, synthfacs_root, tmp_path, capsys):
    _, local = local_bench
    cluster.client.wait_for_workers(2, timeout=60)
    cluster.marker.write_text("attributions", encoding="utf-8")
    capsys.readouterr()
    assert main(_bench_argv(synthfacs_root, tmp_path / "bench", "--executor", "dask", "--scheduler", cluster.address)) == 0
    assert not cluster.marker.exists()
    assert _table(json.loads(capsys.readouterr().out)) == _table(local)


# -- training -------------------------------------------------------------------------------------------
def _train_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "synthfacs", "--data-root", str(root), "--folds", "2", "--epochs", "1", "--batch-size", "32",
            "-o", str(out), "--json", *extra]


def test_training_folds_and_final_model_on_dask_give_the_same_weights(cluster, synthfacs_root, tmp_path, capsys):
    from interpret_core.workflows.training import TrainConfig, train

    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(_train_argv(synthfacs_root, local, "--workers", "1")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["model"], summary["dataset"]) == ("fer-cnn", "synthfacs")  # the resolved default, not None
    events = []
    config = TrainConfig(model="fer-cnn", dataset="synthfacs", data_root=str(synthfacs_root), folds=2, epochs=1, batch_size=32)
    result = train(config, remote, executor=_dask(cluster), callback=lambda event, info: events.append(event))
    assert sha256_file(remote / "model.safetensors") == sha256_file(local / "model.safetensors")
    assert _strip_times(result.metrics) == _strip_times(json.loads((local / "metrics.json").read_text()))
    for fold in ("fold-00.json", "fold-01.json"):
        assert json.loads((remote / "folds" / fold).read_text())["history"] == json.loads((local / "folds" / fold).read_text())["history"]
    # the workers' progress reaches the command: each fold's start and epochs, then the final model
    assert events.count("fold_start") == events.count("fold_end") == 2 and events.count("epoch_end") == 2
    assert events[-2:] == ["final_start", "final_end"]


# -- the unit scan ------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["dask", "local processes"])
def test_the_sharded_scan_is_bit_identical_to_the_local_scan(where, cluster, synthfacs_root):
    from interpret_core.analysis.unit_scan import scan_shards, scan_units
    from interpret_core.workflows.setup import DataChoice, ModelChoice, load_dataset, load_model, shared_model
    from interpret_core.workflows.sharded_scan import sharded_scanner

    model_choice, data_choice = ModelChoice("fer-cnn"), DataChoice("synthfacs", str(synthfacs_root))
    model, dataset = load_model(model_choice), load_dataset(data_choice)
    indices = np.arange(3, len(dataset), 2)  # not from 0, not contiguous: shards carry sample indices
    local = scan_units(model, dataset, model.layers, batch_size=8, top_k=5, indices=indices)
    assert len(scan_shards(indices, 8, 2 * 4)) > 2  # several shards, so the merge is exercised
    with open_executor(_dask(cluster) if where == "dask" else ExecutorChoice("local", workers=2)) as executor:
        assert not executor.in_process
        sharded = sharded_scanner(executor, shared_model(model, model_choice), data_choice)(
            model, dataset, model.layers, batch_size=8, top_k=5, indices=indices)
    assert np.array_equal(sharded.indices, local.indices)
    for layer in local.layers:
        for name in ("maxima", "argmax", "topk"):
            expected, found = getattr(local, name)[layer], getattr(sharded, name)[layer]
            assert found.dtype == expected.dtype and np.array_equal(found, expected), (layer, name)
    assert sharded.aus == local.aus and sharded.shapes == local.shapes


def test_merged_top_k_ties_go_to_the_earlier_image():
    from interpret_core.analysis.unit_scan import UnitScan, merge_scans

    def part(indices, values):
        values = np.asarray(values, dtype=np.float32)[:, None]
        order = np.lexsort((np.asarray(indices), -values[:, 0].astype(np.float64)))[:2]
        return UnitScan(layers=["l"], indices=np.asarray(indices), maxima={"l": values}, argmax={"l": np.zeros((len(indices), 1, 2), np.int32)},
                        topk={"l": np.asarray(indices)[order][None, :]}, shapes={"l": (1, 1, 1)})

    merged = merge_scans([part([10, 11, 12], [1.0, 3.0, 2.0]), part([13, 14], [3.0, 2.0])], top_k=3)
    assert merged.topk["l"].tolist() == [[11, 13, 12]]  # 3.0 (11 before 13), then 2.0 (12 before 14)


def test_interp_run_scans_on_dask(cluster, synthfacs_root, tmp_path):
    from interpret_core.analysis.unit_scan import UnitScan, scan_units
    from interpret_core.workflows.setup import DataChoice, ModelChoice, load_dataset, load_model

    out = tmp_path / "run"
    assert main(["run", "--dataset", "synthfacs", "--data-root", str(synthfacs_root), "--layers", "conv2", "--batch-size", "16",
                 "--metric-option", "min_observations=5", "--metric-option", "min_subjects=2", "-o", str(out), "--json",
                 "--executor", "dask", "--scheduler", cluster.address]) == 0
    model, dataset = load_model(ModelChoice("fer-cnn")), load_dataset(DataChoice("synthfacs", str(synthfacs_root)))
    local = scan_units(model, dataset, ["conv2"], batch_size=16, top_k=9)
    remote = UnitScan.load(out / "scan.npz")
    for name in ("maxima", "argmax", "topk"):
        assert np.array_equal(getattr(remote, name)["conv2"], getattr(local, name)["conv2"]), name
    assert (out / "results.json").is_file()


# -- SynthFACS generation ------------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_sharded_generation_writes_the_same_bytes(cluster, tmp_path):
    from interp_datasets.synthfacs import generate

    generate(tmp_path / "local", subjects=2, seed=5, workers=1)
    generate(tmp_path / "dask", subjects=2, seed=5, executor=_dask(cluster))
    local, remote = _tree(tmp_path / "local"), _tree(tmp_path / "dask")
    assert len(local) > 20 and remote == local


# -- errors ---------------------------------------------------------------------------------------------
def test_an_unreachable_scheduler_is_one_error_line_and_exit_1(synthfacs_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    code = main(_bench_argv(synthfacs_root, tmp_path / "bench", "--executor", "dask", "--scheduler", address))
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "cannot reach the Dask scheduler" in errors[0]
    assert "hint:" in err and "dask scheduler" in err


def test_flags_that_contradict_are_usage_errors(synthfacs_root, tmp_path):
    for argv in (["--scheduler", "tcp://x:1"], ["--executor", "dask", "--workers", "2", "--scheduler", "tcp://x:1"],
                 ["--executor", "spark"]):
        assert main(_bench_argv(synthfacs_root, tmp_path / "bench", *argv)) == 2


def test_without_distributed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(UsageError, match=r"interp\[dask\]"):
        with open_executor(ExecutorChoice("dask", workers=1)):
            pass


def test_a_dead_local_worker_process_is_a_clear_error_and_the_rerun_completes(cluster, tmp_path):
    from interp_datasets.synthfacs import generate

    from interpret_core.api.errors import InterpError

    cluster.marker.write_text("SynthFACS subject", encoding="utf-8")  # local pool workers see the same hook
    with pytest.raises(InterpError, match="a local worker process died") as caught:
        generate(tmp_path / "release", subjects=2, seed=5, executor=ExecutorChoice("local", workers=2))
    assert "run the same command again" in caught.value.hint and not cluster.marker.exists()
    generate(tmp_path / "release", subjects=2, seed=5, executor=ExecutorChoice("local", workers=2))  # resumes
    generate(tmp_path / "reference", subjects=2, seed=5, workers=1)
    assert _tree(tmp_path / "release") == _tree(tmp_path / "reference")
