"""CK+ action-unit statistics and the sampling of each sequence's apex AUs.

The facts come from ``interp_datasets/data/ckplus_peak_aus.json``: the emotion
and the set of AUs coded at the peak frame of each of the 327 emotion-labelled
CK+ sequences (Lucey et al. 2010, via the NetFACS package's ``emotions_set``).
Drawing a whole row keeps the real co-occurrence of AUs within an emotion.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from ..emotions import EMOTIONS

#: The seven CK+ emotions a sequence can show (neutral is the first frame).
SEQUENCE_EMOTIONS: tuple[str, ...] = EMOTIONS[1:]

#: FACS intensity letters A-E as stored in CK+ FACS files (1-5) -> amplitude
#: of the landmark displacement and texture (1.0 = the largest we draw).
INTENSITY_AMPLITUDE: dict[int, float] = {1: 0.35, 2: 0.5, 3: 0.65, 4: 0.82, 5: 1.0}
#: How often each apex intensity is drawn (A rarely: the last frames must show the AUs).
INTENSITY_WEIGHTS: dict[int, float] = {1: 0.02, 2: 0.13, 3: 0.30, 4: 0.35, 5: 0.20}


@functools.lru_cache(maxsize=1)
def ckplus_table() -> dict:
    """The packaged CK+ peak-AU table: ``{"sequences": [[emotion, [AU, ...]], ...], ...}``."""
    text = resources.files("interp_datasets").joinpath("data/ckplus_peak_aus.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def rows_by_emotion() -> dict[str, tuple[tuple[int, ...], ...]]:
    """Emotion name -> the AU sets of its CK+ sequences (duplicates kept: they are the frequencies)."""
    grouped: dict[str, list[tuple[int, ...]]] = {name: [] for name in SEQUENCE_EMOTIONS}
    for emotion, aus in ckplus_table()["sequences"]:
        grouped[emotion].append(tuple(int(a) for a in aus))
    return {name: tuple(rows) for name, rows in grouped.items()}


def emotion_weights() -> np.ndarray:
    """Sampling weight per emotion (order of SEQUENCE_EMOTIONS).

    The square root of the CK+ counts: the order of frequencies stays that of
    CK+ (surprise most, contempt least) while the rare classes get more
    examples (contempt 18 -> weight 4.2 vs surprise 83 -> 9.1).
    """
    counts = np.array([len(rows_by_emotion()[name]) for name in SEQUENCE_EMOTIONS], dtype=np.float64)
    return np.sqrt(counts)


def sample_emotions(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct emotions for one subject, weighted as :func:`emotion_weights`.

    Distinct, as in CK+ where a subject poses each emotion at most once, so
    that every subject shows several emotions and none is tied to a subject.
    """
    weights = emotion_weights()
    picks = rng.choice(len(SEQUENCE_EMOTIONS), size=min(count, len(SEQUENCE_EMOTIONS)), replace=False,
                       p=weights / weights.sum())
    return [SEQUENCE_EMOTIONS[i] for i in picks]


def sample_apex(rng: np.random.Generator, emotion: str) -> dict[int, int]:
    """Apex AUs of one sequence: a random CK+ row of ``emotion`` with intensities 1-5."""
    rows = rows_by_emotion()[emotion]
    aus = rows[int(rng.integers(len(rows)))]
    levels = np.array(sorted(INTENSITY_WEIGHTS))
    p = np.array([INTENSITY_WEIGHTS[k] for k in levels])
    return {int(au): int(rng.choice(levels, p=p / p.sum())) for au in aus}
