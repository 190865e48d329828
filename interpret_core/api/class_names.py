"""Matching emotion classes between a model and a data set by name, never by index.

Models and data sets name the same emotions differently: CK+ says ``anger``,
``sadness``; FER2013 models say ``angry``, ``sad``; some lists say
``happiness``, ``surprised``, ``fearful``. :data:`EMOTION_SYNONYMS` is the one
table that says which names are the same emotion; :func:`match_classes` uses
it to translate a data set's class indices into a model's, and says which
classes have no counterpart (FER2013 has no ``contempt``).

Pure Python (no torch): the CLI and the workflows both use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = ["EMOTION_SYNONYMS", "canonical_emotion", "ClassMatch", "match_classes"]

#: canonical name (CK+'s spelling) -> every spelling that means the same emotion.
EMOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral",),
    "anger": ("anger", "angry"),
    "contempt": ("contempt", "contemptuous"),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful", "afraid", "scared"),
    "happy": ("happy", "happiness", "joy"),
    "sadness": ("sadness", "sad"),
    "surprise": ("surprise", "surprised"),
}

_CANONICAL: dict[str, str] = {spelling: canonical for canonical, spellings in EMOTION_SYNONYMS.items() for spelling in spellings}


def canonical_emotion(name: str) -> str:
    """The canonical spelling of emotion ``name`` (case and surrounding space ignored).

    A name outside the table is returned lower-cased, so two data sets that
    share an unusual class name still match each other.
    """
    key = str(name).strip().lower().replace("_", " ")
    return _CANONICAL.get(key, key)


@dataclasses.dataclass(frozen=True)
class ClassMatch:
    """How a data set's classes map onto a model's.

    Attributes:
        to_model: for each data-set class index, the model's class index of the
            same emotion, or None.
        unmatched_dataset: data-set class names the model has no class for.
        unmatched_model: model class names no data-set class maps to.
    """

    to_model: tuple[int | None, ...]
    unmatched_dataset: tuple[str, ...]
    unmatched_model: tuple[str, ...]

    def model_index(self, dataset_index: int | None) -> int | None:
        """The model class of data-set class ``dataset_index`` (None if unlabelled or unmatched)."""
        if dataset_index is None or not 0 <= int(dataset_index) < len(self.to_model):
            return None
        return self.to_model[int(dataset_index)]

    def warning(self, model_name: str = "the model", dataset_name: str = "the data set") -> str | None:
        """One sentence naming the classes that could not be matched, or None if all were."""
        parts = []
        if self.unmatched_dataset:
            parts.append(f"{dataset_name}'s {', '.join(self.unmatched_dataset)} ha{'s' if len(self.unmatched_dataset) == 1 else 've'} no class in {model_name}")
        if self.unmatched_model:
            parts.append(f"{model_name}'s {', '.join(self.unmatched_model)} ha{'s' if len(self.unmatched_model) == 1 else 've'} no class in {dataset_name}")
        if not parts:
            return None
        return "; ".join(parts) + " (classes are matched by name through interpret_core.api.class_names.EMOTION_SYNONYMS)"


def match_classes(model_classes: Sequence[str], dataset_classes: Sequence[str]) -> ClassMatch:
    """Match ``dataset_classes`` to ``model_classes`` by canonical emotion name."""
    model_by_name: dict[str, int] = {}
    for index, name in enumerate(model_classes):
        model_by_name.setdefault(canonical_emotion(name), index)
    to_model = tuple(model_by_name.get(canonical_emotion(name)) for name in dataset_classes)
    matched_model = {i for i in to_model if i is not None}
    return ClassMatch(
        to_model=to_model,
        unmatched_dataset=tuple(str(n) for n, i in zip(dataset_classes, to_model) if i is None),
        unmatched_model=tuple(str(n) for i, n in enumerate(model_classes) if i not in matched_model),
    )
