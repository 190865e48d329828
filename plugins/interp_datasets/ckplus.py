"""The CK+ release as distributed, read from its root (dataset plugin ``ckplus``).

Layout (Lucey et al., "The Extended Cohn-Kanade Dataset (CK+)", CVPRW 2010)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png     every frame
    ROOT/Landmarks/S005/001/S005_001_00000001_landmarks.txt    every frame: 68 rows "x y"
    ROOT/FACS/S005/001/S005_001_00000011_facs.txt              peak frame: rows "AU intensity"
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt        peak frame, labelled sequences only
    ROOT/AUMasks/S005/001/S005_001_00000011_aumasks.npz        optional (SynthFACS): ground truth

Numbers in the text files are floats in e-notation with leading spaces.
Frames are grey or RGB, 640x490, 640x480 or 720x480; every frame is read as
grey. Hidden files (``.DS_Store``, ``._*``) are ignored silently; other
unexpected files are listed in ``ignored`` (never an error).

No torch here: numpy and PIL only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from interpret_core import Dataset, DataError, Sample, UsageError

from .emotions import EMOTIONS
from interpret_core.util.paths import cache_home

from .alignment import Alignment, align_from_landmarks
from .au_regions import au_regions

__all__ = ["CKPlusDataset", "PROTOCOLS", "MalformedFile", "cache_home", "read_landmarks", "read_facs", "read_emotion"]

log = logging.getLogger("interp.datasets")

IMAGES = "cohn-kanade-images"
LANDMARKS = "Landmarks"
EMOTION = "Emotion"
FACS = "FACS"
AUMASKS = "AUMasks"

#: Selectable protocols and what they keep (see the class docstring).
PROTOCOLS: dict[str, str] = {
    "default": "emotion-labelled sequences: first frame neutral, last three frames the emotion (the literature's standard)",
    "peak": "emotion-labelled sequences: the peak (last) frame only",
    "sequence": "every frame of the emotion-labelled sequences; frames between the first and the last three are unlabelled",
    "all": "every frame of every sequence; first frames neutral, last three frames the emotion where labelled",
}

#: Frames at the end of a sequence that carry its emotion (and its peak AUs).
APEX_FRAMES = 3
#: Bump when the crop computation changes: invalidates on-disk crop caches.
CACHE_VERSION = 2
#: At most this many skip warnings per data set are logged one by one.
MAX_LOGGED = 10

_FRAME_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)
_LABEL_FRAME = re.compile(r"_(\d+)_(?:emotion|facs)\.txt$", re.IGNORECASE)
_AU_KEY = re.compile(r"^AU(\d+)$")


# -- text files -----------------------------------------------------------------
class MalformedFile(ValueError):
    """A text file of the release that cannot be parsed; the message is the reason."""


class MissingFile(MalformedFile):
    """A text file the layout requires is not there."""


def _read_rows(path: Path, columns: int) -> np.ndarray:
    """Rows of ``columns`` floats (e-notation, any whitespace) -> float64 [R, columns]."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedFile("not a text file") from None
    except FileNotFoundError:
        raise MissingFile("file missing") from None
    except OSError as exc:
        raise MalformedFile(f"cannot be read ({exc.strerror or exc})") from None
    # Fast path (every well-formed file): one numpy conversion of all tokens.
    lines = [line for line in text.splitlines() if line.strip()]
    tokens = text.split()
    if len(tokens) == columns * len(lines) and set(map(len, map(str.split, lines))) <= {columns}:
        try:
            values = np.array(tokens, dtype=np.float64).reshape(len(lines), columns)
        except ValueError:
            pass  # the slow path names the line
        else:
            if np.isfinite(values).all():
                return values
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise MalformedFile(f"line {number} has {len(fields)} value(s), expected {columns}")
        try:
            values = [float(field) for field in fields]
        except ValueError:
            raise MalformedFile(f"line {number} is not numeric: {line.strip()[:40]!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise MalformedFile(f"line {number} has a non-finite value")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), columns)


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """A CK+ ``*_landmarks.txt``: float64 [68, 2] (x, y); raises MalformedFile."""
    rows = _read_rows(Path(path), 2)
    if rows.shape[0] != 68:
        raise MalformedFile(f"{rows.shape[0]} landmark rows, expected 68")
    return rows


def read_facs(path: str | os.PathLike) -> dict[int, int]:
    """A CK+ ``*_facs.txt``: {AU: intensity 0-5}; raises MalformedFile."""
    rows = _read_rows(Path(path), 2)
    if rows.shape[0] == 0:
        raise MalformedFile("no 'AU intensity' rows")
    aus: dict[int, int] = {}
    for au, intensity in rows:
        if au != round(au) or au < 1 or intensity != round(intensity) or not 0 <= intensity <= 5:
            raise MalformedFile(f"row '{au:g} {intensity:g}' is not 'AU intensity' with AU >= 1 and intensity 0-5")
        aus[int(au)] = max(aus.get(int(au), 0), int(intensity))
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


def _hidden(name: str) -> bool:
    """OS litter that is ignored silently: .DS_Store, ._foo (AppleDouble), Thumbs.db, desktop.ini."""
    return name.startswith(".") or name.lower() in ("thumbs.db", "desktop.ini")


def _listdir(folder: str) -> list[os.DirEntry]:
    """Visible entries of ``folder`` sorted by name; [] if it does not exist."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not _hidden(e.name)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _label_frame(name: str) -> int | None:
    match = _LABEL_FRAME.search(name)
    return int(match.group(1)) if match else None


# -- the index ---------------------------------------------------------------------
@dataclasses.dataclass
class _Sequence:
    subject: str
    sequence: str  # "S005_001"
    folder: str  # "S005/001"
    frames: list[tuple[int, str]]  # (frame number, path of the image relative to the root), sorted
    emotion: int | None = None  # CK+ code 0-7
    emotion_frame: int | None = None
    aus: dict[int, int] | None = None  # peak FACS
    facs_frame: int | None = None
    label_files: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Item:
    image: str  # relative path
    subject: str
    sequence: str
    frame: int
    emotion: int | None  # index into class_names
    aus: dict[int, int]
    masks: str | None  # relative path of the AU-mask file, if the release has one for this frame


class CKPlusDataset(Dataset):
    """CK+ read from its root: aligned grey face crops with emotions, AUs, landmarks.

    Options (keyword arguments; ``--dataset-option key=value`` on the CLI):
        data_root: the folder holding ``cohn-kanade-images/``, ``Landmarks/``,
            ``Emotion/`` and ``FACS/`` (required).
        protocol: which frames become samples (:data:`PROTOCOLS`):
            ``"default"`` - the literature's standard: for each emotion-labelled
            sequence the first frame is neutral and the last three frames carry
            the emotion; ``"peak"`` - the last frame only; ``"sequence"`` - every
            frame of the labelled sequences (frames between the first and the
            last three have ``emotion=None``); ``"all"`` - every frame of every
            sequence (first frames neutral).
        size: side of the square crop in pixels (default 64, the input of
            ``fer-cnn``).
        include_neutral: 8 classes (``interp_datasets.emotions.EMOTIONS``); False gives 7
            classes without neutral and drops the neutral frames.
        strict: the first malformed file or undecodable image raises
            :class:`~interpret_core.DataError` instead of being skipped.
        cache: keep the aligned crops in an on-disk cache under
            :func:`cache_home` ``/crops`` (keyed by the root, the options and
            every used file's size and mtime) so later runs skip PNG decoding.

    Labels: the last three frames of a sequence (ending at the frame its FACS
    file codes) carry the peak FACS AUs, since the face is at or near apex
    there; neutral first frames and the frames in between carry no AUs.

    Ground truth: if the release has an ``AUMasks/`` folder (SynthFACS writes
    one), ``Sample.au_masks`` holds its masks, warped like the image (a frame
    without a mask file gets ``{}``: no AU shows); otherwise it is None.
    ``Sample.au_regions`` always holds landmark regions for the sample's AUs
    (:mod:`interp_datasets.au_regions`).

    Fast access without decoding: ``subjects``, ``emotions``, ``sequences``,
    ``frames``, ``landmarks`` (crop coordinates, float32 [N, 68, 2]),
    ``au_matrix()``, ``au_presence()``, ``skipped`` ([{path, reason}], paths
    relative to the root), ``ignored`` and ``summary()``. Bulk pixels:
    ``arrays(indices=None) -> (images float32 [n, size, size] in [0, 1],
    emotions int64 [n], -1 where unlabelled)`` decodes what is not cached
    yet, once; ``decode_all()`` also decodes the masks.

    Subclassing: a data set in the CK+ layout overrides :meth:`_resolve_root`
    (e.g. to generate a default root when ``data_root`` is None) and keeps
    ``__init__``'s keywords; SynthFACS does exactly that.
    """

    name: ClassVar[str] = "ckplus"
    description: ClassVar[str] = "CK+ (Extended Cohn-Kanade) read from a local copy of the release"
    has_au_masks: ClassVar[bool] = False

    def __init__(
        self,
        data_root: str | os.PathLike | None = None,
        protocol: str = "default",
        size: int | str = 64,
        include_neutral: bool | str = True,
        strict: bool | str = False,
        cache: bool | str = True,
        **unknown: object,
    ):
        if unknown:
            raise UsageError(
                f"dataset {self.name!r} does not take option(s) {', '.join(sorted(unknown))}",
                "its options are data_root, protocol, size, include_neutral, strict and cache (docs/datasets.md)",
            )
        protocol = str(protocol)
        if protocol not in PROTOCOLS:
            raise UsageError(
                f"unknown protocol {protocol!r} for dataset {self.name!r}",
                f"choose one of: {', '.join(PROTOCOLS)}",
            )
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise UsageError(f"size must be an integer number of pixels, got {size!r}", "e.g. size=64") from None
        if not 8 <= size <= 1024:
            raise UsageError(f"size must be between 8 and 1024 pixels, got {size}", "the default is 64")
        self.protocol = protocol
        self.size = size
        self.include_neutral = _as_bool(include_neutral, "include_neutral")
        self.strict = _as_bool(strict, "strict")
        self.use_cache = _as_bool(cache, "cache")
        self.root = self._resolve_root(data_root)
        self._check_root(self.root)
        self._root = os.fspath(self.root)
        self.skipped: list[dict[str, str]] = []
        self.ignored: list[str] = []
        self._logged = 0
        self._sequences: list[_Sequence] = []
        self._frames_on_disk = 0
        self._scan()
        if not self._sequences and not self.skipped:
            raise DataError(
                f"no sequences in {self.root / IMAGES}",
                f"the release keeps its frames as {IMAGES}/Sxxx/yyy/Sxxx_yyy_zzzzzzzz.png; is this the right folder?",
            )
        self._items: list[_Item] = self._select()
        self._source_landmarks = np.zeros((0, 68, 2), dtype=np.float64)  # frame coordinates
        self._crop_landmarks = np.zeros((0, 68, 2), dtype=np.float32)
        self._images: np.ndarray = np.zeros((0, size, size), dtype=np.uint8)
        self._decoded: np.ndarray = np.zeros(0, dtype=bool)
        self._masks: list[dict[int, np.ndarray] | None] = []
        self._masks_done: np.ndarray = np.zeros(0, dtype=bool)
        self._cache_base: Path | None = None
        self._bad: list[tuple[str, str]] = []
        self._load_or_verify()
        if self._logged > MAX_LOGGED:
            log.warning("%s: %d problems in all; see `interp data inspect` for the list", self.name, self._logged)

    # -- hooks for subclasses -------------------------------------------------------
    @classmethod
    def _resolve_root(cls, data_root: str | os.PathLike | None) -> Path:
        """The release root for ``data_root``; subclasses may supply a default."""
        if data_root is None or str(data_root) == "":
            raise UsageError(
                f"dataset {cls.name!r} needs --data-root: the folder of your CK+ copy",
                "pass --data-root DIR (the folder that holds cohn-kanade-images/), "
                "or use --dataset synthfacs, which needs no download",
            )
        return Path(data_root).expanduser()

    def _check_root(self, root: Path) -> None:
        """Raise DataError naming what is missing if ``root`` is not a CK+ release."""
        hint = (
            "point --data-root at the unpacked CK+ release: the folder holding "
            f"{IMAGES}/, {LANDMARKS}/, {EMOTION}/ and {FACS}/"
        )
        if not root.exists():
            raise DataError(f"data root {root} does not exist", hint)
        if not root.is_dir():
            raise DataError(f"data root {root} is not a folder", hint)
        required = [IMAGES, LANDMARKS] + ([EMOTION] if self.protocol != "all" else [])
        for folder in required:
            if not (root / folder).is_dir():
                nested = sorted(p.parent for p in root.glob(f"*/{IMAGES}") if p.is_dir())
                better = f"did you mean --data-root {nested[0]}? " if nested else ""
                raise DataError(f"no {folder} folder in {root}", better + hint)

    # -- problems -----------------------------------------------------------------
    def _problem(self, path: Path | str, reason: str) -> None:
        relative = self._relative(path)
        if self.strict:
            raise DataError(f"{self.root / relative}: {reason}", "fix or remove the file, or run without --strict to skip it")
        self.skipped.append({"path": relative, "reason": reason})
        self._logged += 1
        if self._logged <= MAX_LOGGED:
            log.warning("%s: skipped %s: %s", self.name, relative, reason)

    def _relative(self, path: Path | str) -> str:
        """``path`` relative to the root, '/'-separated (relative strings pass through)."""
        if isinstance(path, str) and not os.path.isabs(path):
            return path
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def _path(self, relative: str) -> str:
        return os.path.join(self._root, relative)

    # -- scanning --------------------------------------------------------------------
    def _scan(self) -> None:
        """Index sequences, frames and labels from the folder tree (no image decoding)."""
        has_facs = os.path.isdir(self._path(FACS))
        for subject_dir in _listdir(self._path(IMAGES)):
            if not subject_dir.is_dir() or not re.fullmatch(r"S\d+", subject_dir.name):
                self.ignored.append(f"{IMAGES}/{subject_dir.name}")
                continue
            for sequence_dir in _listdir(subject_dir.path):
                if not sequence_dir.is_dir():
                    self.ignored.append(f"{IMAGES}/{subject_dir.name}/{sequence_dir.name}")
                    continue
                self._scan_sequence(subject_dir.name, sequence_dir, has_facs)

    def _label_file(self, tree: str, folder: str, suffix: str) -> str | None | bool:
        """The one ``*suffix`` file of ``tree/folder`` (relative), None if there is none, False if several."""
        names = [e.name for e in _listdir(self._path(f"{tree}/{folder}")) if e.name.lower().endswith(suffix)]
        if len(names) > 1:
            self._problem(f"{tree}/{folder}", f"{len(names)} {suffix[1:]} files, expected one")
            return False
        return f"{tree}/{folder}/{names[0]}" if names else None

    def _scan_sequence(self, subject: str, sequence_dir: os.DirEntry, has_facs: bool) -> None:
        folder = f"{subject}/{sequence_dir.name}"
        sequence_id = f"{subject}_{sequence_dir.name}"
        frames: list[tuple[int, str]] = []
        for entry in _listdir(sequence_dir.path):
            relative = f"{IMAGES}/{folder}/{entry.name}"
            match = _FRAME_NAME.match(entry.name)
            if match is None or not entry.is_file():
                self.ignored.append(relative)
                continue
            if f"{match.group(1)}_{match.group(2)}" != sequence_id:
                self._problem(relative, f"file name does not match its folder {folder}")
                continue
            frames.append((int(match.group(3)), relative))
        self._frames_on_disk += len(frames)
        if not frames:
            self._problem(f"{IMAGES}/{folder}", "sequence folder holds no frames")
            return
        frames.sort()
        numbers = {number for number, _ in frames}
        if len(numbers) != len(frames):
            self._problem(f"{IMAGES}/{folder}", "two frames share one frame number")
            return
        record = _Sequence(subject, sequence_id, folder, frames)
        # Emotion and FACS files label the peak frame; an absent file (or an
        # empty folder) means unlabelled. A bad file skips the whole sequence.
        labels = [(EMOTION, "_emotion.txt", read_emotion, "emotion", "emotion", "emotion_frame")]
        if has_facs:
            labels.append((FACS, "_facs.txt", read_facs, "FACS", "aus", "facs_frame"))
        for subdir, suffix, reader, what, value_field, frame_field in labels:
            label_file = self._label_file(subdir, folder, suffix)
            if label_file is False:
                return
            if not label_file:
                continue
            try:
                value = reader(self._path(label_file))
            except MalformedFile as exc:
                self._problem(label_file, f"malformed {what} file: {exc}")
                return
            frame = _label_frame(label_file) or frames[-1][0]
            if frame not in numbers:
                self._problem(label_file, f"names frame {frame}, which has no image")
                return
            setattr(record, value_field, value)
            setattr(record, frame_field, frame)
            record.label_files.append(label_file)
        self._sequences.append(record)

    # -- protocol ------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(EMOTIONS) if self.include_neutral else list(EMOTIONS[1:])

    def _class_index(self, code: int | None) -> int | None | bool:
        """Class index for a CK+ code; False if the sample must be dropped (neutral in 7-class mode)."""
        if code is None:
            return None
        if self.include_neutral:
            return code
        return False if code == 0 else code - 1

    def _select(self) -> list[_Item]:
        """Candidate samples under the protocol, with labels (landmarks and images are checked later)."""
        items: list[_Item] = []
        has_masks = os.path.isdir(self._path(AUMASKS))
        for record in self._sequences:
            mask_names = {e.name for e in _listdir(self._path(f"{AUMASKS}/{record.folder}"))} if has_masks else set()
            labelled = record.emotion is not None
            if self.protocol != "all" and not labelled:
                continue
            peak = record.emotion_frame if labelled else record.frames[-1][0]
            frames = [f for f in record.frames if f[0] <= peak]
            # Every CK+ sequence starts neutral; the last three frames (never the
            # first one) carry the emotion and, ending at the FACS-coded frame, the AUs.
            apex = {n for n, _ in frames[1:][-APEX_FRAMES:]} if len(frames) > 1 else {frames[0][0]}
            facs_peak = record.facs_frame if record.facs_frame is not None else peak
            coded = [f for f in record.frames if f[0] <= facs_peak]
            facs_frames = {n for n, _ in coded[1:][-APEX_FRAMES:]} if len(coded) > 1 else {coded[0][0]}
            if self.protocol == "default":
                chosen = [frames[0]] + [f for f in frames if f[0] in apex and f != frames[0]]
            elif self.protocol == "peak":
                chosen = [frames[-1]]
            elif self.protocol == "sequence":
                chosen = frames
            else:
                chosen = record.frames
            for number, image in chosen:
                code: int | None
                if labelled and number in apex:
                    code = record.emotion
                elif number == frames[0][0]:
                    code = 0
                else:
                    code = None
                label = self._class_index(code)
                if label is False:
                    continue
                aus = dict(record.aus) if record.aus and number in facs_frames and code != 0 else {}
                masks = None
                if has_masks:
                    mask_name = image.rsplit("/", 1)[1][: -len(".png")] + "_aumasks.npz"
                    masks = f"{AUMASKS}/{record.folder}/{mask_name}" if mask_name in mask_names else ""
                items.append(
                    _Item(image, record.subject, record.sequence, number, label, aus, masks)  # type: ignore[arg-type]
                )
        return items

    # -- cache and verification ---------------------------------------------------------
    def _cache_key(self) -> str:
        digest = hashlib.sha256()
        header = [CACHE_VERSION, type(self).__module__, type(self).__qualname__, str(self.root.resolve()),
                  self.protocol, self.size, self.include_neutral]
        digest.update(json.dumps(header).encode())
        label_files = sorted({f for s in self._sequences for f in s.label_files})
        used = [i.image for i in self._items] + [i.masks for i in self._items if i.masks] + label_files
        used += [_landmarks_relative(i.image) for i in self._items]
        for relative in used:
            try:
                stat = os.stat(self._path(relative))
                digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{relative}\0missing\n".encode())
        return digest.hexdigest()[:32]

    def _load_or_verify(self) -> None:
        """Take landmarks and crops from the on-disk cache if it matches; else read and check every frame.

        On a cache miss every used landmarks file is parsed and every used
        image's PNG stream is checked (chunk CRCs, no pixel decoding), so bad
        frames are skipped before anyone indexes the data set.
        """
        if self.use_cache and self._items:
            self._cache_base = cache_home() / "crops" / f"{self.name}-{self.size}-{self._cache_key()}"
            cached = self._read_image_cache(self._cache_base.with_name(self._cache_base.name + ".npz"))
            if cached is not None and self._use_cache_entry(*cached):
                return
        bad: list[tuple[str, str]] = []
        keep: list[int] = []
        source: list[np.ndarray] = []
        crop: list[np.ndarray] = []
        for index, item in enumerate(self._items):
            landmarks_file = _landmarks_relative(item.image)
            try:
                landmarks = read_landmarks(self._path(landmarks_file))
                points = align_from_landmarks(landmarks, self.size).points(landmarks)
            except MissingFile:
                problem = (landmarks_file, "landmarks file missing for this frame")
            except MalformedFile as exc:
                problem = (landmarks_file, f"malformed landmarks file: {exc}")
            except ValueError as exc:  # degenerate landmarks (eye centres coincide)
                problem = (landmarks_file, f"unusable landmarks: {exc}")
            else:
                reason = _verify_png(self._path(item.image))
                if reason is None:
                    keep.append(index)
                    source.append(landmarks)
                    crop.append(points)
                    continue
                problem = (item.image, reason)
            bad.append(problem)
            self._problem(*problem)
        self._bad = bad
        self._restrict(keep)
        self._source_landmarks = np.stack(source) if source else np.zeros((0, 68, 2), dtype=np.float64)
        self._crop_landmarks = np.stack(crop).astype(np.float32) if crop else np.zeros((0, 68, 2), dtype=np.float32)
        self._images = np.zeros((len(self._items), self.size, self.size), dtype=np.uint8)
        self._decoded = np.zeros(len(self._items), dtype=bool)
        self._init_masks()

    def _use_cache_entry(self, images: np.ndarray, source: np.ndarray, crop: np.ndarray, bad: list[tuple[str, str]]) -> bool:
        bad_paths = {path for path, _ in bad}
        keep = [
            i for i, item in enumerate(self._items)
            if item.image not in bad_paths and _landmarks_relative(item.image) not in bad_paths
        ]
        if not len(keep) == len(images) == len(source) == len(crop):
            return False
        for path, reason in bad:
            self._problem(path, reason)
        self._bad = bad
        self._restrict(keep)
        self._images = images
        self._source_landmarks = source
        self._crop_landmarks = crop
        self._decoded = np.ones(len(self._items), dtype=bool)
        self._init_masks()
        return True

    def _init_masks(self) -> None:
        """Masks are decoded on demand (training needs none); read them from their cache if it is there."""
        self._masks = [None if item.masks is None else {} for item in self._items]
        self._masks_done = np.array([item.masks is None or item.masks == "" for item in self._items], dtype=bool)
        if self._cache_base is not None and not self._masks_done.all():
            self._read_mask_cache(self._cache_base.with_name(self._cache_base.name + "-masks.npz"))

    def _restrict(self, keep: Sequence[int]) -> None:
        if len(keep) == len(self._items):
            return
        self._items = [self._items[i] for i in keep]

    def _read_image_cache(self, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]] | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                images = np.array(data["images"])
                source = np.array(data["source_landmarks"])
                crop = np.array(data["crop_landmarks"])
            bad = [(str(p), str(r)) for p, r in meta["bad"]]
        except Exception:  # a damaged cache is rebuilt, never an error
            return None
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size) or images.dtype != np.uint8:
            return None
        if source.shape != (len(images), 68, 2) or crop.shape != (len(images), 68, 2):
            return None
        return images, source.astype(np.float64), crop.astype(np.float32), bad

    def _read_mask_cache(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                count = int(data["samples"])
                mask_sample = np.array(data["mask_sample"]).tolist()
                mask_au = np.array(data["mask_au"]).tolist()
                packed = np.array(data["masks"])
        except Exception:
            return
        if count != len(self._items) or len(mask_sample) != len(packed) or len(mask_au) != len(packed):
            return
        pixels = self.size * self.size
        masks: list[dict[int, np.ndarray] | None] = [None if item.masks is None else {} for item in self._items]
        for sample, au, bits in zip(mask_sample, mask_au, packed):
            if not 0 <= sample < count or masks[sample] is None or bits.shape != ((pixels + 7) // 8,):
                return
            masks[sample][int(au)] = np.unpackbits(bits, count=pixels).astype(bool).reshape(self.size, self.size)  # type: ignore[index]
        self._masks = masks
        self._masks_done[:] = True

    def _save(self, suffix: str, arrays: dict[str, np.ndarray]) -> None:
        if self._cache_base is None:
            return
        from interpret_core.util.io import atomic_open

        path = self._cache_base.with_name(self._cache_base.name + suffix)
        try:
            with atomic_open(path, "wb") as handle:
                np.savez(handle, **arrays)
        except OSError as exc:  # a read-only cache folder only costs speed
            log.warning("%s: could not write the crop cache %s (%s)", self.name, path, exc)

    def _images_complete(self) -> None:
        """Write the image cache once every crop is decoded."""
        if self._decoded.all():
            meta = {"version": CACHE_VERSION, "root": str(self.root), "bad": self._bad}
            self._save(
                ".npz",
                {
                    "meta": np.array(json.dumps(meta)),
                    "images": self._images,
                    "source_landmarks": self._source_landmarks,
                    "crop_landmarks": self._crop_landmarks,
                },
            )

    def _masks_complete(self) -> None:
        """Write the mask cache once every mask is decoded (bit-packed)."""
        if not self._masks_done.all() or all(m is None for m in self._masks):
            return
        mask_sample, mask_au, packed = [], [], []
        for index, masks in enumerate(self._masks):
            for au, mask in (masks or {}).items():
                mask_sample.append(index)
                mask_au.append(au)
                packed.append(np.packbits(mask.reshape(-1)))
        width = (self.size * self.size + 7) // 8
        self._save(
            "-masks.npz",
            {
                "samples": np.array(len(self._items)),
                "mask_sample": np.asarray(mask_sample, dtype=np.int64),
                "mask_au": np.asarray(mask_au, dtype=np.int64),
                "masks": np.asarray(packed, dtype=np.uint8).reshape(len(packed), width),
            },
        )

    # -- decoding ---------------------------------------------------------------------------
    def _alignment(self, index: int) -> Alignment:
        return align_from_landmarks(self._source_landmarks[index], self.size)

    def _decode_image(self, index: int) -> None:
        path = self.root / self._items[index].image
        try:
            with Image.open(path) as picture:
                picture.load()
                grey = _to_grey(picture)
        except Exception as exc:
            raise DataError(f"{path}: image does not decode ({exc})", "replace the file, or delete it and re-run") from None
        self._images[index] = self._alignment(index).image(grey)
        self._decoded[index] = True

    def _decode_masks(self, index: int) -> None:
        item = self._items[index]
        path = self.root / str(item.masks)
        masks: dict[int, np.ndarray] = {}
        try:
            with Image.open(self.root / item.image) as picture:
                width, height = picture.size
            alignment = self._alignment(index)
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    match = _AU_KEY.match(key)
                    array = np.asarray(data[key])
                    if match is None or array.shape != (height, width):
                        raise ValueError(
                            f"array {key!r} of shape {array.shape} is not an AU mask of the frame's size {height}x{width}"
                        )
                    masks[int(match.group(1))] = alignment.mask(array.astype(bool))
        except Exception as exc:
            raise DataError(f"{path}: malformed AU-mask file ({exc})", "regenerate the data set") from None
        self._masks[index] = dict(sorted(masks.items()))
        self._masks_done[index] = True

    def decode_all(self, progress: bool = False, masks: bool = True) -> None:
        """Decode every crop (and, with ``masks``, every AU mask) not decoded or cached yet.

        Writes the on-disk caches when done; ``progress`` draws a bar on stderr.
        """
        todo = [(i, "image") for i in np.flatnonzero(~self._decoded).tolist()]
        if masks:
            todo += [(i, "masks") for i in np.flatnonzero(~self._masks_done).tolist()]
        if not todo:
            return
        todo.sort()
        if progress:
            from interpret_core.util.progress import progress_bar

            with progress_bar() as bar:
                task = bar.add_task(f"decoding {self.name}", total=len(todo))  # type: ignore[attr-defined]
                for index, kind in todo:
                    self._decode_image(index) if kind == "image" else self._decode_masks(index)
                    bar.advance(task)  # type: ignore[attr-defined]
        else:
            for index, kind in todo:
                self._decode_image(index) if kind == "image" else self._decode_masks(index)
        self._images_complete()
        if masks:
            self._masks_complete()

    # -- the Dataset interface ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Sample:
        index = _check_index(index, len(self))
        if not self._decoded[index]:
            self._decode_image(index)
            self._images_complete()
        if not self._masks_done[index]:
            self._decode_masks(index)
            self._masks_complete()
        item = self._items[index]
        landmarks = self._crop_landmarks[index].copy()
        masks = self._masks[index]
        return Sample(
            image=self._images[index].astype(np.float32) / np.float32(255.0),
            emotion=item.emotion,
            aus=dict(item.aus),
            landmarks=landmarks,
            subject=item.subject,
            sequence=item.sequence,
            frame=item.frame,
            au_masks=None if masks is None else {au: m.copy() for au, m in masks.items()},
            au_regions=au_regions(landmarks, self.size, item.aus.keys()),
            path=str(self.root / item.image),
        )

    # -- fast metadata ------------------------------------------------------------------------
    @property
    def subjects(self) -> list[str]:
        return [item.subject for item in self._items]

    @property
    def emotions(self) -> list[int | None]:
        return [item.emotion for item in self._items]

    @property
    def sequences(self) -> list[str]:
        """Sequence id (``"S005_001"``) of each sample."""
        return [item.sequence for item in self._items]

    @property
    def frames(self) -> list[int]:
        """Frame number (1-based, from the file name) of each sample."""
        return [item.frame for item in self._items]

    @property
    def landmarks(self) -> np.ndarray:
        """float32 [N, 68, 2] landmarks of every sample in crop coordinates."""
        return self._crop_landmarks.copy()

    def au_matrix(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(AU numbers, int64 [N, A] intensities, 0 = absent) without decoding images.

        Note that CK+ codes present-but-unscored AUs as intensity 0; use
        ``presence`` from :meth:`au_presence` for presence.
        """
        numbers = sorted({au for item in self._items for au in item.aus}) if aus is None else [int(a) for a in aus]
        matrix = np.zeros((len(self._items), len(numbers)), dtype=np.int64)
        column = {au: j for j, au in enumerate(numbers)}
        for i, item in enumerate(self._items):
            for au, intensity in item.aus.items():
                if au in column:
                    matrix[i, column[au]] = intensity
        return numbers, matrix

    def au_presence(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(AU numbers, bool [N, A]): which AUs each sample's FACS coding lists."""
        numbers = sorted({au for item in self._items for au in item.aus}) if aus is None else [int(a) for a in aus]
        presence = np.zeros((len(self._items), len(numbers)), dtype=bool)
        column = {au: j for j, au in enumerate(numbers)}
        for i, item in enumerate(self._items):
            for au in item.aus:
                if au in column:
                    presence[i, column[au]] = True
        return numbers, presence

    def arrays(self, indices: Sequence[int] | np.ndarray | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Bulk pixels: (images float32 [n, size, size] in [0, 1], emotions int64 [n], -1 = unlabelled).

        Decodes (once) whatever is neither decoded nor cached; ``progress``
        draws a bar on stderr while decoding.
        """
        selected = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if selected.size and (selected.min() < -len(self) or selected.max() >= len(self)):
            raise IndexError(f"sample index out of range for {len(self)} samples")
        selected = selected % max(len(self), 1)
        missing = selected[~self._decoded[selected]] if selected.size else selected
        if missing.size:
            if missing.size == np.count_nonzero(~self._decoded):
                self.decode_all(progress=progress, masks=False)
            else:
                for index in np.unique(missing).tolist():
                    self._decode_image(index)
                self._images_complete()
        images = self._images[selected].astype(np.float32) / np.float32(255.0)
        emotions = np.array([-1 if self._items[i].emotion is None else self._items[i].emotion for i in selected.tolist()], dtype=np.int64)
        return images, emotions

    @property
    def cache_path(self) -> Path | None:
        """The on-disk crop cache file (may not exist yet), or None when caching is off.

        Ground-truth masks, if any, are cached beside it (``...-masks.npz``).
        """
        return None if self._cache_base is None else self._cache_base.with_name(self._cache_base.name + ".npz")

    def summary(self) -> dict[str, Any]:
        """Counts for ``interp data inspect`` (no decoding).

        ``subjects``/``sequences``/``emotion_labelled``/``emotions``/``aus``
        describe the release (sequences that were not skipped); ``aus`` counts
        the sequences whose FACS file lists each AU; ``images`` is the number
        of samples under this data set's protocol.
        """
        emotions = {name: 0 for name in EMOTIONS}
        aus: dict[int, int] = {}
        for record in self._sequences:
            if record.emotion is not None:
                emotions[EMOTIONS[record.emotion]] += 1
            for au in record.aus or {}:
                aus[au] = aus.get(au, 0) + 1
        per_class = {name: 0 for name in self.class_names}
        for item in self._items:
            if item.emotion is not None:
                per_class[self.class_names[item.emotion]] += 1
        return {
            "dataset": self.name,
            "root": str(self.root),
            "protocol": self.protocol,
            "size": self.size,
            "include_neutral": self.include_neutral,
            "class_names": self.class_names,
            "subjects": len({record.subject for record in self._sequences}),
            "sequences": len(self._sequences),
            "emotion_labelled": sum(record.emotion is not None for record in self._sequences),
            "frames": self._frames_on_disk,
            "emotions": emotions,
            "aus": {str(au): count for au, count in sorted(aus.items())},
            "images": len(self._items),
            "samples_per_class": per_class,
            "unlabelled_samples": sum(item.emotion is None for item in self._items),
            "sample_subjects": len(set(self.subjects)),
            "au_masks": sum(item.masks is not None for item in self._items),
            "skipped": list(self.skipped),
            "ignored": list(self.ignored),
            "cache": None if self.cache_path is None else str(self.cache_path),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_root={str(self.root)!r}, protocol={self.protocol!r}, "
            f"size={self.size}, include_neutral={self.include_neutral}) with {len(self)} samples"
        )


# -- helpers -----------------------------------------------------------------------------------------
def _as_bool(value: bool | str | int, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"option {name} must be true or false, got {value!r}", f"e.g. {name}=false")


def _check_index(index: int, length: int) -> int:
    if not isinstance(index, (int, np.integer)):
        raise TypeError(f"sample index must be an integer, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"sample index {index} out of range for {length} samples")
    return int(index) % length


def _verify_png(path: Path) -> str | None:
    """None if the image file is complete and readable, else the reason (no pixel decoding)."""
    try:
        with Image.open(path) as picture:
            picture.verify()
    except FileNotFoundError:
        return "image file disappeared"
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        return f"image does not decode ({detail})"
    return None


def _to_grey(picture: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit grey ('L'); RGB uses ITU-R 601-2 luma, 16-bit is scaled down."""
    if picture.mode == "L":
        return picture
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(picture, dtype=np.float64)
        top = 65535.0 if picture.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8))
    if picture.mode in ("P", "PA"):
        picture = picture.convert("RGBA")
    return picture.convert("L")


def _landmarks_relative(image: str) -> str:
    """``cohn-kanade-images/S/q/X.png`` -> ``Landmarks/S/q/X_landmarks.txt``."""
    return LANDMARKS + image[len(IMAGES):-len(".png")] + "_landmarks.txt"
