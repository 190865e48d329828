"""Kill each writer at seeded random writes; the re-run must end with an uninterrupted run's bytes and no temp files.

``INTERP_TEST_KILL_AT_WRITE=N[:after]`` (:mod:`interpret_core.util.io`) makes a
process SIGKILL itself at its N-th atomic write, after the temporary file is
written and before the rename, or (``:after``) just after the rename: the
moments a crash leaves the most behind. For each writer (``interp run``,
``bench``, ``train``, ``data generate``) on tiny data, an uninterrupted
reference run counts its atomic writes; then ``TRIALS`` trials (the first
write before its rename, the last after it, then seeded random writes and
sides) each run the command until it is really killed (SIGKILL: temp files
and the folder lock stay as a crash leaves them), re-run it as a user would
(``--resume`` where the command has it, else the same command) and compare
every file under ``--out`` and under ``INTERP_HOME`` (the crop cache the
readers fill) byte for byte with the reference; no temp file or lock file
may remain. A trial that kills after the cache writes starts from a filled
cache (as the reference's second, warm run, which must give the same
outputs), so that only the kills that hit the cache pay for filling it.

Speed: an ``interp`` process spends ~2 s importing torch and the plugins,
so commands do not start processes of their own. One *fork server* per test
worker (a fresh Python that imports interp once, with one torch thread, and
never runs torch itself) forks a child per command; the child calls the
CLI's ``main`` in-process with its stdout and stderr in a log file, so each
command costs only its own work. A fresh server rather than the pytest
worker forks because torch's thread pools do not survive a fork of a
process that has used them.

What may differ between an uninterrupted run and a killed-and-resumed one
is listed exactly in :data:`RUN_DEPENDENT` (wall-clock times and the moment
of creation, and whether ``run --resume`` reused its scan); every other byte
must match.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills forked children")

TRIALS = 20
SEED = 13
#: Seconds one command may take before the test gives up on it (it hangs).
COMMAND_TIMEOUT = 120

#: The fields that legitimately differ between two runs of one command, per output file (a path
#: relative to --out, a glob for several): JSON paths (keys; ``*`` for every item of a list or value of a
#: dict), CSV columns, and for text files regular expressions whose matches are blanked. They are the
#: clock (when, how long) and what this invocation itself computed rather than reused; a stale cache
#: (``recomputed``, ``recomputed_because``) is not among them: a kill must not make one.
RUN_DEPENDENT: dict[str, dict[str, list]] = {
    # run: when it finished, how long each step took, whether --resume found scan.npz
    "results.json": {"json": [("created",), ("timings",), ("scan", "reused")]},
    "report.html": {"text": [r"created [0-9T:+\-]+;"]},
    # bench: when; seconds per image and per cell (a column of the table itself); cells and attribution
    # files this invocation computed or found finished in --out
    "bench.json": {"json": [("created",), ("wall_s",), ("computed",), ("reused",), ("attributions_computed",),
                            ("attributions_reused",), ("methods", "*", "time_per_image_s"),
                            ("methods", "*", "cells", "*", "metric_seconds"), ("methods", "*", "cells", "*", "reused")]},
    "bench.csv": {"csv": ["time_per_image_s"]},
    "bench.md": {"text": [r"\| [0-9.]+ \|$"]},  # the last column: milliseconds per image
    "cells/*.json": {"json": [("metric_seconds",)]},
    "attributions/*.npz": {"npz": ["seconds_per_image"]},
    # train: seconds per fold and in total; when the model card was written
    "folds/*.json": {"json": [("seconds",)]},
    "metrics.json": {"json": [("folds", "*", "seconds")]},
    "model.json": {"json": [("created",)]},
}


def writers(data_root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{writer: (its arguments but --out, what its re-run adds)}: each on a few images of the test release."""
    data = str(data_root)
    return {
        # one layer, 10 images, a low AU minimum, few resamples: one AU testable, 5 figures, 11 writes
        "run": (["run", "--data-root", data, "--limit", "10", "--layers", "conv1", "--top-k", "1",
                 "--metric-option", "min_observations=4", "--metric-option", "min_subjects=2",
                 "--metric-option", "folds=3", "--metric-option", "bootstrap=10", "--metric-option", "null_draws=1"],
                ["--resume"]),
        # 2 methods x 2 metrics; a re-run into the same --out reuses the finished cells
        "bench": (["bench", "--data-root", data, "--limit", "4", "--methods", "deconv,saliency",
                   "--metrics", "au-pointing-game,deletion", "--no-baselines"], []),
        "train": (["train", "--dataset", "synthfacs", "--data-root", data, "--subjects", "4", "--folds", "2",
                   "--epochs", "1", "--workers", "1", "--threads", "1"], ["--resume"]),
        # an unfinished release in --out is resumed by the same command
        "generate": (["data", "generate", "--subjects", "1", "--seed", "0", "--workers", "1"], []),
    }


# -- the fork server ------------------------------------------------------------------------------
def serve(replies: int) -> None:
    """Answer one JSON request per line of stdin on file descriptor ``replies``.

    A request ``{"argv", "env", "log", "kill_at"}`` runs ``interp ARGV`` in a
    forked child; the reply is ``{"exit": code or "killed", "writes": atomic
    writes it finished, "cpu_s": the child's CPU seconds}``.
    """
    import resource

    import torch

    torch.set_num_threads(1)  # a forked child must not find a thread pool it cannot use
    torch.set_num_interop_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - imported once here, not in every child

    import interpret_core.util.io as atomic_io
    from interpret_core.cli import main
    from interpret_core.registry.loader import get_registry

    get_registry().rows()  # every plugin imported once
    for line in sys.stdin:
        request = json.loads(line)
        read_end, write_end = os.pipe()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        pid = os.fork()
        if pid == 0:  # the child: runs the command, never returns into the loop
            code = 98
            try:
                os.close(read_end)
                log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.environ.update(request["env"])
                os.environ.pop(atomic_io.KILL_AT_WRITE_VARIABLE, None)
                if request["kill_at"]:
                    os.environ[atomic_io.KILL_AT_WRITE_VARIABLE] = request["kill_at"]
                atomic_io._writes = 0
                imported = set(sys.modules)
                code = main(request["argv"])
                news = sorted(set(sys.modules) - imported)
                os.write(write_end, json.dumps({"writes": atomic_io._writes, "modules": news}).encode())
            except BaseException:  # noqa: BLE001 - reported through the log, as exit code 98
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            report = json.loads(pipe.read() or b"{}")
        for module in report.get("modules", []):  # import what the child did, so later children need not
            with contextlib.suppress(BaseException):
                importlib.import_module(module)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        if os.WIFSIGNALED(status):
            outcome = "killed" if os.WTERMSIG(status) == signal.SIGKILL else f"signal {os.WTERMSIG(status)}"
        else:
            outcome = os.WEXITSTATUS(status)
        reply = {"exit": outcome, "writes": report.get("writes"), "cpu_s": cpu}
        os.write(replies, (json.dumps(reply) + "\n").encode())


class ForkServer:
    """The test's side of :func:`serve`."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        env = dict(os.environ, INTERP_NO_PROGRESS="1")
        env.pop("INTERP_TEST_KILL_AT_WRITE", None)
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(log_dir / "server.log", "wb"), env=env,
        )
        self.commands = 0
        self.cpu_s = 0.0

    def interp(self, argv: list[str], home: Path, kill_at: str | None = None) -> dict[str, Any]:
        """Run ``interp ARGV`` with ``INTERP_HOME=home``; the reply of :func:`serve` plus ``log`` (the child's output)."""
        self.commands += 1
        log = self.log_dir / f"command-{self.commands:03d}.log"
        request = {"argv": argv, "env": {"INTERP_HOME": str(home)}, "log": str(log), "kill_at": kill_at}
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], COMMAND_TIMEOUT)
        if not ready:
            self.process.kill()
            pytest.fail(f"`interp {' '.join(argv)}` did not finish in {COMMAND_TIMEOUT} s; its output: {log}")
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"the fork server died: {(self.log_dir / 'server.log').read_text()[-2000:]}")
        reply = json.loads(line)
        self.cpu_s += reply["cpu_s"]
        reply["log"] = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return reply

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("fork-server"))
    try:
        yield server
    finally:
        server.close()


# -- comparing output folders ---------------------------------------------------------------------
def _rules(relative: str) -> dict[str, list]:
    for pattern, rules in RUN_DEPENDENT.items():
        if Path(relative).match(pattern) and pattern.count("/") == relative.count("/"):
            return rules
    return {}


def _drop(value: Any, path: tuple[str, ...]) -> int:
    """Remove the field at ``path`` from ``value`` in place wherever present; returns how many went."""
    head, rest = path[0], path[1:]
    if head == "*":
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
        return sum(_drop(item, path[1:]) for item in items)
    if not isinstance(value, dict) or head not in value:
        return 0
    if rest:
        return _drop(value[head], rest)
    del value[head]
    return 1


def comparable(folder: Path, relative: str) -> Any:
    """The file's content with only its :data:`RUN_DEPENDENT` fields removed (its bytes when it has none).

    Each rule must find its field: a rule that no longer matches the output fails the test, so
    the list stays as narrow as the outputs.
    """
    data = (folder / relative).read_bytes()
    rules = _rules(relative)
    if not rules:
        return data
    if "json" in rules:
        value = json.loads(data)
        for path in rules["json"]:
            assert _drop(value, path), f"{relative}: no field {'.'.join(path)} (update RUN_DEPENDENT)"
        return value
    if "csv" in rules:
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert rows and all(column in rows[0] for column in rules["csv"]), f"{relative}: no {rules['csv']} column"
        return [{k: v for k, v in row.items() if k not in rules["csv"]} for row in rows]
    if "npz" in rules:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            assert set(rules["npz"]) <= set(arrays.files), f"{relative}: no {rules['npz']} array"
            return {key: (arrays[key].dtype.str, arrays[key].shape, arrays[key].tobytes())
                    for key in sorted(arrays.files) if key not in rules["npz"]}
    text = data.decode()
    for pattern in rules["text"]:
        text, found = re.subn(pattern, "<run-dependent>", text, flags=re.MULTILINE)
        assert found, f"{relative}: nothing matches {pattern!r} (update RUN_DEPENDENT)"
    return text


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def leftovers(*folders: Path) -> list[str]:
    """Temp files of atomic writes and lock files under ``folders``."""
    from interpret_core.util.io import LOCK_FILE, LOCK_OWNER_FILE, TEMP_PATTERN

    return [str(p) for folder in folders for p in folder.rglob("*")
            if TEMP_PATTERN.match(p.name) or p.name in (LOCK_FILE, LOCK_OWNER_FILE)]


# -- the test -------------------------------------------------------------------------------------
@pytest.mark.parametrize("writer", ["run", "bench", "train", "generate"])
def test_a_killed_writer_resumes_to_the_bytes_of_an_uninterrupted_run(writer, fork_server, synthfacs_root, tmp_path):
    arguments, rerun_extra = writers(synthfacs_root)[writer]
    out = tmp_path / "out"  # every run writes here, so the paths recorded in the outputs agree
    home, warm = tmp_path / "home", tmp_path / "warm-home"  # INTERP_HOME: empty, or holding the crop cache
    home.mkdir()
    started = time.perf_counter()
    reference = fork_server.interp([*arguments, "--out", str(out)], home)
    assert reference["exit"] == 0 and reference["writes"], reference["log"]
    expected = {f"out/{name}": comparable(out, name) for name in files(out)}
    expected.update({f"home/{name}": comparable(home, name) for name in files(home)})
    assert not leftovers(out, home)
    writes = reference["writes"]
    assert writes >= 5, f"only {writes} atomic writes: the hook is not counting"
    # With the cache already filled the command skips its first `cached` writes (filling the crop cache, ~1 s
    # of a train): trials that kill later start from a copy of the filled cache, and count the writes after it.
    shutil.copytree(home, warm)
    shutil.rmtree(out)
    warm_run = fork_server.interp([*arguments, "--out", str(out)], home)
    assert warm_run["exit"] == 0, warm_run["log"]
    assert {f"out/{name}": comparable(out, name) for name in files(out)} == \
        {k: v for k, v in expected.items() if k.startswith("out/")}, "a filled cache gives other outputs"
    cached = writes - warm_run["writes"]
    assert cached >= 0

    rng = random.Random(f"{SEED}-{writer}")
    # The two ends always (the first write, before its rename; the last, after it: all written, not yet
    # exited), then seeded random writes and sides of the rename.
    kills = [(1, "before"), (writes, "after")]
    kills += [(rng.randint(1, writes), rng.choice(["before", "after"])) for _ in range(TRIALS - len(kills))]
    trials = []
    for point, phase in kills:
        shutil.rmtree(out)
        shutil.rmtree(home)
        if point > cached:
            shutil.copytree(warm, home)
        else:
            home.mkdir()
        where = f"write {point} of {writes}, {phase} its rename"
        kill_at = f"{point if point <= cached else point - cached}:{phase}"
        killed = fork_server.interp([*arguments, "--out", str(out)], home, kill_at=kill_at)
        assert killed["exit"] == "killed", f"not killed at {where}: {killed['log']}"
        left = leftovers(out, home) if out.exists() else []
        if point <= cached:  # the cache is filled before the command writes any output of its own
            assert [name for name in files(out) if not name.startswith(".interp.lock")] == [], where
        rerun = fork_server.interp([*arguments, *rerun_extra, "--out", str(out)], home)
        assert rerun["exit"] == 0, f"the re-run after a kill at {where} failed: {rerun['log']}"
        got = {f"out/{name}": None for name in files(out)} | {f"home/{name}": None for name in files(home)}
        assert sorted(got) == sorted(expected), f"after a kill at {where}: other files than an uninterrupted run"
        for name in expected:
            folder, relative = (out, name[4:]) if name.startswith("out/") else (home, name[5:])
            assert comparable(folder, relative) == expected[name], f"after a kill at {where}: {name} differs"
        assert not leftovers(out, home), f"after a kill at {where}: temp or lock files remain"
        trials.append((point, phase, len(left)))
    # The trials did meet the worst case: a kill that left temp files behind, which the re-run removed.
    assert any(left for _, _, left in trials), trials
    print(f"{writer}: {writes} writes ({cached} into the cache), {TRIALS} kills at "
          f"{sorted(set((p, s) for p, s, _ in trials))}; {time.perf_counter() - started:.1f} s wall, "
          f"{fork_server.cpu_s:.1f} s CPU in children so far")


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    # stdout carries the replies; anything else printing there (a plugin at import) goes to stderr
    replies = os.dup(1)
    os.dup2(2, 1)
    serve(replies)
