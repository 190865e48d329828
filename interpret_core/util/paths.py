"""Where interp keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

from interpret_core.api.errors import CacheHomeError


def cache_home() -> Path:
    """interp's cache folder: ``$INTERP_HOME``, else ``$XDG_CACHE_HOME/interp``, else ``~/.cache/interp``.

    Raises CacheHomeError (with a hint) when none of them is set and the user
    has no home directory, e.g. a container run under a user id without a
    ``/etc/passwd`` entry and without ``HOME``.
    """
    home = os.environ.get("INTERP_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "interp"
    try:
        user_home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry for this user id
        raise CacheHomeError(
            "cannot find a folder for interp's cache: INTERP_HOME, XDG_CACHE_HOME and HOME are unset "
            f"and user id {os.getuid() if hasattr(os, 'getuid') else '?'} has no home directory",
            "set INTERP_HOME to a writable folder, e.g. `export INTERP_HOME=$PWD/.interp-cache`",
        ) from None
    return user_home / ".cache" / "interp"
