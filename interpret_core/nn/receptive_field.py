"""Receptive fields of a layer's output positions, for conv/pool nets and ResNets.

:func:`receptive_field` runs one probe forward pass on a zero input under a
``torch.overrides.TorchFunctionMode`` that follows every tensor through the
network and attaches to it a *geometry*: for each spatial axis, the input
window seen by output position 0 (``start``, ``size``) and the step between
neighbouring positions (``stride``). Convolutions, poolings and padding
compose the geometry (the standard recurrences); ops that keep the spatial
shape (ReLU, batch norm, additions, channel concatenation) pass it on, and
where several tensors meet (a residual addition) the windows are united. So a
ResNet's shortcut and main path are followed separately and merged, instead of
composing every conv in execution order.

Coordinates are input pixel indices (row ``y``, column ``x``) of the input
pixel grid; the window of output position (i, j) is rows
``[start_h + i*stride_h, start_h + i*stride_h + size_h)`` (half-open), which can
extend past the image where the network pads; :meth:`ReceptiveField.box` clips
it. The centre of position (i, j) is ``(offset_h + i*stride_h, offset_w + j*stride_w)``
with ``offset = start + (size - 1) / 2`` (a half-integer for even sizes).

No torch at import time.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from interpret_core.api.errors import CapabilityError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["ReceptiveField", "receptive_field"]


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Where each output position of a layer looks in the input.

    Attributes:
        size: (h, w) window size in input pixels.
        stride: (h, w) input pixels between neighbouring output positions.
        offset: (h, w) centre of output position (0, 0), in input pixels
            (may be negative or a half-integer).
        output_shape: (h, w) the layer's spatial output size.
        input_shape: (h, w) the input's spatial size.
        start: (h, w) first input row/column of position (0, 0)'s window
            (unclipped; negative where the network zero-pads).
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[float, float]
    output_shape: tuple[int, int]
    input_shape: tuple[int, int]
    start: tuple[int, int]

    def centre(self, i: int, j: int) -> tuple[float, float]:
        """(y, x) input coordinates of the centre of output position (i, j)."""
        return (self.offset[0] + i * self.stride[0], self.offset[1] + j * self.stride[1])

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Unclipped half-open window (y0, y1, x0, x1) of output position (i, j)."""
        y0 = self.start[0] + i * self.stride[0]
        x0 = self.start[1] + j * self.stride[1]
        return (y0, y0 + self.size[0], x0, x0 + self.size[1])

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Half-open window (y0, y1, x0, x1) of output position (i, j), clipped to the input."""
        y0, y1, x0, x1 = self.window(i, j)
        height, width = self.input_shape
        return (max(y0, 0), min(y1, height), max(x0, 0), min(x1, width))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Axis:
    """Geometry of one spatial axis: window start and size of position 0, and step."""

    start: int
    size: int
    stride: int

    def then(self, kernel: int, stride: int, padding: int, dilation: int) -> "_Axis":
        """The geometry after a sliding window (conv or pool) on this axis."""
        extent = dilation * (kernel - 1) + 1
        return _Axis(
            start=self.start - padding * self.stride,
            size=self.size + (extent - 1) * self.stride,
            stride=self.stride * stride,
        )

    def union(self, other: "_Axis") -> "_Axis":
        if other.stride != self.stride:
            raise CapabilityError(
                f"branches with different strides ({self.stride} and {other.stride}) meet in one tensor",
                "receptive_field supports nets whose merged branches have the same resolution",
            )
        start = min(self.start, other.start)
        end = max(self.start + self.size, other.start + other.size)
        return _Axis(start, end - start, self.stride)


_Geometry = tuple  # (_Axis rows, _Axis columns)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_MAX_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


def _sliding(func_name: str, args: tuple, kwargs: dict) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding, dilation) pairs of a 2-D sliding-window op, else None."""
    if func_name == "conv2d":
        b = _bind(args, kwargs, _CONV_ARGS, {"stride": 1, "padding": 0, "dilation": 1})
        kernel = tuple(b["weight"].shape[-2:])
        dilation = _pair(b["dilation"])
        padding = b["padding"]
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            else:  # "same": PyTorch pads (extent - 1) // 2 on the top/left side
                padding = tuple((dilation[a] * (kernel[a] - 1)) // 2 for a in range(2))
        return (kernel, _pair(b["stride"]), _pair(padding), dilation)
    if func_name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices"):
        b = _bind(args, kwargs, _MAX_POOL_ARGS, {"stride": None, "padding": 0, "dilation": 1})
        kernel = _pair(b["kernel_size"])
        stride = kernel if b["stride"] in (None, (), []) else _pair(b["stride"])
        return (kernel, stride, _pair(b["padding"]), _pair(b["dilation"]))
    if func_name == "avg_pool2d":
        b = _bind(args, kwargs, _AVG_POOL_ARGS, {"stride": None, "padding": 0})
        kernel = _pair(b["kernel_size"])
        stride = kernel if b["stride"] in (None, (), []) else _pair(b["stride"])
        return (kernel, stride, _pair(b["padding"]), (1, 1))
    return None


def _tensors(value: Any):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _make_tracer():
    from torch.overrides import TorchFunctionMode

    class _GeometryTracer(TorchFunctionMode):
        """Attaches a geometry to every 4-D tensor computed from the probe input."""

        def __init__(self) -> None:
            super().__init__()
            self.geometry: dict[int, _Geometry] = {}
            self._alive: list[Any] = []  # keep tensors alive so ids stay unique

        def set(self, tensor, geometry: _Geometry) -> None:
            self.geometry[id(tensor)] = geometry
            self._alive.append(tensor)

        def get(self, tensor) -> _Geometry | None:
            return self.geometry.get(id(tensor))

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            result = func(*args, **kwargs)
            name = getattr(func, "__name__", "")
            sources = [t for t in _tensors((args, kwargs)) if self.get(t) is not None]
            if not sources:
                return result
            outputs = [t for t in _tensors(result) if t.ndim == 4]
            if not outputs:
                return result
            first = sources[0]
            geometry = self.get(first)
            window = _sliding(name, args, kwargs)
            if window is not None:
                kernel, stride, padding, dilation = window
                new = tuple(geometry[a].then(kernel[a], stride[a], padding[a], dilation[a]) for a in range(2))
                for out in outputs:
                    self.set(out, new)
                return result
            if name in ("pad", "_pad"):
                pads = list(args[1] if len(args) > 1 else kwargs["pad"]) + [0, 0, 0, 0]
                left, top = int(pads[0]), int(pads[2])
                new = (
                    _Axis(geometry[0].start - top * geometry[0].stride, geometry[0].size, geometry[0].stride),
                    _Axis(geometry[1].start - left * geometry[1].stride, geometry[1].size, geometry[1].stride),
                )
                for out in outputs:
                    self.set(out, new)
                return result
            # Shape-preserving ops (activations, norms, sums, concatenations):
            # the output's windows are the union of its same-resolution inputs'.
            for out in outputs:
                same = [self.get(t) for t in sources if t.ndim == 4 and t.shape[-2:] == out.shape[-2:]]
                if not same:
                    continue  # resampled (interpolate, adaptive pool): unknown, leave unset
                merged = same[0]
                for other in same[1:]:
                    merged = (merged[0].union(other[0]), merged[1].union(other[1]))
                if id(out) in self.geometry and out is not first:
                    previous = self.geometry[id(out)]
                    merged = (merged[0].union(previous[0]), merged[1].union(previous[1]))
                self.set(out, merged)
            return result

    return _GeometryTracer()


def receptive_field(module: nn.Module, layer: str, input_size: tuple[int, int, int]) -> ReceptiveField:
    """The receptive field of ``layer``'s output positions.

    Args:
        module: the network; its training flags are restored afterwards.
        layer: dotted module name (``named_modules()``) whose output is [N, C, h, w].
        input_size: (C, H, W) of the network's input.

    Raises:
        UsageError: unknown layer or an output that is not 4-D.
        CapabilityError: the layer's output cannot be traced back to input
            positions (e.g. it follows an interpolation or adaptive pooling).
    """
    import torch

    from interpret_core.nn.hooks import HookHandles, resolve_layer

    target = resolve_layer(module, layer)
    channels, height, width = (int(v) for v in input_size)
    captured: dict[str, Any] = {}

    def hook(_module, _inputs, output):
        captured.setdefault("output", output)
        if "geometry" not in captured and isinstance(output, torch.Tensor):
            captured["geometry"] = tracer.get(output)

    modes = {m: m.training for m in module.modules()}
    tracer = _make_tracer()
    with HookHandles(target.register_forward_hook(hook)):
        try:
            module.eval()
            parameter = next(module.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
            probe = torch.zeros(1, channels, height, width, device=device, dtype=dtype)
            with torch.no_grad(), tracer:
                tracer.set(probe, (_Axis(0, 1, 1), _Axis(0, 1, 1)))
                module(probe)
        finally:
            for m, training in modes.items():
                m.train(training)

    output = captured.get("output")
    if output is None:
        raise UsageError(f"layer {layer!r} was not called in the forward pass", "pick a layer on the forward path")
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise UsageError(
            f"layer {layer!r} outputs {shape}, not a feature map [N, C, h, w]",
            "pick a convolutional layer (see the model's `layers`)",
        )
    geometry = captured.get("geometry")
    if geometry is None:
        raise CapabilityError(
            f"cannot trace the receptive field of layer {layer!r} of {type(module).__name__}",
            "receptive fields are defined for conv / pool / padding / elementwise paths; "
            "interpolation or adaptive pooling before the layer breaks the mapping",
        )
    rows, cols = geometry
    return ReceptiveField(
        size=(rows.size, cols.size),
        stride=(rows.stride, cols.stride),
        offset=(rows.start + (rows.size - 1) / 2, cols.start + (cols.size - 1) / 2),
        output_shape=(int(output.shape[-2]), int(output.shape[-1])),
        input_shape=(height, width),
        start=(rows.start, cols.start),
    )
