"""The LRP plugins in the main environment: registered, options checked, a clear error without Zennit.

Their numbers are checked in tests/torchvision/test_tv_lrp.py, where Zennit is installed.
"""

from __future__ import annotations

import sys

import pytest
import torch

from interpret_core import CapabilityError, UsageError, get_attribution, get_model, get_registry

LRP = ("lrp-epsilon", "lrp-alpha-beta", "lrp-epsilon-plus-flat")


def test_lrp_methods_are_registered_signed_with_units():
    names = get_registry().names("attribution")
    for name in LRP:
        assert name in names
        method = get_attribution(name)
        assert method.signed and method.supports_units


def test_without_zennit_a_capability_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "zennit", None)  # as if not installed (None makes the import fail)
    model = get_model("fer-cnn")
    for name in LRP:
        with pytest.raises(CapabilityError) as info:
            get_attribution(name).attribute(model.module, torch.rand(1, 1, 64, 64), 0)
        assert "interp[lrp]" in str(info.value) and "Zennit" in str(info.value)


@pytest.mark.parametrize("name, options", [("lrp-epsilon", {"epsilon": -1}), ("lrp-alpha-beta", {"alpha": 2, "beta": 0.5}),
                                           ("lrp-alpha-beta", {"alpha": 0.5, "beta": -0.5}), ("lrp-epsilon", {"gamma": 1})])
def test_bad_lrp_options_are_usage_errors(name, options):
    with pytest.raises(UsageError) as info:
        get_attribution(name, **options)
    assert name in str(info.value)
