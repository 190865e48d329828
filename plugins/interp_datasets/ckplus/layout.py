"""The CK+ release layout: folder names, file names and the paths between them.

Layout (Lucey et al., "The Extended Cohn-Kanade Dataset (CK+)", CVPRW 2010)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png     every frame
    ROOT/Landmarks/S005/001/S005_001_00000001_landmarks.txt    every frame: 68 rows "x y"
    ROOT/FACS/S005/001/S005_001_00000011_facs.txt              peak frame: rows "AU intensity"
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt        peak frame, labelled sequences only
    ROOT/AUMasks/S005/001/S005_001_00000011_aumasks.npz        optional (SynthFACS): ground truth

Paths inside the reader are '/'-separated strings relative to the root.
"""

from __future__ import annotations

import os
import re

IMAGES = "cohn-kanade-images"
LANDMARKS = "Landmarks"
EMOTION = "Emotion"
FACS = "FACS"
AUMASKS = "AUMasks"

SUBJECT_NAME = re.compile(r"S\d+")
FRAME_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)
LABEL_FRAME = re.compile(r"_(\d+)_(?:emotion|facs)\.txt$", re.IGNORECASE)
AU_KEY = re.compile(r"^AU(\d+)$")


def is_hidden(name: str) -> bool:
    """OS litter that is ignored silently: .DS_Store, ._foo (AppleDouble), Thumbs.db, desktop.ini."""
    return name.startswith(".") or name.lower() in ("thumbs.db", "desktop.ini")


def is_utf8(name: str) -> bool:
    """False for a name ``os.scandir`` decoded with surrogate escapes (its bytes are not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str) -> str:
    """``path`` as text any terminal and JSON can show: bytes that are not UTF-8 become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def label_frame(name: str) -> int | None:
    """The frame number an emotion or FACS file names (``..._00000011_emotion.txt`` -> 11), if any."""
    match = LABEL_FRAME.search(name)
    return int(match.group(1)) if match else None


def landmarks_for(image: str) -> str:
    """``cohn-kanade-images/S/q/X.png`` -> ``Landmarks/S/q/X_landmarks.txt``."""
    return LANDMARKS + image[len(IMAGES):-len(".png")] + "_landmarks.txt"


def mask_name_for(image: str) -> str:
    """The AU-mask file name of a frame: ``.../X.png`` -> ``X_aumasks.npz``."""
    return image.rsplit("/", 1)[1][: -len(".png")] + "_aumasks.npz"
