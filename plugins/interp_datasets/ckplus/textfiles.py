"""The release's text files: landmarks, FACS and emotion files.

Numbers are decimal floats, in CK+ in e-notation with leading spaces
(``   3.1234560e+02   2.4567890e+02``), separated by any whitespace. Each
reader returns the parsed values or raises :class:`MalformedFile` (or one of
its subclasses); nothing else escapes, whatever the bytes on disk.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS
from .problems import os_reason, os_warning

#: A text file of the release is a few KB; anything larger is not one (and is not read into memory).
MAX_TEXT_BYTES = 1 << 20
#: Landmark coordinates are pixels of a frame of at most 720x490; this bound only rejects nonsense (1e12).
MAX_COORDINATE = 100_000.0
#: FACS codes action units, head and eye positions, visibility codes and gross behaviours 1-99.
FACS_CODES = range(1, 100)

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class MalformedFile(ValueError):
    """A text file of the release that cannot be parsed; the message is the reason.

    ``warning`` names the problem when it is more specific than "malformed"
    (``duplicate-au``, ``unknown-au``, ``symlink-loop``, ``unreadable``; see
    :data:`~interp_datasets.ckplus.problems.WARNINGS`), else None.
    """

    def __init__(self, message: str, warning: str | None = None):
        super().__init__(message)
        self.warning = warning


class MissingFile(MalformedFile):
    """A text file the layout requires is not there."""


class UnreadableFile(MalformedFile):
    """A text file the file system will not give us (a symlink loop, no permission, an I/O error)."""


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        raise MissingFile("file missing") from None
    except IsADirectoryError:
        raise MalformedFile("is a folder, not a text file") from None
    except OSError as exc:
        raise UnreadableFile(os_reason(exc, "file"), os_warning(exc)) from None
    if len(data) > MAX_TEXT_BYTES:
        raise MalformedFile(f"larger than {MAX_TEXT_BYTES // 1024} KB; the release's text files are a few KB")
    try:
        return data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedFile("not a text file") from None


def _read_rows(path: Path, columns: int) -> np.ndarray:
    """Rows of ``columns`` finite floats (any whitespace between them) -> float64 [R, columns]."""
    text = _read_text(path)
    # Fast path (every well-formed file): one numpy conversion of all tokens.
    lines = [line for line in text.splitlines() if line.strip()]
    tokens = text.split()
    if (
        len(tokens) == columns * len(lines)
        and set(map(len, map(str.split, lines))) <= {columns}
        and all(_NUMBER.fullmatch(token) for token in tokens)
    ):
        values = np.array(tokens, dtype=np.float64).reshape(len(lines), columns)
        if np.isfinite(values).all():
            return values
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise MalformedFile(f"line {number} has {len(fields)} value(s), expected {columns}")
        if not all(_NUMBER.fullmatch(field) for field in fields):
            raise MalformedFile(f"line {number} is not numeric: {line.strip()[:40]!r}")
        values = [float(field) for field in fields]
        if not all(math.isfinite(v) for v in values):
            raise MalformedFile(f"line {number} has a non-finite value")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), columns)


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """A CK+ ``*_landmarks.txt``: float64 [68, 2] (x, y) in pixels; raises MalformedFile."""
    rows = _read_rows(Path(path), 2)
    if rows.shape[0] != 68:
        raise MalformedFile(f"{rows.shape[0]} landmark rows, expected 68")
    outside = np.flatnonzero(np.abs(rows).max(axis=1) > MAX_COORDINATE)
    if outside.size:
        value = rows[outside[0]][np.argmax(np.abs(rows[outside[0]]))]
        raise MalformedFile(
            f"landmark {outside[0]} has coordinate {value:g}, outside +-{MAX_COORDINATE:g} pixels"
        )
    return rows


def read_facs(path: str | os.PathLike) -> dict[int, int]:
    """A CK+ ``*_facs.txt``: {AU: intensity 0-5}, one row per AU; raises MalformedFile.

    Intensity 0 means "present, intensity not coded" (as in the release). An
    AU listed twice (``duplicate-au``) or outside FACS's codes 1-99
    (``unknown-au``) is an error, not silently merged or kept.
    """
    rows = _read_rows(Path(path), 2)
    if rows.shape[0] == 0:
        raise MalformedFile("no 'AU intensity' rows")
    aus: dict[int, int] = {}
    lines: dict[int, int] = {}
    for row, (au, intensity) in enumerate(rows, start=1):
        if au != round(au) or intensity != round(intensity) or not 0 <= intensity <= 5:
            raise MalformedFile(f"row '{au:g} {intensity:g}' is not 'AU intensity' with an integer AU and intensity 0-5")
        if not FACS_CODES.start <= au < FACS_CODES.stop:
            raise MalformedFile(f"row {row}: AU {au:g} is not a FACS code (1-99)", "unknown-au")
        number = int(au)
        if number in aus:
            raise MalformedFile(f"AU {number} is listed twice (rows {lines[number]} and {row})", "duplicate-au")
        aus[number] = int(intensity)
        lines[number] = row
    return dict(sorted(aus.items()))


def read_emotion(path: str | os.PathLike) -> int:
    """A CK+ ``*_emotion.txt``: the emotion code 0-7; raises MalformedFile."""
    rows = _read_rows(Path(path), 1)
    if rows.shape[0] != 1:
        raise MalformedFile(f"{rows.shape[0]} values, expected one emotion code")
    code = float(rows[0, 0])
    if code != round(code) or not 0 <= code < len(EMOTIONS):
        raise MalformedFile(f"emotion code {code:g} is not an integer 0-{len(EMOTIONS) - 1}")
    return int(code)
