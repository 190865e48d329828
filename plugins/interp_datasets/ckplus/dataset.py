"""The ``ckplus`` dataset plugin: aligned grey face crops with emotions, AUs and landmarks.

Builds on the release index (:mod:`.index`), the protocols (:mod:`.protocol`)
and the crops (:mod:`.crops`: frame checks, lazy decoding, the crop cache);
this module takes the options and answers the Dataset interface.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from interpret_core import AUInfo, Dataset, DataError, InterpError, Sample, UsageError
from interpret_core.util.paths import cache_home

from ..au_regions import au_regions
from ..emotions import EMOTIONS
from ..facs import FACS_AUS
from .crop_cache import CropCache, cache_key
from .crops import Crops
from .index import ReleaseIndex
from .layout import EMOTION, FACS, IMAGES, LANDMARKS, landmarks_for
from .problems import Problems
from .protocol import PROTOCOLS, Item, class_names, select

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
    au_table: ClassVar[Mapping[int, AUInfo]] = FACS_AUS

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
        items = select(self._sequences, self.protocol, self.include_neutral)
        self._crops = Crops(self.root, items, self.size, self._problems, self._open_cache(items))
        self._items: list[Item] = self._crops.items
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

    # -- the crops ----------------------------------------------------------------------
    def _open_cache(self, items: Sequence[Item]) -> CropCache | None:
        """The crop-cache entry for ``items`` (keyed by every file they use), or None when caching is off."""
        if not self.use_cache or not items:
            return None
        try:
            folder = cache_home() / "crops"
        except InterpError as exc:  # no home: run without the disk cache rather than fail
            log.warning("%s: no crop cache (%s; hint: %s)", self.name, exc.message, exc.hint)
            return None
        return CropCache(folder / f"{self.name}-{self.size}-{self._files_key(items)}", self.name)

    def _files_key(self, items: Sequence[Item]) -> str:
        """32 hex digits over the options and the size and mtime of every file ``items`` read."""
        header = [type(self).__module__, type(self).__qualname__, str(self.root.resolve()),
                  self.protocol, self.size, self.include_neutral]
        label_files = sorted({f for s in self._sequences for f in s.label_files})
        used = [i.image for i in items] + [i.masks for i in items if i.masks] + label_files
        used += [landmarks_for(i.image) for i in items]
        return cache_key(header, self._root, used)

    def fingerprint(self) -> str:
        """The options and the size and mtime of every file the samples read (images, landmarks, labels, masks).

        Rewriting, resizing or touching any of them changes it; ``interp run
        --resume`` and the crop cache rely on that.
        """
        return self._files_key(self._items)

    @property
    def _decoded(self) -> np.ndarray:
        """bool [N]: which crops are in memory (all of them after a crop-cache hit)."""
        return self._crops.decoded

    @property
    def _masks_done(self) -> np.ndarray:
        """bool [N]: which samples' AU masks are in memory (or need none)."""
        return self._crops.masks_done

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
        steps: Iterable[tuple[int, str]] = todo
        if progress:
            from interpret_core.util.progress import track

            steps = track(todo, f"decoding {self.name}")
        for index, kind in steps:
            self._crops.decode_image(index) if kind == "image" else self._crops.decode_masks(index)
        self._crops.images_complete()
        if masks:
            self._crops.masks_complete()

    # -- the Dataset interface ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Sample:
        index = _check_index(index, len(self))
        if not self._decoded[index]:
            self._crops.decode_image(index)
            self._crops.images_complete()
        if not self._masks_done[index]:
            self._crops.decode_masks(index)
            self._crops.masks_complete()
        item = self._items[index]
        landmarks = self._crops.crop_landmarks[index].copy()
        masks = self._crops.masks[index]
        return Sample(
            image=self._crops.images[index].astype(np.float32) / np.float32(255.0),
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
        return self._crops.crop_landmarks.copy()

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
                    self._crops.decode_image(index)
                self._crops.images_complete()
        images = self._crops.images[selected].astype(np.float32) / np.float32(255.0)
        emotions = np.array([-1 if self._items[i].emotion is None else self._items[i].emotion for i in selected.tolist()], dtype=np.int64)
        return images, emotions

    def localisation_masks(self, indices: Sequence[int] | np.ndarray) -> list[dict[int, np.ndarray] | None]:
        """Each sample's ground-truth AU masks (copies), else its landmark regions, without decoding images.

        The same arrays as ``self[i].localisation_masks()``; masks not decoded
        or cached yet are decoded (once).
        """
        selected = np.asarray(indices, dtype=np.int64).reshape(-1)
        if selected.size and (selected.min() < -len(self) or selected.max() >= len(self)):
            raise IndexError(f"sample index out of range for {len(self)} samples")
        selected = selected % max(len(self), 1)
        missing = [index for index in np.unique(selected).tolist() if not self._masks_done[index]]
        for index in missing:
            self._crops.decode_masks(index)
        if missing:
            self._crops.masks_complete()
        out: list[dict[int, np.ndarray] | None] = []
        for index in selected.tolist():
            masks = self._crops.masks[index]
            if masks is not None:
                out.append({au: m.copy() for au, m in masks.items()})
            else:
                out.append(au_regions(self._crops.crop_landmarks[index].copy(), self.size, self._items[index].aus.keys()))
        return out

    @property
    def cache_path(self) -> Path | None:
        """The on-disk crop cache file (may not exist yet), or None when caching is off.

        Ground-truth masks, if any, are cached beside it (``...-masks.npz``).
        """
        return None if self._crops.cache is None else self._crops.cache.images_path

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
            "from_cache": self._crops.from_cache,
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
