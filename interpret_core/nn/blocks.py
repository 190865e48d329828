"""Which layer is a network's last spatial block: Grad-CAM's default layer and its grid.

Grad-CAM (Selvaraju et al. 2017) explains "the last convolutional layer": the
feature maps the classifier reads, after their rectifier. The last
``nn.Conv2d`` in registration order is not that layer: on ``fer-cnn`` it is the
pre-ReLU convolution (whose gradient-weighted sum is often all negative, so the
ReLU'd CAM is all zero), and on a mini-Xception it is the 1x1/3x3 classifier
convolution whose channels are the classes. The rule here, from one probe
forward pass in execution order:

* the last call of a rectifier module (``nn.ReLU``, ``LeakyReLU``, ``ELU``,
  ``GELU``, ``SiLU``, ...) whose output is a feature map [N, C, h, w] with
  h * w > 1;
* reported under the outermost module that returns that very tensor (so the
  ReLU closing ``fer-cnn``'s ``conv3`` block is named ``conv3``, the block
  Model.layers lists).

No torch at import time.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from interpret_core.api.errors import CapabilityError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["SpatialBlock", "last_spatial_block", "leading_input_transform"]

RECTIFIERS = ("ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
              "Hardswish", "Softplus")


@dataclasses.dataclass(frozen=True)
class SpatialBlock:
    """The last rectified feature map of a network.

    Attributes:
        layer: dotted module name (``named_modules()``).
        shape: (C, h, w) of its output for the probed input size.
        stride: (input H / h, input W / w) in input pixels: the spacing of the map's grid.
    """

    layer: str
    shape: tuple[int, int, int]
    stride: tuple[float, float]


def last_spatial_block(module: nn.Module, input_size: tuple[int, int, int]) -> SpatialBlock:
    """The output of the last spatial block after its rectifier (see the module docstring).

    Args:
        module: the network; its training flags are restored afterwards.
        input_size: (C, H, W) of the network's input.

    Raises:
        CapabilityError: no rectifier module outputs a feature map (e.g. the
            network uses only ``torch.relu`` calls); pass the layer by name.
    """
    import torch
    from torch import nn

    rectifiers = tuple(getattr(nn, name) for name in RECTIFIERS if hasattr(nn, name))
    calls: list[tuple[str, nn.Module, object]] = []  # (name, module, output) in the order calls finish
    names = {sub: name for name, sub in module.named_modules()}

    def hook(sub, _inputs, output):
        calls.append((names[sub], sub, output))

    handles = [sub.register_forward_hook(hook) for sub in names if sub is not module]
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        parameter = next(module.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        channels, height, width = (int(v) for v in input_size)
        probe = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            module(probe)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)

    def spatial(output: object) -> bool:
        return isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[-2] * output.shape[-1] > 1

    chosen = None
    for index in range(len(calls) - 1, -1, -1):
        _, sub, output = calls[index]
        if isinstance(sub, rectifiers) and spatial(output):
            chosen = index
            break
    if chosen is None:
        raise CapabilityError(
            f"{type(module).__name__} has no rectifier module with a feature-map output for a CAM layer",
            "pass layer=NAME with the layer whose output is the last feature map [N, C, h, w]",
        )
    output = calls[chosen][2]
    # Enclosing blocks finish after their last child and return the same tensor object.
    name = calls[chosen][0]
    for later_name, _sub, later_output in calls[chosen + 1:]:
        if later_output is output and later_name and name.startswith(f"{later_name}."):
            name = later_name
    c, h, w = (int(v) for v in output.shape[1:])
    return SpatialBlock(layer=name, shape=(c, h, w), stride=(height / h, width / w))


def leading_input_transform(module: nn.Module, inputs: torch.Tensor) -> str | None:
    """Dotted name of a parameter-free, shape-keeping custom module applied first to the raw input, or None.

    Such a module (``fer-cnn``'s ``Standardise``: per-image zero mean, unit
    std) is a preprocessing step inside the network. Methods whose rules do
    not cover it (DeepLIFT's rescale rule falls back to its gradient) can
    explain the network after it instead, on the transformed image. Found
    with one probe forward pass on the first input: the first module called
    on the very input tensor, defined outside ``torch``, without parameters
    or children, whose output has the input's shape.
    """
    import torch

    names = {sub: name for name, sub in module.named_modules() if sub is not module}
    probe = inputs[:1].detach().clone()
    found: list[tuple[nn.Module, bool]] = []

    def hook(sub, args, output):
        if not found and args and args[0] is probe:
            found.append((sub, isinstance(output, torch.Tensor) and output.shape == probe.shape))

    handles = [sub.register_forward_hook(hook) for sub in names]
    try:
        with torch.no_grad():
            module(probe)
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        return None
    sub, keeps_shape = found[0]
    custom = not type(sub).__module__.startswith("torch.")
    bare = not any(True for _ in sub.children()) and not any(True for _ in sub.parameters())
    return names[sub] if keeps_shape and custom and bare else None
