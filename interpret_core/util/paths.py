"""Where interp keeps its caches and its configuration, and file-name-safe names."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from interpret_core.api.errors import CacheHomeError


def _home(what: str, xdg_variable: str, fallback: str) -> Path:
    """``$INTERP_HOME``, else ``$<xdg_variable>/interp``, else ``~/<fallback>/interp``.

    Raises CacheHomeError (with a hint) when none of them is set and the user
    has no home directory, e.g. a container run under a user id without a
    ``/etc/passwd`` entry and without ``HOME``.
    """
    home = os.environ.get("INTERP_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get(xdg_variable)
    if xdg:
        return Path(xdg).expanduser() / "interp"
    try:
        user_home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry for this user id
        raise CacheHomeError(
            f"cannot find a folder for interp's {what}: INTERP_HOME, {xdg_variable} and HOME are unset "
            f"and user id {os.getuid() if hasattr(os, 'getuid') else '?'} has no home directory",
            "set INTERP_HOME to a writable folder, e.g. `export INTERP_HOME=$PWD/.interp-cache`",
        ) from None
    return user_home / fallback / "interp"


def cache_home() -> Path:
    """interp's cache folder: ``$INTERP_HOME``, else ``$XDG_CACHE_HOME/interp``, else ``~/.cache/interp``."""
    return _home("cache", "XDG_CACHE_HOME", ".cache")


def config_home() -> Path:
    """interp's configuration folder: ``$INTERP_HOME``, else ``$XDG_CONFIG_HOME/interp``, else ``~/.config/interp``."""
    return _home("configuration", "XDG_CONFIG_HOME", ".config")


def slug(text: str, unique: bool = True) -> str:
    """A file-name-safe form of ``text`` (a method spec, metric, layer or model name).

    Each run of characters other than letters, digits, ``.``, ``_`` and ``-``
    becomes one ``-``. With ``unique`` (default), a changed name gets the
    first 8 hex digits of the sha1 of ``text``, so two specs never share a
    file; names that are already safe stay as they are.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"
    if unique and safe != text:
        safe = f"{safe[:60]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return safe
