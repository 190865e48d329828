"""interpret_core.nn.hooks: one list of removable handles, always removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpret_core.nn.hooks import HookHandles, capture_outputs, forward_hooks


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def test_hook_handles_remove_every_hook_when_the_block_raises():
    net, x = _net(), torch.rand(2, 1, 8, 8)
    expected = net(x)
    calls = []
    with pytest.raises(RuntimeError, match="boom"):
        with HookHandles() as hooks:
            for m in net.modules():
                hooks.add(m.register_forward_hook(lambda *_: calls.append(1)))
                hooks.add(m.register_forward_pre_hook(lambda *_: None))
            assert len(hooks) == 8 and _hook_count(net) == 8
            net(x)
            raise RuntimeError("boom")
    assert _hook_count(net) == 0 and len(calls) == 4
    torch.testing.assert_close(net(x), expected)
    assert len(calls) == 4  # the hooks are gone, not only silent


def test_hook_handles_given_at_construction_and_removed_early_or_twice():
    net = _net()
    hooks = HookHandles(net[0].register_forward_hook(lambda *_: None))
    assert _hook_count(net) == 1
    hooks.remove()
    hooks.remove()
    assert _hook_count(net) == 0 and len(hooks) == 0


def test_forward_hooks_and_capture_outputs_restore_the_model():
    net, x = _net(), torch.rand(1, 1, 8, 8)
    with capture_outputs(net, ["0", "1"]) as captured:
        net(x)
        assert set(captured) == {"0", "1"} and _hook_count(net) == 2
    assert _hook_count(net) == 0
    with pytest.raises(Exception):
        with forward_hooks(net, {"0": lambda *_: None, "no-such-layer": lambda *_: None}):
            pass  # pragma: no cover - resolving the second layer fails first
    assert _hook_count(net) == 0
