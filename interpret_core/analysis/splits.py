"""Subject-independent k-fold splits."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from interpret_core.api.errors import UsageError

__all__ = ["Fold", "subject_kfold"]


@dataclasses.dataclass(frozen=True)
class Fold:
    """One subject-independent split; indices are sample indices of a Dataset."""

    index: int
    train: np.ndarray
    test: np.ndarray
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]


def subject_kfold(subjects: Sequence[str], k: int = 10, seed: int = 0) -> list[Fold]:
    """Split sample indices into ``k`` folds so that no subject is in two folds.

    Subjects are shuffled with ``seed`` and dealt to folds greedily, largest
    subject first into the fold with the fewest samples, so fold sizes stay
    balanced. The same ``subjects`` and ``seed`` always give the same folds.

    Args:
        subjects: subject id of each sample.
        k: number of folds, 2 <= k <= number of subjects.
        seed: shuffling seed.
    """
    subject_array = np.asarray(list(subjects), dtype=object)
    unique = sorted(set(subject_array.tolist()))
    if k < 2 or k > len(unique):
        raise UsageError(
            f"cannot make {k} subject-independent folds from {len(unique)} subjects",
            f"choose --folds between 2 and {len(unique)}",
        )
    rng = np.random.default_rng(seed)
    order = [unique[i] for i in rng.permutation(len(unique))]
    counts = {s: int((subject_array == s).sum()) for s in unique}
    # Stable sort keeps the shuffled order among subjects of equal size.
    order.sort(key=lambda s: -counts[s])
    fold_of: dict[str, int] = {}
    load = np.zeros(k, dtype=np.int64)
    for subject in order:
        target = int(np.argmin(load))
        fold_of[subject] = target
        load[target] += counts[subject]
    folds = []
    sample_fold = np.array([fold_of[s] for s in subject_array.tolist()], dtype=np.int64)
    for index in range(k):
        test = np.flatnonzero(sample_fold == index)
        train = np.flatnonzero(sample_fold != index)
        folds.append(
            Fold(
                index=index,
                train=train,
                test=test,
                train_subjects=tuple(sorted({s for s, f in fold_of.items() if f != index})),
                test_subjects=tuple(sorted({s for s, f in fold_of.items() if f == index})),
            )
        )
    return folds
