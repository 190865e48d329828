"""The one slug, the one weights fingerprint and the sample pickers that every command shares."""

from __future__ import annotations

import numpy as np
import pytest

from interpret_core.analysis.sampling import even_indices, stratified_indices
from interpret_core.api.errors import UsageError
from interpret_core.util.paths import slug


def test_slug_keeps_safe_names_and_makes_specs_unique():
    assert slug("features.3") == "features.3" and slug("au-distance") == "au-distance"
    a, b = slug("occlusion:window=12,stride=6"), slug("occlusion:window=12;stride=6")
    assert a.startswith("occlusion-window-12-stride-6-") and a != b and len(a.rsplit("-", 1)[1]) == 8
    assert slug("captum:NoiseTunnel(Saliency)", unique=False) == "captum-NoiseTunnel-Saliency"
    assert slug("AU12_conv/1_u3", unique=False) == "AU12_conv-1_u3" and slug("::", unique=False) == "x"


def test_state_dict_sha256_is_the_sha256_of_the_saved_file(tmp_path):
    import torch

    from interpret_core import get_model
    from interpret_core.nn.weights import save_weights, sha256_file, state_dict_sha256

    model = get_model("fer-cnn")
    if model.card is not None:  # the shipped weights: the card's sha256 is the fingerprint
        assert state_dict_sha256(model.module) == model.card["weights"]["sha256"]
    path = save_weights(model, tmp_path / "m.safetensors")
    assert state_dict_sha256(model.module) == sha256_file(path)
    with torch.no_grad():
        next(model.module.parameters()).view(-1)[0] += 1e-6
    assert state_dict_sha256(model.module) != sha256_file(path)


def test_even_indices_spread_and_refuse_a_zero_limit():
    assert even_indices(10, 4).tolist() == [0, 3, 6, 9] and even_indices(5, None).tolist() == list(range(5))
    with pytest.raises(UsageError, match="--limit"):
        even_indices(10, 0)


def test_stratified_indices_round_robin_over_labels_in_draw_or_sorted_order():
    labels = [0] * 30 + [1] * 5 + [None] * 3 + [2] * 12
    drawn = stratified_indices(labels, 8, seed=1, sort=False)
    assert [labels[i] for i in drawn[:4]] == [0, 1, 2, None]  # one of each label first, None last
    np.testing.assert_array_equal(np.sort(drawn), stratified_indices(labels, 8, seed=1))
    many = stratified_indices(labels, 20, seed=0)
    counts = {label: sum(labels[i] == label for i in many) for label in (0, 1, 2, None)}
    assert counts == {0: 6, 1: 5, 2: 6, None: 3}  # small groups give all they have
    assert len(set(many.tolist())) == 20
