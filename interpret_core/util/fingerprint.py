"""Fingerprints that cache keys are made of: files on disk, source code, and what differs between two keys.

A cached result (a unit scan, a bench cell) is reused only if its key
equals the key of the run asking for it; :func:`first_difference` names the
first field that differs, so the run can say why it recomputes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["files_fingerprint", "source_sha256", "first_difference", "content_seed"]

#: A package with more Python files than this is identified by its version alone (hashing it would be slow).
MAX_SOURCE_FILES = 2000


def files_fingerprint(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None) -> str:
    """sha256 over (path, size in bytes, modification time in ns) of each file, in the given order.

    Paths are recorded relative to ``root`` when given, so a copied tree
    with the same times keeps its fingerprint; a missing file counts as
    ``missing``. Cheap (one ``stat`` per file) and changes whenever a file is
    rewritten, resized or touched.
    """
    digest = hashlib.sha256()
    base = None if root is None else os.fspath(root)
    for path in paths:
        name = os.fspath(path)
        full = name if base is None or os.path.isabs(name) else os.path.join(base, name)
        shown = os.path.relpath(full, base) if base is not None else name
        try:
            stat = os.stat(full)
            digest.update(f"{shown}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        except OSError:
            digest.update(f"{shown}\0missing\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def source_sha256(module_name: str) -> str | None:
    """sha256 over the ``.py`` files of the top-level package that holds ``module_name``.

    None if the package has no source files on disk (a zip import, a
    built-in) or more than :data:`MAX_SOURCE_FILES` of them.
    """
    top = module_name.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        files = sorted(
            p for location in spec.submodule_search_locations if os.path.isdir(location)
            for p in Path(location).rglob("*.py") if "__pycache__" not in p.parts
        )
        bases = [Path(location) for location in spec.submodule_search_locations]
    elif spec.origin and os.path.isfile(spec.origin):
        files, bases = [Path(spec.origin)], [Path(spec.origin).parent]
    else:
        return None
    if not files or len(files) > MAX_SOURCE_FILES:
        return None
    digest = hashlib.sha256()
    for path in files:
        base = next((b for b in bases if path.is_relative_to(b)), path.parent)
        digest.update(path.relative_to(base).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"unreadable")
        digest.update(b"\0")
    return digest.hexdigest()


def content_seed(data: bytes, seed: int = 0) -> int:
    """A 63-bit random-generator seed from ``seed`` and some content's bytes (an image's, a batch's).

    sha256 of the seed's 8 little-endian signed bytes followed by ``data``:
    the same content and seed give the same draws wherever and in whatever
    order they are computed, and different contents independent ones.
    """
    digest = hashlib.sha256(int(seed).to_bytes(8, "little", signed=True) + data).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def first_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    """The first key (dotted, sorted order) whose values differ, as ``key (old then, new now)``; "" if equal."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} ({_short(a)} then, {_short(b)} now)"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
