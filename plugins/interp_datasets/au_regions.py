"""Action-unit regions from 68 facial landmarks.

Real data sets have no pixel ground truth for where an AU shows. The AU
literature uses landmark rules instead: each AU gets one or more *centres*
defined from landmarks, offset vertically by a multiple of a face scale, and
a region (a square in the aligned face) around each centre. We follow

* **EAC-Net**: W. Li, F. Abtahi, Z. Zhu, L. Yin, "EAC-Net: Deep Nets with
  Enhancing and Cropping for Facial Action Unit Detection", IEEE TPAMI 40(11),
  2018 (FG 2017 version: "EAC-Net: A Region-based Deep Enhancing and Cropping
  Approach for Facial Action Unit Detection", arXiv:1702.02925), which
  introduced AU centres defined as "a fraction of a scale above/below" a
  facial feature, the scale being the distance between the inner eye corners.
* **JAA-Net**: Z. Shao, Z. Liu, J. Cai, L. Ma, "Deep Adaptive Attention for
  Joint Facial Action Unit Detection and Face Alignment", ECCV 2018, Sec. 3.2
  and its reference code (``network.py``, ``AlignNet.forward``; the PyTorch
  port ZhiwenShao/PyTorch-JAANet): two centres per AU (left and right), scale
  ``ruler = |x(inner corner of left eye) - x(inner corner of right eye)|``,
  square attention regions of half side ``0.14 * map_size / 2``.

The anchors and offsets in :data:`AU_RULES` are those of JAA-Net's reference
code (checked line by line), which implements the EAC-Net rule family for the
AUs of BP4D and DISFA.

JAA-Net works with 49 landmarks (the 68 minus the jaw line and the two inner
mouth corners); the table below gives its anchors in the 68-point numbering
CK+ uses (0-based): 49-point k < 43 is 68-point k + 17, and 49-point 43-48 are
68-point 61, 62, 63, 65, 66, 67.

Scale and size used here:

* ``ruler`` = Euclidean distance between the inner eye corners (landmarks 39
  and 42); in an eyes-level crop this is JAA-Net's horizontal distance.
* Each centre carries a square of half side ``HALF_SIDE * ruler``, axis-aligned
  in the crop (the crop has the eyes level, see :mod:`.alignment`).
  JAA-Net's half side (0.07 of a face box that is 2.9 times the eye/mouth
  extent, i.e. ~0.2 inter-pupil distances, ~0.4 inner-corner distances) gives
  ``HALF_SIDE = 0.4``. At the default 64-pixel crop the ruler is ~13 pixels, so
  each square is ~11 x 11 pixels.

AUs that EAC-Net/JAA-Net do not define (they were built for BP4D and DISFA)
but that CK+ codes get an *interp extension* rule by anatomical analogy,
marked ``"interp extension"`` in the table. AUs coded in CK+ that have no
visible region on a frontal face (AU21 neck tightener; head and eye movements
AU51-AU64) have no rule and get no region (:data:`NO_REGION`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from .facs import FACS_AUS

__all__ = [
    "AURule",
    "AU_RULES",
    "NO_REGION",
    "HALF_SIDE",
    "ruler",
    "au_centres",
    "au_regions",
]

#: Half side of each square region, in units of the inner-eye-corner distance.
HALF_SIDE = 0.4

EAC = "EAC-Net (Li et al., TPAMI 2018)"
JAA = "JAA-Net (Shao et al., ECCV 2018), AlignNet AU centres"
EXT = "interp extension"


@dataclasses.dataclass(frozen=True)
class AURule:
    """Where one AU's region lies.

    Attributes:
        au: FACS action-unit number.
        name: FACS name.
        anchors: one entry per centre; each entry is the landmark indices
            (68-point, 0-based) whose mean is the anchor point.
        dx: horizontal offset per centre in ruler units, signed (+ = image right).
        dy: vertical offset in ruler units (+ = down), same for every centre.
        source: citation of the rule.
        rule: the rule in words.
    """

    au: int
    name: str
    anchors: tuple[tuple[int, ...], ...]
    dy: float
    source: str
    rule: str
    dx: tuple[float, ...] | None = None


def _rule(au, anchors, dy, source, rule, dx=None) -> AURule:
    return AURule(au, FACS_AUS[au].name, tuple(tuple(a) for a in anchors), float(dy), source, rule, dx)


#: AU -> rule. Anchors are 68-point landmark indices (0-based).
AU_RULES: dict[int, AURule] = {
    r.au: r
    for r in (
        _rule(1, [(21,), (22,)], -1 / 2, f"{EAC}; {JAA}",
              "1/2 scale above the inner brow ends (49-pt 4, 5)"),
        _rule(2, [(18,), (25,)], -1 / 3, f"{EAC}; {JAA}",
              "1/3 scale above the outer brows (49-pt 1, 8)"),
        _rule(4, [(19,), (24,)], +1 / 3, f"{EAC}; {JAA}",
              "1/3 scale below the brow centres (49-pt 2, 7): between and under the brows"),
        _rule(5, [(37, 38), (43, 44)], 0.0, EXT,
              "on the upper eyelid centres (mean of landmarks 37-38 and 43-44); "
              "by analogy with the JAA-Net AU7 lid anchors"),
        _rule(6, [(41,), (46,)], +1.0, f"{EAC}; {JAA}",
              "1 scale below the lower eyelids (49-pt 24, 29)"),
        _rule(7, [(38,), (43,)], 0.0, JAA,
              "on the eyelids (49-pt 21, 26)"),
        _rule(9, [(32,), (34,)], -1 / 2, JAA,
              "1/2 scale above the nostril wings (49-pt 15, 17): the nose bridge"),
        _rule(10, [(61,), (63,)], 0.0, f"{EAC}; {JAA}",
              "on the upper lip (49-pt 43, 45)"),
        _rule(11, [(31, 48), (35, 54)], 0.0, EXT,
              "midway between nostril wing and lip corner: the nasolabial furrow"),
        _rule(12, [(48,), (54,)], 0.0, f"{EAC}; {JAA}",
              "on the lip corners (49-pt 31, 37)"),
        _rule(13, [(48,), (54,)], 0.0, EXT,
              "on the lip corners, as AU12"),
        _rule(14, [(48,), (54,)], 0.0, f"{EAC}; {JAA}",
              "on the lip corners (49-pt 31, 37)"),
        _rule(15, [(48,), (54,)], 0.0, f"{EAC}; {JAA}",
              "on the lip corners (49-pt 31, 37)"),
        _rule(16, [(56,), (58,)], 0.0, EXT,
              "on the lower lip (landmarks 56, 58), the part AU16 pulls down"),
        _rule(17, [(56,), (58,)], +1 / 2, f"{EAC}; {JAA}",
              "1/2 scale below the lower lip (49-pt 39, 41): the chin boss"),
        _rule(18, [(51,), (57,)], 0.0, EXT,
              "on the lip centres, as AU23/AU24"),
        _rule(20, [(48,), (54,)], 0.0, EXT,
              "1/2 scale outward of the lip corners (the stretched cheek skin)",
              dx=(-1 / 2, +1 / 2)),
        _rule(22, [(51,), (57,)], 0.0, EXT,
              "on the lip centres, as AU23/AU24"),
        _rule(23, [(51,), (57,)], 0.0, f"{EAC}; {JAA}",
              "on the upper and lower lip centres (49-pt 34, 40)"),
        _rule(24, [(51,), (57,)], 0.0, f"{EAC}; {JAA}",
              "on the upper and lower lip centres (49-pt 34, 40)"),
        _rule(25, [(51,), (57,)], 0.0, JAA,
              "on the upper and lower lip centres (49-pt 34, 40), DISFA model"),
        _rule(26, [(56,), (58,)], +1 / 2, JAA,
              "1/2 scale below the lower lip (49-pt 39, 41), DISFA model"),
        _rule(27, [(51,), (57,), (56,), (58,)], 0.0, EXT,
              "the union of the AU25 centres (lips) and the lower-lip points; "
              "the chin part comes from the lower lip moving down with the jaw",
              dx=(0.0, 0.0, 0.0, 0.0)),
        _rule(28, [(51,), (57,)], 0.0, EXT, "on the lip centres"),
        _rule(38, [(31,), (35,)], 0.0, EXT, "on the nostril wings"),
        _rule(39, [(31,), (35,)], 0.0, EXT, "on the nostril wings"),
        _rule(43, [(37, 38, 40, 41), (43, 44, 46, 47)], 0.0, EXT, "on the eyes"),
        _rule(44, [(38,), (43,)], 0.0, EXT, "on the eyelids, as AU7"),
        _rule(45, [(37, 38, 40, 41), (43, 44, 46, 47)], 0.0, EXT, "on the eyes"),
    )
}

#: AUs coded in CK+ (or FACS) that have no region on a frontal face crop.
NO_REGION: dict[int, str] = {
    21: "neck tightener: acts on the neck, below the face crop",
    31: "jaw clencher: masseter bulge at the jaw angle, outside the 68-point face box",
    **{au: "head or eye movement, not a local change of the face" for au in range(51, 70)},
}


def ruler(landmarks: np.ndarray) -> float:
    """The face scale: distance between the inner eye corners (landmarks 39 and 42)."""
    points = np.asarray(landmarks, dtype=np.float64)
    return float(np.hypot(*(points[42] - points[39])))


def au_centres(landmarks: np.ndarray, aus: Iterable[int] | None = None) -> dict[int, np.ndarray]:
    """{AU: float32 [K, 2] centres (x, y)} for ``aus`` (default: every AU with a rule).

    ``landmarks`` are [68, 2] in an eyes-level frame (the aligned crop);
    AUs without a rule are left out.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    scale = ruler(points)
    wanted = AU_RULES.keys() if aus is None else [int(a) for a in aus]
    centres: dict[int, np.ndarray] = {}
    for au in wanted:
        rule = AU_RULES.get(au)
        if rule is None:
            continue
        rows = []
        for index, anchor in enumerate(rule.anchors):
            x, y = points[list(anchor)].mean(axis=0)
            dx = rule.dx[index] if rule.dx is not None else 0.0
            rows.append((x + dx * scale, y + rule.dy * scale))
        centres[au] = np.asarray(rows, dtype=np.float32)
    return centres


def au_regions(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    aus: Iterable[int] | None = None,
    half_side: float = HALF_SIDE,
) -> dict[int, np.ndarray]:
    """{AU: bool [H, W]} region masks in the crop for ``aus`` (default: all ruled AUs).

    Each region is the union of axis-aligned squares of half side
    ``half_side * ruler`` around the AU's centres, clipped to the crop.
    Pixel (col, row) is inside a square if its centre is within the half side
    of the square's centre (pixel-centre coordinates, as the landmarks).
    """
    height, width = (size, size) if isinstance(size, int) else size
    half = half_side * ruler(landmarks)
    cols = np.arange(width, dtype=np.float64)
    rows = np.arange(height, dtype=np.float64)
    regions: dict[int, np.ndarray] = {}
    for au, centres in au_centres(landmarks, aus).items():
        mask = np.zeros((height, width), dtype=bool)
        for cx, cy in centres.astype(np.float64):
            in_x = np.abs(cols - cx) <= half
            in_y = np.abs(rows - cy) <= half
            mask |= in_y[:, None] & in_x[None, :]
        regions[au] = mask
    return regions
