"""What the reader skipped and why: named warnings, logged, listed, or raised with ``strict``.

Every skip has a name from :data:`WARNINGS` (stable, for scripts to match on),
a path relative to the root and a reason in words. ``strict`` turns the first
one into a :class:`~interpret_core.DataError`.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from interpret_core import DataError

from .layout import printable

log = logging.getLogger("interp.datasets")

#: At most this many skip warnings per data set are logged one by one.
MAX_LOGGED = 10

#: Every skip warning the reader gives: name -> what it means and what is skipped.
WARNINGS: dict[str, str] = {
    "malformed-landmarks": "a landmarks file is not 68 rows of two finite numbers within +-100000 pixels: the frame is skipped",
    "missing-landmarks": "a frame the protocol uses has no landmarks file: the frame is skipped",
    "unusable-landmarks": "the landmarks put both eye centres on one point: no face box, the frame is skipped",
    "malformed-emotion": "an emotion file is not one integer code 0-7: the sequence is skipped",
    "malformed-facs": "a FACS file is not rows of 'AU intensity' with intensity 0-5: the sequence is skipped",
    "duplicate-au": "a FACS file lists one AU in two rows: the sequence is skipped",
    "unknown-au": "a FACS file lists an AU number outside FACS's codes 1-99: the sequence is skipped",
    "duplicate-label-file": "a sequence has two emotion (or two FACS) files: the sequence is skipped",
    "label-without-frame": "an emotion or FACS file names a frame that has no image: the sequence is skipped",
    "misnamed-frame": "a frame's file name names another sequence than its folder: the frame is skipped",
    "duplicate-frame-number": "two frames of a sequence share a frame number: the sequence is skipped",
    "empty-sequence": "a sequence folder holds no frames: the sequence is skipped",
    "undecodable-image": "an image does not decode (truncated, bad checksum, corrupt image data): the frame is skipped",
    "image-too-large": "an image has more pixels than Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS): the frame is skipped",
    "missing-image": "an image disappeared while the data set was read: the frame is skipped",
    "symlink-loop": "a path is a symbolic link that loops ('Too many levels of symbolic links'): what it would hold is skipped",
    "unreadable": "a folder or file cannot be read (permission denied, I/O error): what it holds is skipped",
    "non-utf8-name": "a file or folder name is not valid UTF-8: the file is skipped (in a label folder, the sequence)",
}


def os_warning(exc: OSError) -> str:
    """The warning name for an OS error met while reading: ``symlink-loop`` or ``unreadable``."""
    return "symlink-loop" if exc.errno == errno.ELOOP else "unreadable"


def os_reason(exc: OSError, what: str) -> str:
    """``"<what> cannot be read (<strerror>)"`` for an OS error."""
    return f"{what} cannot be read ({exc.strerror or type(exc).__name__})"


class Problems:
    """The skip list of one data set: ``skipped`` is [{path, warning, reason}] in the order met."""

    #: The warning names this reader may give (a subclass for another reader names its own).
    warnings: dict[str, str] = WARNINGS

    def __init__(self, dataset: str, root: Path, strict: bool):
        self.dataset = dataset
        self.root = root
        self.strict = strict
        self.skipped: list[dict[str, str]] = []
        self._logged = 0

    def add(self, path: str, warning: str, reason: str) -> None:
        """Record a skip of ``path`` (relative to the root); raise DataError instead under ``strict``."""
        if warning not in self.warnings:
            raise ValueError(f"unknown skip warning {warning!r}")  # a bug in the reader, not in the data
        shown = printable(path)
        if self.strict:
            raise DataError(
                f"{self.root / shown}: {reason} ({warning})",
                "fix or remove the file, or run without --strict to skip it",
            )
        self.skipped.append({"path": shown, "warning": warning, "reason": reason})
        self._logged += 1
        if self._logged <= MAX_LOGGED:
            log.warning("%s: skipped %s: %s (%s)", self.dataset, shown, reason, warning)

    def finish(self) -> None:
        """After reading: one line with the total when more problems were found than logged."""
        if self._logged > MAX_LOGGED:
            log.warning("%s: %d problems in all; see `interp data inspect` for the list", self.dataset, self._logged)
