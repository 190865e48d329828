"""The on-disk crop cache: aligned crops, landmarks and AU masks of one data set, in two .npz files.

``<cache_home>/crops/<dataset>-<size>-<key>.npz`` holds uint8 crops
[N, size, size], frame landmarks float64 [N, 68, 2], crop landmarks float32
[N, 68, 2] and the list of frames found bad; ``...-masks.npz`` beside it the
bit-packed AU masks. The key covers the reader's :data:`CACHE_VERSION`, the
data set class, the root, the options and the size and mtime of every file
used, so any change makes a new entry. A damaged or mismatching file is a
miss, never an error; a cache folder that cannot be written only costs speed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from interpret_core.util.io import atomic_open

log = logging.getLogger("interp.datasets")

#: Bump when the crop computation or the file format changes: invalidates on-disk crop caches.
CACHE_VERSION = 3


def cache_key(header: Sequence[object], root: str, used: Iterable[str]) -> str:
    """32 hex digits over ``header`` (JSON) and the size and mtime of each used file (relative to ``root``)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_VERSION, *header]).encode())
    for relative in used:
        name = os.fsencode(relative)  # bytes, so a name that is not UTF-8 cannot break the key
        try:
            stat = os.stat(os.path.join(root, relative))
            digest.update(name + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(name + b"\0missing\n")
    return digest.hexdigest()[:32]


@dataclasses.dataclass
class CachedCrops:
    """What the image file holds."""

    images: np.ndarray  # uint8 [N, size, size]
    source_landmarks: np.ndarray  # float64 [N, 68, 2], frame pixels
    crop_landmarks: np.ndarray  # float32 [N, 68, 2], crop pixels
    bad: list[tuple[str, str, str]]  # (path, warning, reason) of the frames skipped when it was built


class CropCache:
    """The two files of one cache entry, ``<base>.npz`` and ``<base>-masks.npz``."""

    def __init__(self, base: Path, dataset: str):
        self.base = base
        self.dataset = dataset

    @property
    def images_path(self) -> Path:
        return self.base.with_name(self.base.name + ".npz")

    @property
    def masks_path(self) -> Path:
        return self.base.with_name(self.base.name + "-masks.npz")

    # -- reading --------------------------------------------------------------------
    def read_crops(self, size: int) -> CachedCrops | None:
        """The cached crops, or None if there are none or the file does not fit."""
        path = self.images_path
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                images = np.array(data["images"])
                source = np.array(data["source_landmarks"])
                crop = np.array(data["crop_landmarks"])
            bad = [(str(p), str(w), str(r)) for p, w, r in meta["bad"]]
        except Exception:  # a damaged cache is rebuilt, never an error
            return None
        if images.ndim != 3 or images.shape[1:] != (size, size) or images.dtype != np.uint8:
            return None
        if source.shape != (len(images), 68, 2) or crop.shape != (len(images), 68, 2):
            return None
        return CachedCrops(images, source.astype(np.float64), crop.astype(np.float32), bad)

    def read_masks(self, slots: Sequence[bool], size: int) -> list[dict[int, np.ndarray] | None] | None:
        """Cached masks per sample ({AU: bool [size, size]}; None where ``slots`` is False), or None on a miss."""
        path = self.masks_path
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                count = int(data["samples"])
                mask_sample = np.array(data["mask_sample"]).tolist()
                mask_au = np.array(data["mask_au"]).tolist()
                packed = np.array(data["masks"])
        except Exception:
            return None
        if count != len(slots) or len(mask_sample) != len(packed) or len(mask_au) != len(packed):
            return None
        pixels = size * size
        masks: list[dict[int, np.ndarray] | None] = [{} if slot else None for slot in slots]
        for sample, au, bits in zip(mask_sample, mask_au, packed):
            if not 0 <= sample < count or masks[sample] is None or bits.shape != ((pixels + 7) // 8,):
                return None
            masks[sample][int(au)] = np.unpackbits(bits, count=pixels).astype(bool).reshape(size, size)  # type: ignore[index]
        return masks

    # -- writing --------------------------------------------------------------------
    def write_crops(self, crops: CachedCrops, root: str) -> None:
        meta = {"version": CACHE_VERSION, "root": root, "bad": [list(b) for b in crops.bad]}
        self._save(
            self.images_path,
            {
                "meta": np.array(json.dumps(meta)),
                "images": crops.images,
                "source_landmarks": crops.source_landmarks,
                "crop_landmarks": crops.crop_landmarks,
            },
        )

    def write_masks(self, masks: Sequence[dict[int, np.ndarray] | None], size: int) -> None:
        mask_sample, mask_au, packed = [], [], []
        for index, sample_masks in enumerate(masks):
            for au, mask in (sample_masks or {}).items():
                mask_sample.append(index)
                mask_au.append(au)
                packed.append(np.packbits(mask.reshape(-1)))
        width = (size * size + 7) // 8
        self._save(
            self.masks_path,
            {
                "samples": np.array(len(masks)),
                "mask_sample": np.asarray(mask_sample, dtype=np.int64),
                "mask_au": np.asarray(mask_au, dtype=np.int64),
                "masks": np.asarray(packed, dtype=np.uint8).reshape(len(packed), width),
            },
        )

    def _save(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        try:
            with atomic_open(path, "wb") as handle:
                np.savez(handle, **arrays)
        except OSError as exc:  # a read-only cache folder only costs speed
            log.warning("%s: could not write the crop cache %s (%s)", self.dataset, path, exc)
