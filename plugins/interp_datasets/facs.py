"""The FACS action units: number -> (name, face region), the one table every output uses.

Names follow the FACS manual (Ekman, Friesen & Hager 2002) as listed in the
CK+ paper (Lucey et al. 2010, table 1). The region groups AUs for figures
(brows first, chin last): ``brow``, ``eyes``, ``cheeks``, ``nose``, ``mouth``,
``jaw``, ``head`` (head and eye movements, 51-69).
"""

from __future__ import annotations

from interpret_core.api.interfaces import AUInfo

__all__ = ["FACS_AUS"]

_BROW, _EYES, _CHEEKS, _NOSE, _MOUTH, _JAW, _HEAD = "brow", "eyes", "cheeks", "nose", "mouth", "jaw", "head"

#: AU number -> AUInfo(FACS name, face region).
FACS_AUS: dict[int, AUInfo] = {
    au: AUInfo(name, region)
    for au, name, region in (
        (1, "inner brow raiser", _BROW),
        (2, "outer brow raiser", _BROW),
        (4, "brow lowerer", _BROW),
        (5, "upper lid raiser", _EYES),
        (6, "cheek raiser", _CHEEKS),
        (7, "lid tightener", _EYES),
        (9, "nose wrinkler", _NOSE),
        (10, "upper lip raiser", _MOUTH),
        (11, "nasolabial deepener", _CHEEKS),
        (12, "lip corner puller", _MOUTH),
        (13, "sharp lip puller", _MOUTH),
        (14, "dimpler", _MOUTH),
        (15, "lip corner depressor", _MOUTH),
        (16, "lower lip depressor", _MOUTH),
        (17, "chin raiser", _JAW),
        (18, "lip pucker", _MOUTH),
        (20, "lip stretcher", _MOUTH),
        (21, "neck tightener", _JAW),
        (22, "lip funneler", _MOUTH),
        (23, "lip tightener", _MOUTH),
        (24, "lip pressor", _MOUTH),
        (25, "lips part", _MOUTH),
        (26, "jaw drop", _JAW),
        (27, "mouth stretch", _JAW),
        (28, "lip suck", _MOUTH),
        (29, "jaw thrust", _JAW),
        (31, "jaw clencher", _JAW),
        (34, "cheek puff", _CHEEKS),
        (38, "nostril dilator", _NOSE),
        (39, "nostril compressor", _NOSE),
        (41, "lid droop", _EYES),
        (42, "slit", _EYES),
        (43, "eyes closed", _EYES),
        (44, "squint", _EYES),
        (45, "blink", _EYES),
        (46, "wink", _EYES),
        (51, "head turn left", _HEAD),
        (52, "head turn right", _HEAD),
        (53, "head up", _HEAD),
        (54, "head down", _HEAD),
        (55, "head tilt left", _HEAD),
        (56, "head tilt right", _HEAD),
        (57, "head forward", _HEAD),
        (58, "head back", _HEAD),
        (61, "eyes turn left", _HEAD),
        (62, "eyes turn right", _HEAD),
        (63, "eyes up", _HEAD),
        (64, "eyes down", _HEAD),
    )
}

