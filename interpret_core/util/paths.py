"""Where interp keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """interp's cache folder: ``$INTERP_HOME``, else ``$XDG_CACHE_HOME/interp``, else ``~/.cache/interp``."""
    home = os.environ.get("INTERP_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "interp"
    return Path.home() / ".cache" / "interp"
