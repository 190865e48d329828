"""The release index: sequences, frames and label files found under a CK+ root.

Reads only folder listings and the emotion and FACS files; no image is opened.
Anything that cannot be read (a symlink loop, a folder without permission, a
name that is not UTF-8, a malformed label file) is skipped with a named
warning (:mod:`.problems`), never raised, unless the data set is strict.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, NamedTuple

from .layout import AUMASKS, EMOTION, FACS, FRAME_NAME, IMAGES, SUBJECT_NAME, is_hidden, is_utf8, label_frame
from .problems import Problems, os_reason, os_warning
from .textfiles import MalformedFile, UnreadableFile, read_emotion, read_facs


@dataclasses.dataclass
class SequenceRecord:
    """One sequence of the release as found on disk."""

    subject: str
    sequence: str  # "S005_001"
    folder: str  # "S005/001"
    frames: list[tuple[int, str]]  # (frame number, path of the image relative to the root), sorted
    emotion: int | None = None  # CK+ code 0-7
    emotion_frame: int | None = None
    aus: dict[int, int] | None = None  # peak FACS
    facs_frame: int | None = None
    label_files: list[str] = dataclasses.field(default_factory=list)
    mask_files: set[str] | None = None  # names in AUMasks/<folder>/, None if the release has no AUMasks/


class Entry(NamedTuple):
    name: str
    kind: str  # "dir", "file" or "other"
    path: str  # relative to the root


class _Label(NamedTuple):
    tree: str  # EMOTION or FACS
    suffix: str
    read: Callable[[str], object]
    what: str  # as in "malformed <what> file"
    value_field: str
    frame_field: str


_EMOTION_LABEL = _Label(EMOTION, "_emotion.txt", read_emotion, "emotion", "emotion", "emotion_frame")
_FACS_LABEL = _Label(FACS, "_facs.txt", read_facs, "FACS", "aus", "facs_frame")


class ReleaseIndex:
    """Index the sequences under ``root`` (relative paths throughout); problems go to ``problems``.

    Attributes:
        sequences: the sequences that were not skipped, in name order.
        ignored: unexpected entries (not hidden OS litter), relative paths.
        frames_on_disk: frames found in the sequence folders (skipped sequences included).
    """

    def __init__(self, root: Path, problems: Problems):
        self.root = os.fspath(root)
        self.problems = problems
        self.sequences: list[SequenceRecord] = []
        self.ignored: list[str] = []
        self.frames_on_disk = 0
        self._labels = [_EMOTION_LABEL] + ([_FACS_LABEL] if os.path.isdir(self._path(FACS)) else [])
        self._has_masks = os.path.isdir(self._path(AUMASKS))
        self._scan()

    def _path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    # -- listings -----------------------------------------------------------------
    def listing(self, relative: str, whole: bool = False) -> list[Entry] | None:
        """Visible entries of a folder, sorted by name: [] if it does not exist, None if it cannot be read.

        An entry whose type cannot be determined (a symlink loop) or whose name
        is not UTF-8 is reported and left out; with ``whole`` (a label folder,
        whose every file counts) that also makes the result None.
        """
        try:
            with os.scandir(self._path(relative)) as handle:
                raw = sorted((e for e in handle if not is_hidden(e.name)), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self.problems.add(relative, os_warning(exc), os_reason(exc, "folder"))
            return None
        entries: list[Entry] = []
        complete = True
        for entry in raw:
            path = f"{relative}/{entry.name}"
            if not is_utf8(entry.name):
                self.problems.add(path, "non-utf8-name", "file name is not valid UTF-8; rename it")
                complete = False
                continue
            try:
                kind = "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
            except OSError as exc:  # is_dir follows symlinks: a loop raises ELOOP
                self.problems.add(path, os_warning(exc), os_reason(exc, "path"))
                complete = False
                continue
            entries.append(Entry(entry.name, kind, path))
        return entries if complete or not whole else None

    # -- scanning -------------------------------------------------------------------
    def _scan(self) -> None:
        for subject in self.listing(IMAGES) or []:
            if subject.kind != "dir" or not SUBJECT_NAME.fullmatch(subject.name):
                self.ignored.append(subject.path)
                continue
            for sequence in self.listing(subject.path) or []:
                if sequence.kind != "dir":
                    self.ignored.append(sequence.path)
                    continue
                self._scan_sequence(subject.name, sequence)

    def _scan_sequence(self, subject: str, sequence: Entry) -> None:
        folder = f"{subject}/{sequence.name}"
        sequence_id = f"{subject}_{sequence.name}"
        entries = self.listing(sequence.path)
        if entries is None:
            return
        frames: list[tuple[int, str]] = []
        for entry in entries:
            match = FRAME_NAME.match(entry.name)
            if match is None or entry.kind != "file":
                self.ignored.append(entry.path)
                continue
            if f"{match.group(1)}_{match.group(2)}" != sequence_id:
                self.problems.add(entry.path, "misnamed-frame", f"file name does not match its folder {folder}")
                continue
            frames.append((int(match.group(3)), entry.path))
        self.frames_on_disk += len(frames)
        if not frames:
            self.problems.add(sequence.path, "empty-sequence", "sequence folder holds no frames")
            return
        frames.sort()
        numbers = {number for number, _ in frames}
        if len(numbers) != len(frames):
            self.problems.add(sequence.path, "duplicate-frame-number", "two frames share one frame number")
            return
        record = SequenceRecord(subject, sequence_id, folder, frames)
        # Emotion and FACS files label the peak frame; an absent file (or an
        # empty folder) means unlabelled. A bad file skips the whole sequence.
        for label in self._labels:
            if not self._read_label(record, label, numbers):
                return
        if self._has_masks:
            masks = self.listing(f"{AUMASKS}/{folder}", whole=True)
            if masks is None:  # unknown masks would read as "no AU shows": skip instead
                return
            record.mask_files = {entry.name for entry in masks}
        self.sequences.append(record)

    def _read_label(self, record: SequenceRecord, label: _Label, numbers: set[int]) -> bool:
        """Read the sequence's emotion or FACS file into ``record``; False if the sequence is skipped."""
        folder = f"{label.tree}/{record.folder}"
        entries = self.listing(folder, whole=True)
        if entries is None:
            return False
        names = [e.name for e in entries if e.name.lower().endswith(label.suffix)]
        if len(names) > 1:
            self.problems.add(folder, "duplicate-label-file", f"{len(names)} {label.suffix[1:]} files, expected one")
            return False
        if not names:
            return True
        relative = f"{folder}/{names[0]}"
        try:
            value = label.read(self._path(relative))
        except UnreadableFile as exc:
            self.problems.add(relative, str(exc.warning), f"{label.what} {exc}")
            return False
        except MalformedFile as exc:
            warning = exc.warning or f"malformed-{label.what.lower()}"
            self.problems.add(relative, warning, f"malformed {label.what} file: {exc}")
            return False
        frame = label_frame(relative) or record.frames[-1][0]
        if frame not in numbers:
            self.problems.add(relative, "label-without-frame", f"names frame {frame}, which has no image")
            return False
        setattr(record, label.value_field, value)
        setattr(record, label.frame_field, frame)
        record.label_files.append(relative)
        return True
