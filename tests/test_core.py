"""Core helpers: subject-independent splits, atomic writes, the Model input conversion."""

from __future__ import annotations

import numpy as np
import pytest

from interpret_core.api.errors import UsageError
from interpret_core.util.io import atomic_open, read_json, write_json
from interpret_core.analysis.splits import subject_kfold


def test_subject_kfold_is_disjoint_covering_balanced_and_deterministic():
    rng = np.random.default_rng(1)
    subjects = [f"S{int(s):03d}" for s in rng.integers(0, 40, size=500)]
    folds = subject_kfold(subjects, k=10, seed=3)
    assert len(folds) == 10
    seen = np.concatenate([f.test for f in folds])
    assert sorted(seen.tolist()) == list(range(len(subjects)))
    for fold in folds:
        assert not set(fold.train_subjects) & set(fold.test_subjects)
        assert {subjects[i] for i in fold.test} == set(fold.test_subjects)
        assert {subjects[i] for i in fold.train} == set(fold.train_subjects)
        assert len(fold.train) + len(fold.test) == len(subjects)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= max(subjects.count(s) for s in set(subjects))
    again = subject_kfold(subjects, k=10, seed=3)
    assert all((a.test == b.test).all() for a, b in zip(folds, again))
    other = subject_kfold(subjects, k=10, seed=4)
    assert any(a.test_subjects != b.test_subjects for a, b in zip(folds, other))


def test_subject_kfold_rejects_more_folds_than_subjects():
    with pytest.raises(UsageError, match="3 subjects"):
        subject_kfold(["a", "b", "c"], k=4)


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"ok": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target, "w") as handle:
            handle.write('{"half": ')
            raise KeyboardInterrupt
    assert read_json(target) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_write_json_converts_numpy_and_nan(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": (1, 2)})
    assert read_json(target) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, 2]}
