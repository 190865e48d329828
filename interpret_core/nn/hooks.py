"""Module hooks as context managers with removable handles.

Every hook interp installs goes into a :class:`HookHandles` list used as a
context manager, so the model is restored when the block ends, also when it
raises (after Zennit's ``core.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from interpret_core.api.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


def resolve_layer(module: nn.Module, layer: str, layers: Sequence[str] | None = None) -> nn.Module:
    """The submodule called ``layer`` (a dotted name from ``named_modules()``).

    ``layers`` (a model's ``Model.layers``) is what an unknown name's error
    lists; any other dotted module name is still accepted.
    """
    names = dict(module.named_modules())
    if layer not in names:
        import difflib

        candidates = [n for n in names if n]
        listed = list(layers) if layers else candidates
        close = difflib.get_close_matches(layer, listed, n=1) or difflib.get_close_matches(layer, candidates, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use one of the model's layers (`interp models`)"
        if layers:
            hint += "; any dotted module name of the network (named_modules()) also works"
            raise UsageError(f"model has no layer {layer!r}; its layers: {', '.join(listed)}", hint)
        raise UsageError(f"model has no layer {layer!r}; modules: {', '.join(candidates)}", hint)
    return names[layer]


class HookHandles:
    """The removable handles of the hooks installed for one block; all removed on exit.

    ``with HookHandles() as hooks: hooks.add(m.register_forward_hook(f))`` --
    when the block ends (normally or by an exception) every handle is removed,
    last first, so the module is as it was. :meth:`remove` may also be called
    early; removing twice is harmless.
    """

    def __init__(self, *handles: Any) -> None:
        self._handles: list[Any] = list(handles)

    def add(self, handle: Any) -> Any:
        """Keep ``handle`` (anything with ``remove()``, e.g. torch's ``RemovableHandle``); returns it."""
        self._handles.append(handle)
        return handle

    def remove(self) -> None:
        """Remove every handle kept so far."""
        while self._handles:
            self._handles.pop().remove()

    def __len__(self) -> int:
        return len(self._handles)

    def __enter__(self) -> HookHandles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


@contextlib.contextmanager
def forward_hooks(
    module: nn.Module, hooks: dict[str, Callable[[nn.Module, Any, Any], Any]]
) -> Iterator[None]:
    """Install ``{layer: hook(module, inputs, output)}`` forward hooks for the block's duration."""
    with HookHandles() as handles:
        for layer, hook in hooks.items():
            handles.add(resolve_layer(module, layer).register_forward_hook(hook))
        yield


@contextlib.contextmanager
def capture_outputs(module: nn.Module, layers: Sequence[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each of ``layers`` on every forward pass.

    Yields a dict that each forward pass fills with ``{layer: output}``
    (the latest pass overwrites the previous one). Outputs are detached
    unless ``detach`` is False. Outputs of in-place modules are cloned so a
    later in-place op cannot change what was recorded.
    """
    captured: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            value = output.detach() if detach else output
            if getattr(_module, "inplace", False):
                value = value.clone()
            captured[name] = value

        return hook

    with forward_hooks(module, {layer: make_hook(layer) for layer in layers}):
        yield captured
