"""The samples' aligned crops: checked when the data set opens, decoded lazily, kept in memory and on disk.

Opening takes the crops from the crop cache (:mod:`.crop_cache`) if its entry
matches; else it parses every sample's landmarks file and checks every frame
(:func:`.frames.check_frame`), so a bad frame is skipped (a named warning in
the data set's ``skipped``) before anyone indexes the data set. Pixels are
decoded and aligned (:mod:`interp_datasets.alignment`) on first use, and the
cache is written once every crop (or every mask) is in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interpret_core import DataError

from ..alignment import Alignment, align_from_landmarks
from .crop_cache import CachedCrops, CropCache
from .frames import FrameError, check_frame, frame_size, read_grey
from .layout import AU_KEY, landmarks_for
from .problems import Problems
from .protocol import Item
from .textfiles import MalformedFile, MissingFile, UnreadableFile, read_landmarks


class Crops:
    """Crops, landmarks and AU masks of the usable samples among ``items``.

    Attributes:
        items: the samples that are usable, in their order (a subset of the ``items`` given).
        images: uint8 [N, size, size]; row i is valid where ``decoded[i]``.
        decoded: bool [N].
        source_landmarks: float64 [N, 68, 2], frame pixel coordinates.
        crop_landmarks: float32 [N, 68, 2], crop pixel coordinates (pixel centres).
        masks: per sample {AU: bool [size, size]} (valid where ``masks_done``), or
            None when the release has no ground truth for it.
        masks_done: bool [N].
        from_cache: the crops and landmarks came from the disk cache.
    """

    def __init__(self, root: Path, items: Sequence[Item], size: int, problems: Problems, cache: CropCache | None):
        self.root = root
        self.size = size
        self.cache = cache
        self.items = list(items)
        self.from_cache = False
        self._problems = problems
        self._bad: list[tuple[str, str, str]] = []
        cached = cache.read_crops(size) if cache is not None and self.items else None
        if cached is None or not self._use_cached(cached):
            self._check_all()
        self._init_masks()

    # -- opening -----------------------------------------------------------------------
    def _check_all(self) -> None:
        keep: list[int] = []
        source: list[np.ndarray] = []
        crop: list[np.ndarray] = []
        for index, item in enumerate(self.items):
            found = self._landmarks_or_problem(item)
            if isinstance(found, tuple):
                self._bad.append(found)
                self._problems.add(*found)
                continue
            keep.append(index)
            source.append(found)
            crop.append(align_from_landmarks(found, self.size).points(found))
        self.items = [self.items[i] for i in keep]
        self.source_landmarks = np.stack(source) if source else np.zeros((0, 68, 2), dtype=np.float64)
        self.crop_landmarks = np.stack(crop).astype(np.float32) if crop else np.zeros((0, 68, 2), dtype=np.float32)
        self.images = np.zeros((len(self.items), self.size, self.size), dtype=np.uint8)
        self.decoded = np.zeros(len(self.items), dtype=bool)

    def _landmarks_or_problem(self, item: Item) -> np.ndarray | tuple[str, str, str]:
        """The frame's landmarks [68, 2] if the frame is usable, else (path, warning, reason)."""
        landmarks_file = landmarks_for(item.image)
        try:
            landmarks = read_landmarks(os.path.join(self.root, landmarks_file))
            align_from_landmarks(landmarks, self.size)
        except MissingFile:
            return landmarks_file, "missing-landmarks", "landmarks file missing for this frame"
        except UnreadableFile as exc:
            return landmarks_file, str(exc.warning), f"landmarks {exc}"
        except MalformedFile as exc:
            return landmarks_file, exc.warning or "malformed-landmarks", f"malformed landmarks file: {exc}"
        except ValueError as exc:  # degenerate landmarks (eye centres coincide)
            return landmarks_file, "unusable-landmarks", f"unusable landmarks: {exc}"
        problem = check_frame(os.path.join(self.root, item.image))
        if problem is not None:
            return item.image, problem.warning, problem.reason
        return landmarks

    def _use_cached(self, cached: CachedCrops) -> bool:
        """Take a cache entry whose bad frames leave exactly as many samples as it holds."""
        bad_paths = {path for path, _, _ in cached.bad}
        keep = [
            i for i, item in enumerate(self.items)
            if item.image not in bad_paths and landmarks_for(item.image) not in bad_paths
        ]
        if not len(keep) == len(cached.images) == len(cached.source_landmarks) == len(cached.crop_landmarks):
            return False
        for problem in cached.bad:
            self._problems.add(*problem)
        self._bad = list(cached.bad)
        self.items = [self.items[i] for i in keep]
        self.images = cached.images
        self.source_landmarks = cached.source_landmarks
        self.crop_landmarks = cached.crop_landmarks
        self.decoded = np.ones(len(self.items), dtype=bool)
        self.from_cache = True
        return True

    def _init_masks(self) -> None:
        """Masks are decoded on demand (training needs none); read them from their cache if it is there."""
        self.masks: list[dict[int, np.ndarray] | None] = [None if item.masks is None else {} for item in self.items]
        self.masks_done = np.array([item.masks is None or item.masks == "" for item in self.items], dtype=bool)
        if self.cache is not None and not self.masks_done.all():
            cached = self.cache.read_masks([item.masks is not None for item in self.items], self.size)
            if cached is not None:
                self.masks = cached
                self.masks_done[:] = True

    # -- decoding ----------------------------------------------------------------------
    def alignment(self, index: int) -> Alignment:
        return align_from_landmarks(self.source_landmarks[index], self.size)

    def decode_image(self, index: int) -> None:
        path = self.root / self.items[index].image
        try:
            grey = read_grey(path)
        except FrameError as exc:  # it decoded when the data set was opened: the file changed since
            raise DataError(f"{path}: {exc.reason} ({exc.warning})", "the file changed while reading; re-run") from None
        self.images[index] = self.alignment(index).image(grey)
        self.decoded[index] = True

    def decode_masks(self, index: int) -> None:
        item = self.items[index]
        path = self.root / str(item.masks)
        masks: dict[int, np.ndarray] = {}
        try:
            width, height = frame_size(self.root / item.image)
            alignment = self.alignment(index)
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
        self.masks[index] = dict(sorted(masks.items()))
        self.masks_done[index] = True

    # -- the disk copy -------------------------------------------------------------------
    def images_complete(self) -> None:
        """Write the image cache once every crop is decoded."""
        if self.cache is not None and self.decoded.all():
            crops = CachedCrops(self.images, self.source_landmarks, self.crop_landmarks, self._bad)
            self.cache.write_crops(crops, str(self.root))

    def masks_complete(self) -> None:
        """Write the mask cache once every mask is decoded."""
        if self.cache is not None and self.masks_done.all() and any(m is not None for m in self.masks):
            self.cache.write_masks(self.masks, self.size)
