"""Where the parallel parts of a command run: this process, local worker processes, or a Dask cluster.

One interface, :class:`Executor`, for every command with independent pieces
of work (bench cells, training folds, unit-scan shards, SynthFACS subjects):

- :meth:`Executor.share` sends a value to the workers once (model weights,
  a training job's inputs) and returns a handle that tasks receive as an
  argument;
- :meth:`Executor.map` runs ``function(item, *shared)`` for each item and
  yields ``(position, result)`` as tasks finish, so the caller saves each
  finished piece at once (resume after a lost worker or Ctrl-C); items the
  caller appends to the list while iterating run too, so work that depends
  on a finished result (a bench method's cells on its attributions) starts
  as soon as that result is back, without waiting for the rest;
- a task may call :func:`emit` to report progress (an epoch finished); the
  caller's ``on_event`` receives it in the main process;
- :meth:`Executor.announcement` is the other direction: a value the caller
  decides while tasks run (the epochs the training folds settle on) and a
  running task reads, without waiting for it, between steps of its work.

Kinds (``--executor``):

- ``local`` with ``--workers 1`` (the default): in this process, in order;
- ``local`` with ``--workers N``: N spawned processes on this machine (never
  forked: a forked OpenMP runtime can hang), so a script calling a workflow
  with workers > 1 needs the usual ``if __name__ == "__main__":`` guard;
- ``dask``: an existing cluster (``--scheduler ADDRESS``) or a LocalCluster of
  ``--workers N`` processes with one thread each, started for the command.
  Dask (``dask`` + ``distributed``) is the optional extra ``interp[dask]`` and
  is imported only here, only when asked for.

Results travel back to the main process, which alone writes the command's
result files (atomically), so a task that dies never leaves a half-written
file. Dask reruns a task whose worker was lost (``distributed`` allows three
losses per task); a task that keeps killing workers, a broken local pool or
a scheduler that goes away is an :class:`InterpError` naming where it ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from interpret_core.api.errors import DataError, InterpError, UsageError

#: The kinds ``--executor`` accepts.
EXECUTOR_KINDS = ("local", "dask")
#: Seconds to wait for a Dask scheduler given with ``--scheduler`` before giving up.
CONNECT_TIMEOUT_S = 10.0
#: Test hook (fault injection): while the file this names exists, the next task to start whose name
#: begins with the file's text (empty: any task) deletes it and SIGKILLs its own worker process (a
#: lost worker). Unset in normal use; never acts in the command's own process.
KILL_TASK_VARIABLE = "INTERP_TEST_KILL_TASK"
DASK_HINT = "install the extra: pip install 'interp[dask]'"
#: What to do after a lost task: every finished part was saved by the command as it came back.
RESUME_HINT = "the parts already finished are saved: run the same command again to continue (run and train: add --resume)"


@dataclasses.dataclass(frozen=True)
class ExecutorChoice:
    """``--executor``, ``--workers`` and ``--scheduler`` as typed.

    ``workers`` None: 1 for ``local``; for ``dask`` without a scheduler, the CPUs.
    """

    kind: str = "local"
    workers: int | None = None
    scheduler: str | None = None

    def validate(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise UsageError(f"--executor {self.kind!r}: unknown executor", f"choose one of: {', '.join(EXECUTOR_KINDS)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}", "e.g. --workers 2")
        if self.scheduler and self.kind != "dask":
            raise UsageError("--scheduler needs --executor dask", "add --executor dask, or drop --scheduler")
        if self.scheduler and self.workers is not None:
            raise UsageError("--workers and --scheduler contradict each other: an existing cluster has its own workers",
                             "pass --scheduler ADDRESS for a running cluster, or --workers N for a local one")


# -- what a task sees ------------------------------------------------------------------------------
_task = threading.local()


def emit(payload: Any) -> None:
    """Report ``payload`` (picklable) from inside a task to the caller's ``on_event``; a no-op elsewhere."""
    sink = getattr(_task, "emit", None)
    if sink is not None:
        sink(payload)


def _maybe_kill_this_worker(name: str) -> None:
    marker = os.environ.get(KILL_TASK_VARIABLE)
    if not marker:
        return
    try:
        if not name.startswith(Path(marker).read_text(encoding="utf-8").strip()):
            return
        os.unlink(marker)  # one task wins the marker
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _call(function: Callable[..., Any], item: Any, shared: Sequence[Any], sink: Callable[[Any], None] | None) -> Any:
    if isinstance(item, tuple):  # an item may carry handles from share() (e.g. one method's attributions)
        item = tuple(_unwrap(value) for value in item)
    _task.emit = sink
    try:
        return function(item, *shared)
    finally:
        _task.emit = None


class Announcement:
    """A value the caller announces once while tasks run; a task passed this object reads it.

    In this process it is an attribute; :class:`LocalProcesses` and :class:`DaskExecutor`
    return their own kinds (a file, a Dask ``Variable``). Picklable, so it travels to a task as
    one of ``map``'s ``shared`` values. The value must be JSON-serialisable and not None.
    """

    def __init__(self) -> None:
        self._value: Any = None

    def announce(self, value: Any) -> None:
        """Set the value (the caller, once); tasks that ask from now on hear it."""
        self._value = value

    def heard(self) -> Any:
        """The value if it has been announced, else None (never waits)."""
        return self._value

    def close(self) -> None:
        """Forget it (the caller, when the tasks that read it are done or cancelled)."""
        self._value = None


class _FileAnnouncement(Announcement):
    """An announcement between processes of one machine: a JSON file, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def announce(self, value: Any) -> None:
        from interpret_core.util.io import write_json

        write_json(self.path, {"value": value})

    def heard(self) -> Any:
        from interpret_core.util.io import read_json

        try:
            return read_json(self.path)["value"]
        except (OSError, DataError, KeyError):
            return None  # not announced yet (an atomic write leaves no half-written file)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


class _DaskAnnouncement(Announcement):
    """An announcement on a Dask cluster: a named ``distributed.Variable`` on the scheduler."""

    def __init__(self, name: str, client: Any = None) -> None:
        self.name, self._client = name, client

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "_client": None}  # a task reaches the scheduler through its worker's client

    def _variable(self) -> Any:
        import distributed

        return distributed.Variable(self.name, client=self._client)

    def announce(self, value: Any) -> None:
        self._variable().set(value)

    def heard(self) -> Any:
        try:
            return self._variable().get(timeout=0.01)
        except TimeoutError:
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._variable().delete()
            # The delete travels on the client's batched stream, a read on its own RPC: wait (briefly)
            # until the scheduler has forgotten it, so that nothing hears it after close().
            deadline = time.monotonic() + 5.0
            while self.heard() is not None and time.monotonic() < deadline:
                time.sleep(0.01)


class Executor:
    """Runs independent tasks; see the module docstring. Use through :func:`open_executor`."""

    kind = "local"
    #: How many tasks run at once.
    workers = 1
    #: Whether tasks run in this process (they may then take a progress bar).
    in_process = True

    def describe(self) -> str:
        """Where tasks run, for messages: e.g. ``this process`` or ``Dask scheduler tcp://...``."""
        return "this process"

    def share(self, value: Any) -> Any:
        """A handle for ``value`` that tasks receive in place of it, sent to each worker once."""
        return value

    def announcement(self) -> Announcement:
        """A new :class:`Announcement` that this executor's tasks can read (pass it in ``shared``)."""
        return Announcement()

    def map(
        self,
        function: Callable[..., Any],
        items: Sequence[Any],
        *,
        shared: Sequence[Any] = (),
        on_event: Callable[[Any], None] | None = None,
        name: str | Callable[[Any], str] = "task",
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(position, function(item, *shared))`` for each of ``items`` as tasks finish.

        ``function`` must be importable (a module-level function; not a
        lambda) unless the executor runs in process. ``shared`` are handles
        from :meth:`share` or plain values. ``items`` may be a list that the
        caller extends while iterating: what it appends before asking for the
        next result is run too (in this process: after the items before it).
        ``name`` (or ``name(item)``) names a task in messages and in Dask's
        task keys. Closing the generator early cancels the tasks not yet finished.
        """
        for position, item in enumerate(items):  # a list iterator sees items appended meanwhile
            yield position, _call(function, item, [_unwrap(value) for value in shared], on_event)

    def close(self) -> None:
        """Stop the workers this executor started."""


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, _Shared) else value


def _task_name(name: str | Callable[[Any], str], item: Any) -> str:
    return name(item) if callable(name) else name


@dataclasses.dataclass(frozen=True)
class _Shared:
    """A value given to a local pool's workers once, when they start."""

    value: Any


# -- local worker processes ------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _pool_init(shared: Sequence[Any], events: Any) -> None:
    _WORKER.update(shared=[_unwrap(value) for value in shared], events=events)


def _pool_task(function: Callable[..., Any], name: str, position: int, item: Any) -> Any:
    _maybe_kill_this_worker(name)
    events = _WORKER["events"]
    return _call(function, item, _WORKER["shared"], lambda payload: events.put((position, payload)))


class LocalProcesses(Executor):
    """``workers`` spawned processes on this machine (``--executor local --workers N``)."""

    in_process = False

    def __init__(self, workers: int):
        import tempfile

        self.workers = workers
        self._scratch = tempfile.TemporaryDirectory(prefix="interp-executor-")  # announcements' files

    def describe(self) -> str:
        return f"{self.workers} local worker processes"

    def share(self, value: Any) -> Any:
        return _Shared(value)

    def announcement(self) -> Announcement:
        return _FileAnnouncement(Path(self._scratch.name) / f"announcement-{uuid.uuid4().hex}.json")

    def close(self) -> None:
        self._scratch.cleanup()

    def map(self, function, items, *, shared=(), on_event=None, name="task"):
        import concurrent.futures
        import multiprocessing
        import queue as queue_module
        from concurrent.futures.process import BrokenProcessPool

        if not items:
            return
        context = multiprocessing.get_context("spawn")
        events = context.Queue()
        pool = concurrent.futures.ProcessPoolExecutor(
            min(self.workers, len(items)), mp_context=context, initializer=_pool_init, initargs=(list(shared), events)
        )

        def drain() -> None:
            while True:
                try:
                    position, payload = events.get_nowait()
                except (queue_module.Empty, OSError, ValueError):
                    return
                if on_event is not None:
                    on_event(payload)

        futures: dict[Any, int] = {}
        pending: set[Any] = set()

        def submit_new() -> None:  # the items appended since the last call (all of them at first)
            for position in range(len(futures), len(items)):
                future = pool.submit(_pool_task, function, _task_name(name, items[position]), position, items[position])
                futures[future] = position
                pending.add(future)

        try:
            submit_new()
            while pending:
                done, _ = concurrent.futures.wait(pending, timeout=0.05, return_when=concurrent.futures.FIRST_COMPLETED)
                drain()
                for future in sorted(done, key=futures.__getitem__):
                    pending.discard(future)
                    position = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        raise InterpError(
                            f"a local worker process died while running {_task_name(name, items[position])} {position} ({exc})",
                            f"{RESUME_HINT}; use fewer --workers if memory ran out",
                        ) from None
                    drain()
                    yield position, result
                    submit_new()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            events.close()


# -- Dask ------------------------------------------------------------------------------------------
def _dask_task(function: Callable[..., Any], name: str, topic: str, position: int, item: Any, *shared: Any) -> Any:
    from distributed import get_worker

    _maybe_kill_this_worker(name)
    worker = get_worker()
    return _call(function, item, shared, lambda payload: worker.log_event(topic, payload))


def _shared_value(value: Any) -> Any:
    return value


def local_cluster(workers: int, **options: Any):
    """A Dask ``LocalCluster`` of ``workers`` processes with 1 thread each, as ``--workers N`` starts.

    Dask's nannies export ``MALLOC_TRIM_THRESHOLD_=65536`` to their workers, to hand freed
    memory back to the OS. Setting it switches off glibc's dynamic mmap threshold, so every
    tensor above 128 KiB is mmapped, zeroed and unmapped again: fer-cnn training steps spent
    2.7 s of system time per 2.3 s of user time in a worker (0.3 s without), and 2 workers
    were barely faster than 1 on 2 cores. Our tasks are short-lived compute, so the clusters we
    start keep glibc's default (None unsets the variable). ``options`` go to ``LocalCluster``.
    """
    import dask

    distributed = _import_distributed()
    settings = {"n_workers": workers, "threads_per_worker": 1, "processes": True,
                "dashboard_address": ":0",  # any free port: no clash with a running cluster
                "silence_logs": logging.ERROR, **options}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return distributed.LocalCluster(**settings)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(f"--executor dask needs Dask's distributed scheduler, which is not installed ({exc})", DASK_HINT) from None
    return distributed


def _said_by_our_error(record: logging.LogRecord) -> bool:
    """A logging filter: False for what Dask's client logs when it loses the scheduler (our InterpError says it, in one line)."""
    return not str(record.msg).startswith("Failed to reconnect to scheduler")


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: the one at ``scheduler``, or a LocalCluster of ``workers`` processes started here."""

    kind = "dask"
    in_process = False

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        distributed = _import_distributed()
        self._cluster = None
        if scheduler:
            self.address = scheduler
            try:
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InterpError(
                    f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: {exc})".replace("\n", " "),
                    "start one with `dask scheduler` (and workers with `dask worker ADDRESS`), check the address and port, "
                    "or use --executor dask --workers N for a local cluster",
                ) from None
        else:
            self._cluster = local_cluster(workers or _cpus())
            self.client = distributed.Client(self._cluster, set_as_default=False)
            self.address = self._cluster.scheduler_address
        self.workers = max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})) if not workers else workers)
        logging.getLogger("distributed.client").addFilter(_said_by_our_error)  # until close()

    def describe(self) -> str:
        return f"Dask scheduler {self.address}"

    def share(self, value: Any) -> Any:
        # A task that returns the value, not client.scatter: the scheduler can recompute a task's
        # result when the worker holding it dies, but never scattered data.
        # Dask warns about a large graph here (a training job's crops are tens of MB); sending them once
        # inside this one task is the point, so that warning says nothing to the user.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            future = self.client.submit(_shared_value, value, key=f"shared-{type(value).__name__}-{uuid.uuid4().hex}", pure=False)
        # A copy on every worker now, while none is busy: the first tasks, which all need it, would
        # otherwise queue on the one worker holding it until the scheduler steals them for the
        # others (0.9 s of an idle worker on a 2-worker LocalCluster, measured). Workers that join
        # later fetch it when their first task needs it. A failure here shows up again in map.
        with contextlib.suppress(Exception):
            self.client.replicate([future])
        return future

    def announcement(self) -> Announcement:
        return _DaskAnnouncement(f"interp-announcement-{uuid.uuid4().hex}", self.client)

    def map(self, function, items, *, shared=(), on_event=None, name="task"):
        import queue as queue_module

        distributed = _import_distributed()
        if not items:
            return
        topic = f"interp-{uuid.uuid4().hex}"
        events: queue_module.SimpleQueue = queue_module.SimpleQueue()
        if on_event is not None:
            self.client.subscribe_topic(topic, lambda event: events.put(event[1]))

        def drain() -> None:
            while on_event is not None:
                try:
                    payload = events.get_nowait()
                except queue_module.Empty:
                    return
                on_event(payload)

        futures: dict[Any, int] = {}
        pending: set[Any] = set()
        threads = _Refreshed(lambda: sum(self.client.nthreads().values()), every_s=1.0)
        finished = threading.Event()

        def submit_new() -> None:
            # In list order, one task per worker thread, the next one when a task finishes (as a
            # process pool does). Given all at once, the scheduler runs later tasks first (it holds
            # back tasks it takes for the roots of a graph and sends others straight to workers),
            # e.g. a bench method's cells before the attributions of another method, which gate
            # more work; and a task queued behind a long one on a busy worker waits while another
            # worker idles. The thread count is read again as workers come and go (adaptive clusters).
            while len(futures) < len(items) and len(pending) < max(1, threads()):
                position = len(futures)
                task = _task_name(name, items[position])
                future = self.client.submit(_dask_task, function, task, topic, position, items[position], *shared,
                                            key=f"{task.replace(' ', '-')}-{position}-{topic}", pure=False)
                futures[future] = position
                pending.add(future)
                future.add_done_callback(lambda _: finished.set())

        try:
            submit_new()
            while pending:
                finished.wait(0.05)  # wakes when a task finishes, or to pass on progress events
                finished.clear()  # a task finishing from here on sets it again; the check below sees those before
                done = [future for future in pending if future.done()]
                if not done:
                    drain()
                    if len(futures) < len(items):
                        submit_new()  # workers may have joined
                    continue
                for future in sorted(done, key=futures.__getitem__):
                    pending.discard(future)
                    position = futures[future]
                    result = self._result(future, f"{_task_name(name, items[position])} {position}", distributed)
                    drain()
                    yield position, result
                    submit_new()
        finally:
            for future in pending:
                future.cancel()
            if on_event is not None:
                with contextlib.suppress(Exception):
                    self.client.unsubscribe_topic(topic)

    def _result(self, future: Any, what: str, distributed: Any) -> Any:
        """The task's result; its own exception as raised; a lost worker or scheduler as an InterpError naming it."""
        try:
            return future.result()
        except distributed.client.FutureCancelledError as exc:
            if self.client.status != "running":  # the client gave up reconnecting: the scheduler is gone
                raise InterpError(
                    f"lost the Dask scheduler {self.address} while waiting for {what} "
                    f"(no answer for {CONNECT_TIMEOUT_S:g} s; the tasks not finished were cancelled)",
                    f"restart the scheduler and its workers; {RESUME_HINT}",
                ) from None
            raise InterpError(f"{what} was cancelled on the Dask scheduler {self.address} ({exc})".replace("\n", " "),
                              f"the scheduler or its workers went away; {RESUME_HINT}") from None
        except Exception as exc:
            if isinstance(exc, distributed.KilledWorker):
                raise InterpError(
                    f"{what} lost its Dask worker too often on the scheduler {self.address} (KilledWorker)",
                    f"check the workers' memory and logs; {RESUME_HINT}",
                ) from None
            if future.status != "error":  # not the task's own failure: the connection to the scheduler
                raise InterpError(
                    f"lost the Dask scheduler {self.address} while waiting for {what} ({type(exc).__name__}: {exc})".replace("\n", " "),
                    f"restart the scheduler; {RESUME_HINT}",
                ) from None
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        logging.getLogger("distributed.client").removeFilter(_said_by_our_error)
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


class _Refreshed:
    """``read()``, called again at most every ``every_s`` seconds (a value from the scheduler, without an RPC per poll)."""

    def __init__(self, read: Callable[[], int], every_s: float):
        self._read, self._every_s, self._value, self._at = read, every_s, 0, -math.inf

    def __call__(self) -> int:
        if time.monotonic() - self._at >= self._every_s:
            self._at = time.monotonic()
            with contextlib.suppress(Exception):  # a scheduler that went away shows in the tasks' results instead
                self._value = self._read()
        return self._value


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_executor(choice: ExecutorChoice | None) -> Iterator[Executor]:
    """The executor of ``choice`` (None: in this process), closed (its workers stopped) on exit."""
    choice = choice or ExecutorChoice()
    choice.validate()
    if choice.kind == "dask":
        executor: Executor = DaskExecutor(choice.scheduler, choice.workers)
    elif (choice.workers or 1) > 1:
        executor = LocalProcesses(int(choice.workers or 1))
    else:
        executor = Executor()
    try:
        yield executor
    finally:
        executor.close()
