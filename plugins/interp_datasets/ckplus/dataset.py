"""The ``ckplus`` dataset plugin: aligned grey face crops with emotions, AUs and landmarks.

Builds on the release index (:mod:`.index`), the protocols (:mod:`.protocol`),
the frame checks (:mod:`.frames`), the face alignment
(:mod:`interp_datasets.alignment`) and the crop cache (:mod:`.crop_cache`);
this module decodes lazily and answers the Dataset interface.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from interpret_core import Dataset, DataError, InterpError, Sample, UsageError
from interpret_core.util.paths import cache_home

from ..alignment import Alignment, align_from_landmarks
from ..au_regions import au_regions
from ..emotions import EMOTIONS
from .crop_cache import CachedCrops, CropCache, cache_key
from .frames import FrameError, check_frame, frame_size, read_grey
from .index import ReleaseIndex
from .layout import AU_KEY, EMOTION, FACS, IMAGES, LANDMARKS, landmarks_for
from .problems import Problems
from .protocol import PROTOCOLS, Item, class_names, select
from .textfiles import MalformedFile, MissingFile, UnreadableFile, read_landmarks

log = logging.getLogger("interp.datasets")


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
        strict: the first problem (any skip warning) raises
            :class:`~interpret_core.DataError` instead of being skipped.
        cache: keep the aligned crops in an on-disk cache under
            :func:`~interpret_core.util.paths.cache_home` ``/crops`` (keyed by
            the root, the options and every used file's size and mtime) so
            later runs skip PNG decoding.

    Labels: the last three frames of a sequence (ending at the frame its FACS
    file codes) carry the peak FACS AUs, since the face is at or near apex
    there; neutral first frames and the frames in between carry no AUs.

    Ground truth: if the release has an ``AUMasks/`` folder (SynthFACS writes
    one), ``Sample.au_masks`` holds its masks, warped like the image (a frame
    without a mask file gets ``{}``: no AU shows); otherwise it is None.
    ``Sample.au_regions`` always holds landmark regions for the sample's AUs
    (:mod:`interp_datasets.au_regions`).

    Problems never abort: each is a named warning in ``skipped``
    ([{path, warning, reason}], paths relative to the root; the names are
    :data:`~interp_datasets.ckplus.problems.WARNINGS`), logged on logger
    ``interp.datasets``. Unexpected files are listed in ``ignored``.

    Fast access without decoding: ``subjects``, ``emotions``, ``sequences``,
    ``frames``, ``landmarks`` (crop coordinates, float32 [N, 68, 2]),
    ``au_matrix()``, ``au_presence()`` and ``summary()``. Bulk pixels:
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
        self._problems = Problems(self.name, self.root, self.strict)
        self.skipped: list[dict[str, str]] = self._problems.skipped
        index = ReleaseIndex(self.root, self._problems)
        self.ignored: list[str] = index.ignored
        self._sequences = index.sequences
        self._frames_on_disk = index.frames_on_disk
        if not self._sequences and not self.skipped:
            raise DataError(
                f"no sequences in {self.root / IMAGES}",
                f"the release keeps its frames as {IMAGES}/Sxxx/yyy/Sxxx_yyy_zzzzzzzz.png; is this the right folder?",
            )
        self._items: list[Item] = select(self._sequences, self.protocol, self.include_neutral)
        self._cache: CropCache | None = None
        self._from_cache = False
        self._bad: list[tuple[str, str, str]] = []
        self._load_or_verify()
        self._problems.finish()

    # -- hooks for subclasses -------------------------------------------------------
    #: What a wrong --data-root should point at instead (subclasses read other releases).
    root_hint: ClassVar[str] = "point --data-root at the unpacked CK+ release"

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
        hint = f"{self.root_hint}: the folder holding {IMAGES}/, {LANDMARKS}/, {EMOTION}/ and {FACS}/"
        try:
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
        except OSError as exc:  # e.g. a parent folder without permission
            raise DataError(f"data root {root} cannot be read ({exc.strerror or exc})", hint) from None

    # -- labels ----------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return class_names(self.include_neutral)

    # -- verification and the crop cache ------------------------------------------------
    def _path(self, relative: str) -> str:
        return os.path.join(self._root, relative)

    def _open_cache(self) -> CropCache | None:
        if not self.use_cache or not self._items:
            return None
        try:
            folder = cache_home() / "crops"
        except InterpError as exc:  # no home: run without the disk cache rather than fail
            log.warning("%s: no crop cache (%s; hint: %s)", self.name, exc.message, exc.hint)
            return None
        header = [type(self).__module__, type(self).__qualname__, str(self.root.resolve()),
                  self.protocol, self.size, self.include_neutral]
        label_files = sorted({f for s in self._sequences for f in s.label_files})
        used = [i.image for i in self._items] + [i.masks for i in self._items if i.masks] + label_files
        used += [landmarks_for(i.image) for i in self._items]
        key = cache_key(header, self._root, used)
        return CropCache(folder / f"{self.name}-{self.size}-{key}", self.name)

    def _load_or_verify(self) -> None:
        """Take landmarks and crops from the on-disk cache if it matches; else read and check every frame.

        On a cache miss every used landmarks file is parsed and every used
        image is decoded once and thrown away (:func:`.frames.check_frame`),
        so bad frames are skipped before anyone indexes the data set.
        """
        self._cache = self._open_cache()
        if self._cache is not None:
            cached = self._cache.read_crops(self.size)
            if cached is not None and self._use_cached(cached):
                return
        keep: list[int] = []
        source: list[np.ndarray] = []
        crop: list[np.ndarray] = []
        for index, item in enumerate(self._items):
            problem = self._landmarks_or_problem(item)
            if isinstance(problem, tuple):
                self._bad.append(problem)
                self._problems.add(*problem)
                continue
            keep.append(index)
            source.append(problem)
            crop.append(align_from_landmarks(problem, self.size).points(problem))
        self._items = [self._items[i] for i in keep]
        self._source_landmarks = np.stack(source) if source else np.zeros((0, 68, 2), dtype=np.float64)
        self._crop_landmarks = np.stack(crop).astype(np.float32) if crop else np.zeros((0, 68, 2), dtype=np.float32)
        self._images = np.zeros((len(self._items), self.size, self.size), dtype=np.uint8)
        self._decoded = np.zeros(len(self._items), dtype=bool)
        self._init_masks()

    def _landmarks_or_problem(self, item: Item) -> np.ndarray | tuple[str, str, str]:
        """The frame's landmarks [68, 2] if the frame is usable, else (path, warning, reason)."""
        landmarks_file = landmarks_for(item.image)
        try:
            landmarks = read_landmarks(self._path(landmarks_file))
            align_from_landmarks(landmarks, self.size)
        except MissingFile:
            return landmarks_file, "missing-landmarks", "landmarks file missing for this frame"
        except UnreadableFile as exc:
            return landmarks_file, str(exc.warning), f"landmarks {exc}"
        except MalformedFile as exc:
            return landmarks_file, exc.warning or "malformed-landmarks", f"malformed landmarks file: {exc}"
        except ValueError as exc:  # degenerate landmarks (eye centres coincide)
            return landmarks_file, "unusable-landmarks", f"unusable landmarks: {exc}"
        problem = check_frame(self._path(item.image))
        if problem is not None:
            return item.image, problem.warning, problem.reason
        return landmarks

    def _use_cached(self, cached: CachedCrops) -> bool:
        bad_paths = {path for path, _, _ in cached.bad}
        keep = [
            i for i, item in enumerate(self._items)
            if item.image not in bad_paths and landmarks_for(item.image) not in bad_paths
        ]
        if not len(keep) == len(cached.images) == len(cached.source_landmarks) == len(cached.crop_landmarks):
            return False
        for problem in cached.bad:
            self._problems.add(*problem)
        self._bad = list(cached.bad)
        self._items = [self._items[i] for i in keep]
        self._images = cached.images
        self._source_landmarks = cached.source_landmarks
        self._crop_landmarks = cached.crop_landmarks
        self._decoded = np.ones(len(self._items), dtype=bool)
        self._from_cache = True
        self._init_masks()
        return True

    def _init_masks(self) -> None:
        """Masks are decoded on demand (training needs none); read them from their cache if it is there."""
        self._masks: list[dict[int, np.ndarray] | None] = [None if item.masks is None else {} for item in self._items]
        self._masks_done = np.array([item.masks is None or item.masks == "" for item in self._items], dtype=bool)
        if self._cache is not None and not self._masks_done.all():
            cached = self._cache.read_masks([item.masks is not None for item in self._items], self.size)
            if cached is not None:
                self._masks = cached
                self._masks_done[:] = True

    def _images_complete(self) -> None:
        """Write the image cache once every crop is decoded."""
        if self._cache is not None and self._decoded.all():
            crops = CachedCrops(self._images, self._source_landmarks, self._crop_landmarks, self._bad)
            self._cache.write_crops(crops, str(self.root))

    def _masks_complete(self) -> None:
        """Write the mask cache once every mask is decoded."""
        if self._cache is not None and self._masks_done.all() and any(m is not None for m in self._masks):
            self._cache.write_masks(self._masks, self.size)

    # -- decoding ---------------------------------------------------------------------------
    def _alignment(self, index: int) -> Alignment:
        return align_from_landmarks(self._source_landmarks[index], self.size)

    def _decode_image(self, index: int) -> None:
        path = self.root / self._items[index].image
        try:
            grey = read_grey(path)
        except FrameError as exc:  # it decoded when the data set was opened: the file changed since
            raise DataError(f"{path}: {exc.reason} ({exc.warning})", "the file changed while reading; re-run") from None
        self._images[index] = self._alignment(index).image(grey)
        self._decoded[index] = True

    def _decode_masks(self, index: int) -> None:
        item = self._items[index]
        path = self.root / str(item.masks)
        masks: dict[int, np.ndarray] = {}
        try:
            width, height = frame_size(self.root / item.image)
            alignment = self._alignment(index)
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    match = AU_KEY.match(key)
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

    def _au_table(self, aus: Sequence[int] | None, dtype: type) -> tuple[list[int], np.ndarray]:
        """(AU numbers, [N, A] of ``dtype``): intensity (int64) or presence (bool) per sample and AU."""
        numbers = sorted({au for item in self._items for au in item.aus}) if aus is None else [int(a) for a in aus]
        table = np.zeros((len(self._items), len(numbers)), dtype=dtype)
        column = {au: j for j, au in enumerate(numbers)}
        for i, item in enumerate(self._items):
            for au, intensity in item.aus.items():
                if au in column:
                    table[i, column[au]] = True if dtype is bool else intensity
        return numbers, table

    def au_matrix(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(AU numbers, int64 [N, A] intensities, 0 = absent) without decoding images.

        Note that CK+ codes present-but-unscored AUs as intensity 0; use
        ``presence`` from :meth:`au_presence` for presence.
        """
        return self._au_table(aus, np.int64)

    def au_presence(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(AU numbers, bool [N, A]): which AUs each sample's FACS coding lists."""
        return self._au_table(aus, bool)

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
        return None if self._cache is None else self._cache.images_path

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
            "skipped": [dict(row) for row in self.skipped],
            "ignored": list(self.ignored),
            "cache": None if self.cache_path is None else str(self.cache_path),
            "from_cache": self._from_cache,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_root={str(self.root)!r}, protocol={self.protocol!r}, "
            f"size={self.size}, include_neutral={self.include_neutral}) with {len(self)} samples"
        )


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
