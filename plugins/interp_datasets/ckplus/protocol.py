"""Protocols: which frames of the indexed sequences become samples, with which labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..emotions import EMOTIONS
from .index import SequenceRecord
from .layout import AUMASKS, mask_name_for

#: Selectable protocols and what they keep (see the CKPlusDataset docstring).
PROTOCOLS: dict[str, str] = {
    "default": "emotion-labelled sequences: first frame neutral, last three frames the emotion (the literature's standard)",
    "peak": "emotion-labelled sequences: the peak (last) frame only",
    "sequence": "every frame of the emotion-labelled sequences; frames between the first and the last three are unlabelled",
    "all": "every frame of every sequence; first frames neutral, last three frames the emotion where labelled",
}

#: Frames at the end of a sequence that carry its emotion (and its peak AUs).
APEX_FRAMES = 3


@dataclasses.dataclass
class Item:
    """One sample before decoding."""

    image: str  # relative path
    subject: str
    sequence: str
    frame: int
    emotion: int | None  # index into class_names
    aus: dict[int, int]
    masks: str | None  # relative path of the AU-mask file; "" if the release has masks but not for this frame


def class_names(include_neutral: bool) -> list[str]:
    """``EMOTIONS`` (8 classes) or the 7 without neutral."""
    return list(EMOTIONS) if include_neutral else list(EMOTIONS[1:])


def _class_index(code: int | None, include_neutral: bool) -> int | None | bool:
    """Class index for a CK+ code; False if the sample must be dropped (neutral in 7-class mode)."""
    if code is None:
        return None
    if include_neutral:
        return code
    return False if code == 0 else code - 1


def select(sequences: Sequence[SequenceRecord], protocol: str, include_neutral: bool) -> list[Item]:
    """Candidate samples under ``protocol``, with labels (landmarks and images are checked later)."""
    items: list[Item] = []
    for record in sequences:
        labelled = record.emotion is not None
        if protocol != "all" and not labelled:
            continue
        peak = record.emotion_frame if labelled else record.frames[-1][0]
        frames = [f for f in record.frames if f[0] <= peak]
        # Every CK+ sequence starts neutral; the last three frames (never the
        # first one) carry the emotion and, ending at the FACS-coded frame, the AUs.
        apex = {n for n, _ in frames[1:][-APEX_FRAMES:]} if len(frames) > 1 else {frames[0][0]}
        facs_peak = record.facs_frame if record.facs_frame is not None else peak
        coded = [f for f in record.frames if f[0] <= facs_peak]
        facs_frames = {n for n, _ in coded[1:][-APEX_FRAMES:]} if len(coded) > 1 else {coded[0][0]}
        if protocol == "default":
            chosen = [frames[0]] + [f for f in frames if f[0] in apex and f != frames[0]]
        elif protocol == "peak":
            chosen = [frames[-1]]
        elif protocol == "sequence":
            chosen = frames
        else:
            chosen = record.frames
        for number, image in chosen:
            code: int | None
            if labelled and number in apex:
                code = record.emotion
            elif number == frames[0][0]:
                code = 0
            else:
                code = None
            label = _class_index(code, include_neutral)
            if label is False:
                continue
            aus = dict(record.aus) if record.aus and number in facs_frames and code != 0 else {}
            masks = None
            if record.mask_files is not None:
                name = mask_name_for(image)
                masks = f"{AUMASKS}/{record.folder}/{name}" if name in record.mask_files else ""
            items.append(Item(image, record.subject, record.sequence, number, label, aus, masks))  # type: ignore[arg-type]
    return items
