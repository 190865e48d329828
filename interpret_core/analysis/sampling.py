"""Which samples a command looks at: an even spread, or a seeded draw stratified over labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interpret_core.api.errors import UsageError

__all__ = ["even_indices", "stratified_indices", "spread_top"]


def even_indices(total: int, limit: int | None) -> np.ndarray:
    """``limit`` indices spread evenly over ``range(total)`` (all of them without a limit); int64, sorted."""
    if limit is None or limit >= total:
        return np.arange(total, dtype=np.int64)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}", "e.g. --limit 200")
    return np.unique(np.linspace(0, total - 1, limit).round().astype(np.int64))


def stratified_indices(labels: Sequence[Any], limit: int | None, seed: int, *, sort: bool = True) -> np.ndarray:
    """Indices of ``limit`` items drawn round-robin over the label groups, seeded; int64.

    Each group (one per distinct label, ``None`` included, ordered by label
    with ``None`` last) is shuffled with ``numpy.random.default_rng(seed)``;
    the draw takes one item from each group in turn, so classes are
    represented as evenly as their sizes allow. ``sort``: return the indices
    in increasing order (default) rather than in draw order, whose first
    items show one sample of each label. Without a limit (or a limit of at
    least ``len(labels)``) all indices, in order.
    """
    total = len(labels)
    if limit is None or limit >= total:
        return np.arange(total, dtype=np.int64)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}", "e.g. --limit 64")
    rng = np.random.default_rng(seed)
    groups: dict[Any, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    keys = sorted(groups, key=lambda k: (k is None, str(k) if not isinstance(k, int) else f"{k:08d}"))
    queues = [list(rng.permutation(groups[k])) for k in keys]
    chosen: list[int] = []
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(int(queue.pop(0)))
    return np.array(sorted(chosen) if sort else chosen, dtype=np.int64)


def spread_top(
    ranked: Sequence[int], group_of: Any, k: int, *, subject_of: Any = None, look_at: int | None = None
) -> list[int]:
    """The first ``k`` of ``ranked`` (best first) with at most one item per group, spread over subjects.

    ``group_of(item)`` gives an item's group (its sequence): a group already
    chosen is skipped, so near-identical frames of one sequence are never
    shown twice. With ``subject_of(item)``, a first pass takes at most one
    item per subject; a second pass fills the remaining places with new
    sequences of subjects already shown. ``look_at`` bounds how many of
    ``ranked`` are examined (each look may decode a sample).
    """
    candidates = list(ranked)[: look_at if look_at is not None else None]
    groups = [group_of(item) for item in candidates]
    subjects = [subject_of(item) for item in candidates] if subject_of is not None else [None] * len(candidates)
    chosen: list[int] = []
    used_groups: set[Any] = set()
    used_subjects: set[Any] = set()
    passes = (True, False) if subject_of is not None else (False,)
    for one_per_subject in passes:
        for item, group, subject in zip(candidates, groups, subjects):
            if len(chosen) >= k:
                return chosen
            if group in used_groups or (one_per_subject and subject in used_subjects):
                continue
            chosen.append(int(item))
            used_groups.add(group)
            used_subjects.add(subject)
    return chosen
