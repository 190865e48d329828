"""CK+'s emotion classes, shared by the CK+ reader, SynthFACS and the expression models trained on them."""

from __future__ import annotations

__all__ = ["EMOTIONS"]

#: CK+ emotion codes 0-7, in the order of the release's ``*_emotion.txt`` files.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)
