"""The ``synthfacs-stream`` dataset plugin: N SynthFACS faces rendered on demand, nothing on disk.

For scale work (scanning 10^5 faces at 224x224) a release on disk would be
gigabytes; this data set renders each requested sample when it is asked for
and keeps only a few bytes of labels per sequence.

It is the SynthFACS release read through the CK+ reader's ``default``
protocol, made lazily: subject ``s`` has the sequences
:func:`~.generator.plan_subject` plans for it, each frame is drawn by
:func:`~.generator.render_frame` from the frame's own seeds, and the crop is
aligned from the landmarks as the release stores them
(:func:`~interp_datasets.alignment.align_from_landmarks`). So sample ``i``
depends only on (seed, size, i) - not on the batch, the order or the shard it
is read in - and the first samples are those of a release generated with the
same seed, crop for crop and mask for mask.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from interpret_core import AUInfo, Dataset, Sample, UsageError

from ..alignment import align_from_landmarks
from ..au_regions import au_regions
from ..emotions import EMOTIONS
from ..facs import FACS_AUS
from . import aus as au_stats
from .generator import GENERATOR_VERSION, _enotation, frame_setups, plan_subject, render_frame

__all__ = ["SynthFACSStream", "SAMPLES_PER_SEQUENCE"]

#: Samples per sequence under the CK+ ``default`` protocol: the neutral first frame and the last three (apex) frames.
SAMPLES_PER_SEQUENCE = 4
#: Bump when sample ``i`` of a given (seed, size) changes for a reason the generator's version does not cover.
STREAM_VERSION = 1
MAX_IMAGES = 10**8


def _positive_int(value: Any, name: str, low: int, high: int, example: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"dataset 'synthfacs-stream': {name} must be an integer, got {value!r}", f"e.g. {example}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise UsageError(f"dataset 'synthfacs-stream': {name} must be from {low} to {high}, got {value!r}", f"e.g. {example}")
    return number


class SynthFACSStream(Dataset):
    """``images`` SynthFACS face crops generated on the fly (deterministic per seed and index; no disk).

    Options (``--dataset-option key=value``):
        images: number of samples N (default 10000).
        size: side of the square crop in pixels (default 224, the input of ``fer-resnet18``).
        seed: the release seed (default 0, the seed of the default ``synthfacs`` set).

    Samples follow the CK+ ``default`` protocol over SynthFACS sequences (8
    classes): per sequence, sample ``4g`` is its neutral first frame (emotion
    ``neutral``, no AUs) and ``4g+1..4g+3`` its last three frames (the
    sequence's emotion and apex AUs), with ground-truth AU masks as
    ``synthfacs`` has them. Each access renders (about 20-30 ms a frame on one
    CPU core, masks cost one render per AU more); labels, subjects and the AU
    table come without rendering.
    """

    name: ClassVar[str] = "synthfacs-stream"
    description: ClassVar[str] = (
        "N SynthFACS faces rendered on the fly at any size (default 224), deterministic per seed and index; "
        "nothing on disk (for scale tests)"
    )
    has_au_masks: ClassVar[bool] = True
    streaming: ClassVar[bool] = True
    au_table: ClassVar[Mapping[int, AUInfo]] = FACS_AUS

    def __init__(self, images: int | str = 10000, size: int | str = 224, seed: int | str = 0, **unknown: object):
        if unknown:
            raise UsageError(
                f"dataset {self.name!r} does not take option(s) {', '.join(sorted(unknown))}",
                "its options are images, size and seed (docs/datasets.md)",
            )
        self.images = _positive_int(images, "images", 1, MAX_IMAGES, "images=100000")
        self.size = _positive_int(size, "size", 8, 1024, "size=224")
        self.seed = _positive_int(seed, "seed", 0, 2**31 - 1, "seed=0")
        # Plan subjects until the sequences cover N samples; keep per sequence only its labels.
        self._au_numbers = sorted({int(au) for _, row in au_stats.ckplus_table()["sequences"] for au in row})
        column = {au: j for j, au in enumerate(self._au_numbers)}
        sequences = -(-self.images // SAMPLES_PER_SEQUENCE)
        subject, number, frames, emotion, intensity = [], [], [], [], []
        index = 0
        while len(subject) < sequences:
            index += 1
            for plan in plan_subject(index, self.seed):
                if len(subject) == sequences:
                    break
                subject.append(index)
                number.append(plan.number)
                frames.append(plan.frames)
                emotion.append(EMOTIONS.index(plan.emotion))
                row = np.zeros(len(self._au_numbers), dtype=np.int8)
                for au, level in plan.apex:
                    row[column[au]] = level
                intensity.append(row)
        self._seq_subject = np.asarray(subject, dtype=np.int32)
        self._seq_number = np.asarray(number, dtype=np.int16)
        self._seq_frames = np.asarray(frames, dtype=np.int16)
        self._seq_emotion = np.asarray(emotion, dtype=np.int8)
        self._seq_aus = np.stack(intensity)  # int8 [G, A] apex intensity, 0 = absent
        #: subject index -> its sequence plans; a batch reads a few neighbouring subjects
        self._subject_plans = functools.lru_cache(maxsize=16)(functools.partial(plan_subject, seed=self.seed))

    # -- where sample i comes from ----------------------------------------------------
    def _locate(self, index: int) -> tuple[int, int]:
        """(sequence row g, 0-based frame in the sequence) of sample ``index``."""
        if isinstance(index, bool) or not -self.images <= int(index) < self.images:
            raise IndexError(f"sample index {index} out of range for {self.images} samples")
        index = int(index) % self.images
        g, slot = divmod(index, SAMPLES_PER_SEQUENCE)
        frame = 0 if slot == 0 else int(self._seq_frames[g]) - SAMPLES_PER_SEQUENCE + slot
        return g, frame

    def _render(self, index: int, with_masks: bool):
        """(crop uint8 [size, size], crop landmarks float32 [68, 2], masks {AU: bool [size, size]}) of sample ``index``."""
        g, frame = self._locate(index)
        plan = self._subject_plans(int(self._seq_subject[g]))[int(self._seq_number[g]) - 1]
        image, landmarks, masks = render_frame(plan, frame_setups(plan)[frame], with_masks)
        # The landmarks as a release stores them (8 significant digits), so the crop is the release's crop.
        landmarks = np.asarray(_enotation(landmarks).split(), dtype=np.float64).reshape(-1, 2)
        alignment = align_from_landmarks(landmarks, self.size)
        crop = alignment.image(image)
        return crop, alignment.points(landmarks), {au: alignment.mask(mask) for au, mask in sorted(masks.items())}

    # -- the Dataset interface ----------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(EMOTIONS)

    def __len__(self) -> int:
        return self.images

    def __getitem__(self, index: int) -> Sample:
        g, frame = self._locate(index)
        crop, landmarks, masks = self._render(index, with_masks=True)
        aus = self._aus_of(g, frame)
        subject = f"S{int(self._seq_subject[g]):03d}"
        return Sample(
            image=crop.astype(np.float32) / np.float32(255.0),
            emotion=0 if frame == 0 else int(self._seq_emotion[g]),
            aus=aus,
            landmarks=landmarks,
            subject=subject,
            sequence=f"{subject}_{int(self._seq_number[g]):03d}",
            frame=frame + 1,
            au_masks=masks,
            au_regions=au_regions(landmarks, self.size, aus.keys()),
            path=None,
        )

    def _aus_of(self, g: int, frame: int) -> dict[int, int]:
        if frame == 0:
            return {}
        row = self._seq_aus[g]
        return {self._au_numbers[j]: int(row[j]) for j in np.flatnonzero(row)}

    def arrays(self, indices: Sequence[int] | np.ndarray | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Render ``indices`` (default: all N; mind the cost) without masks: (float32 [n, size, size] in [0, 1], emotions int64 [n])."""
        selected = np.arange(self.images) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        images = np.empty((selected.size, self.size, self.size), dtype=np.float32)
        for row, index in enumerate(selected.tolist()):
            images[row] = self._render(index, with_masks=False)[0]
        images /= np.float32(255.0)
        selected = selected % self.images
        # Only the selected samples' labels: a batch must cost O(batch), not O(N).
        rows, apex = selected // SAMPLES_PER_SEQUENCE, selected % SAMPLES_PER_SEQUENCE != 0
        emotions = np.where(apex, self._seq_emotion[rows].astype(np.int64), 0) if selected.size else np.zeros(0, dtype=np.int64)
        return images, emotions

    # -- labels without rendering ---------------------------------------------------------
    def _sample_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(sequence row int64 [N], bool [N]: the sample is an apex frame)."""
        samples = np.arange(self.images, dtype=np.int64)
        return samples // SAMPLES_PER_SEQUENCE, samples % SAMPLES_PER_SEQUENCE != 0

    def _sample_emotions(self) -> np.ndarray:
        rows, apex = self._sample_rows()
        return np.where(apex, self._seq_emotion[rows].astype(np.int64), 0)

    @property
    def emotions(self) -> list[int | None]:
        return self._sample_emotions().tolist()

    @property
    def subjects(self) -> list[str]:
        rows, _ = self._sample_rows()
        return [f"S{s:03d}" for s in self._seq_subject[rows].tolist()]

    @property
    def sequences(self) -> list[str]:
        rows, _ = self._sample_rows()
        return [f"S{s:03d}_{n:03d}" for s, n in zip(self._seq_subject[rows].tolist(), self._seq_number[rows].tolist())]

    @property
    def frames(self) -> list[int]:
        """Frame number (1-based) of each sample in its sequence."""
        return [self._locate(i)[1] + 1 for i in range(self.images)]

    def au_matrix(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        rows, apex = self._sample_rows()
        table = self._seq_aus[rows].astype(np.int64) * apex[:, None]
        if aus is None:
            numbers = [au for j, au in enumerate(self._au_numbers) if table[:, j].any()]
        else:
            numbers = [int(a) for a in aus]
        column = {au: j for j, au in enumerate(self._au_numbers)}
        out = np.zeros((self.images, len(numbers)), dtype=np.int64)
        for k, au in enumerate(numbers):
            if au in column:
                out[:, k] = table[:, column[au]]
        return numbers, out

    def au_presence(self, aus: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        numbers, table = self.au_matrix(aus)
        return numbers, table > 0  # SynthFACS codes every present AU with an intensity 1-5

    def fingerprint(self) -> str:
        """The options and the generator's version: they fix every sample."""
        key = {"dataset": self.name, "stream": STREAM_VERSION, "generator": GENERATOR_VERSION,
               "images": self.images, "size": self.size, "seed": self.seed}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "size": self.size, "seed": self.seed, "sequences": int(self._seq_subject.size),
                "protocol": "default"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(images={self.images}, size={self.size}, seed={self.seed})"
