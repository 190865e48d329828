"""Atomic file output, and one writer per output folder.

Every result file is written to a temporary file in the same folder and then
renamed over the target with :func:`os.replace`, so an interrupted run leaves
each file either complete or absent, never half-written. The writer holds an
``flock`` on its temporary file until the rename; a process killed with
SIGKILL leaves the file behind, unlocked (the kernel drops a dead process's
locks), so the next write next to the same target, and
:func:`claim_output_dir` for the whole folder, remove it at once, while the
temporary file of a live writer (another process filling the same cache) is
left alone. Where locks cannot be tested (no ``fcntl``, a file system
without ``flock``) such files are removed once a day old.

A command that writes an output folder holds it with :func:`claim_output_dir`
for the whole command: a second writer is refused with
:class:`~interpret_core.api.errors.OutputLockedError` naming the holder's
PID, and a folder the command created is removed again if the command fails
or is interrupted before writing anything into it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: temp files of killed writers go by age only
    fcntl = None  # type: ignore[assignment]

#: Temporary files of :func:`atomic_open` whose writer cannot be tested for life (no ``flock``) are removed by
#: the next write beside them once older than this (seconds).
STALE_TEMP_SECONDS = 24 * 3600
#: ``.<target name>.<8 random characters from mkstemp>.tmp``
TEMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
#: The advisory lock of an output folder, and its sidecar naming the holder.
LOCK_FILE = ".interp.lock"
LOCK_OWNER_FILE = ".interp.lock.owner"
#: Test hook (fault injection): ``N`` SIGKILLs this process at its N-th atomic write, after the
#: temporary file is written and before the rename; ``N:after`` just after the rename.
KILL_AT_WRITE_VARIABLE = "INTERP_TEST_KILL_AT_WRITE"
_writes = 0


def _fault_point(phase: str) -> None:
    """SIGKILL this process where ``INTERP_TEST_KILL_AT_WRITE`` says (a test hook; unset in normal use)."""
    spec = os.environ.get(KILL_AT_WRITE_VARIABLE)
    if not spec:
        return
    number, _, when = spec.partition(":")
    if int(number) == _writes and (when or "before") == phase:
        os.kill(os.getpid(), signal.SIGKILL)


def _writer_gone(path: str) -> bool | None:
    """Whether the writer of temp file ``path`` is dead: True (the file is then removed here), False, or None.

    None means the lock cannot be tested (no ``fcntl``, a file system
    without ``flock``, a file we may not open). The removal happens while
    the lock is held, so a writer that locks the file just after us finds it
    unlinked and takes another (see :func:`_locked_temp_file`).
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False  # renamed or removed meanwhile: nothing left to clean
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            return False if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    finally:
        os.close(fd)


def _remove_if_stale(path: str, now: float, older_than: float) -> bool | None:
    """Remove temp file ``path`` if its writer is gone (or, untestable, it is ``older_than`` s old): True if removed.

    False: kept (its writer is alive, or it is too young to judge by age);
    None: the file is gone already or cannot be inspected.
    """
    gone = _writer_gone(path)
    try:
        if gone is None:
            if older_than > 0 and now - os.stat(path, follow_symlinks=False).st_mtime < older_than:
                return False
            os.unlink(path)
            return True
    except OSError:
        return None
    return gone


def _temp_files(folder: str, recursive: bool) -> Iterator[tuple[str, str]]:
    """(path, target name) of every temp file of :func:`atomic_open` under ``folder``."""
    folders = [folder]
    while folders:
        current = folders.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        folders.append(entry.path)
                    continue
            except OSError:
                continue
            if TEMP_PATTERN.match(entry.name):
                yield entry.path, entry.name[1:-13]  # ".<target>.<8 chars>.tmp" -> "<target>"


def remove_stale_temp_files(folder: str | os.PathLike, name: str | None = None, older_than: float = STALE_TEMP_SECONDS,
                            recursive: bool = False) -> int:
    """Remove leftover temporary files of :func:`atomic_open` in ``folder``; returns how many.

    A file that matches the temporary-file pattern (of ``name`` if given) is
    removed if its writer is gone (no process holds its ``flock``); where
    that cannot be tested, if its modification time is at least
    ``older_than`` seconds ago. Errors (a file already gone, no permission)
    are ignored.
    """
    now = time.time()
    return sum(_remove_if_stale(path, now, older_than) is True for path, target in _temp_files(os.fspath(folder), recursive)
               if name is None or target == name)


#: Per folder written into by this process: target name -> temp files of that target seen there at this
#: process's first write into the folder and not removable then (a live writer's, or too young to judge).
#: Listing the folder before every write made writing N files into one folder cost O(N^2) (2.4 ms a write
#: at 5,000 files, 93 % of it); a folder is listed once per process, and later writes recheck only the
#: leftovers of their own target. A writer that dies in a folder after this process listed it leaves its
#: temp file to the next process that writes there (or to ``claim_output_dir``'s sweep).
_leftovers: dict[str, dict[str, list[str]]] = {}
_leftovers_lock = threading.Lock()


def _clean_before_write(target: Path) -> None:
    """Remove dead writers' temp files of ``target`` (what :func:`atomic_open` does before each write)."""
    folder, now = os.fspath(target.parent), time.time()
    with _leftovers_lock:
        seen = _leftovers.get(folder)
        if seen is None:
            seen = _leftovers[folder] = {}
            for path, name in _temp_files(folder, recursive=False):
                seen.setdefault(name, []).append(path)
        candidates = seen.pop(target.name, [])
    kept = [path for path in candidates if _remove_if_stale(path, now, STALE_TEMP_SECONDS) is False]
    if kept:
        with _leftovers_lock:
            seen.setdefault(target.name, []).extend(kept)


def _locked_temp_file(target: Path) -> tuple[int, int | None, str]:
    """A new temp file beside ``target``: (fd, a second fd holding its ``flock`` or None, its path).

    The lock tells :func:`remove_stale_temp_files` that the writer is alive;
    it is held on its own descriptor so that it lasts until after the rename
    (closing the file does not drop it). A cleaner that removed the file
    between its creation and our lock leaves it unlinked: then take another.
    """
    while True:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        if fcntl is None:
            return fd, None, tmp_name
        lock_fd = os.dup(fd)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        except OSError:  # no flock on this file system: the age rule applies
            os.close(lock_fd)
            return fd, None, tmp_name
        if os.fstat(fd).st_nlink:
            return fd, lock_fd, tmp_name
        os.close(lock_fd)
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; rename it onto ``path`` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and ``path`` is left as it was. ``durable=False`` skips the fsync, for
    writers of thousands of small files that commit with a final manifest.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    global _writes
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_before_write(target)
    _writes += 1
    fd, lock_fd, tmp_name = _locked_temp_file(target)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        _fault_point("before")
        os.replace(tmp_name, target)
        _fault_point("after")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``durable``: fsync before the rename)."""
    with atomic_open(path, "wb", durable=durable) as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def to_jsonable(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays, paths and tuples to JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    return value


def dumps_json(value: Any) -> str:
    """Serialise ``value`` as indented JSON with a trailing newline."""
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n"


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    write_text(path, dumps_json(value))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a decoding error names the file."""
    from interpret_core.api.errors import DataError

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})", "delete or regenerate the file") from exc


# -- one writer per output folder ---------------------------------------------------------
def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet, or None."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing = candidate
    return missing


def _holds_only_locks(folder: Path) -> bool:
    """True if ``folder`` holds no file but our lock files (empty sub-folders allowed)."""
    for _, _, files in os.walk(folder):
        if any(name not in (LOCK_FILE, LOCK_OWNER_FILE) for name in files):
            return False
    return True


def _lock_holder(folder: Path) -> str:
    try:
        owner = json.loads((folder / LOCK_OWNER_FILE).read_text(encoding="utf-8"))
        return f"PID {int(owner['pid'])}" + (f", `{owner['command']}`" if owner.get("command") else "")
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown"


@contextlib.contextmanager
def claim_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` if needed and hold its advisory lock until the block ends.

    The lock (``filelock``, an ``flock`` on ``<path>/.interp.lock``; the
    kernel drops it when the process dies, even on SIGKILL) lets one writer
    at a time into a folder; a second one gets
    :class:`~interpret_core.api.errors.OutputLockedError` (exit code 1)
    naming the holder's PID, which the holder writes to
    ``<path>/.interp.lock.owner`` while it holds the lock (a SIGKILL leaves
    both files; the next claim takes them over). Once locked,
    temporary files left in the folder by a killed writer are removed. If
    the block raises (KeyboardInterrupt included) and the folders this call
    created hold no file, they are removed again. The lock file
    and the owner file are removed on release.
    """
    import filelock

    from interpret_core.api.errors import OutputLockedError, UsageError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output {folder} exists and is not a folder", "give a new or existing folder for --out")
    created = _first_missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {folder}: {exc.strerror or exc}",
                         "choose a writable folder for --out") from None
    lock = filelock.FileLock(os.fspath(folder / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise OutputLockedError(
            f"{folder} is being written by another interp process ({_lock_holder(folder)})",
            "wait for it to finish, or choose another --out",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot write into output folder {folder}: {exc.strerror or exc}",
                         "choose a writable folder for --out") from None
    try:
        owner = {"pid": os.getpid(), "command": " ".join(["interp", *sys.argv[1:]]) if sys.argv else None,
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with open(folder / LOCK_OWNER_FILE, "w", encoding="utf-8") as handle:  # not atomic: only a hint for others
            json.dump(owner, handle)
        remove_stale_temp_files(folder, older_than=0, recursive=True)
        yield folder
    except BaseException:
        if created is not None and _holds_only_locks(created):
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        # Unlinked while still held: a peer that opened the old file sees it unlinked once it gets the
        # flock and retries on a new one (filelock >= 4 checks st_nlink), so the folder ends clean.
        for name in (LOCK_OWNER_FILE, LOCK_FILE):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        lock.release()
