"""The torch side of deconvnet and guided backprop (imported lazily).

Both methods are the gradient of a network in which every ``nn.ReLU`` passes
a modified signal backwards:

* deconvnet (Zeiler & Fergus 2014): ``relu(grad)`` -- the backward signal is
  rectified, ignoring where the forward pass was positive;
* guided backprop (Springenberg et al. 2015): ``relu(grad) * (forward > 0)``.

Max-unpooling with the forward switches and transposed convolutions are what
autograd does anyway for ``MaxPool2d`` and ``Conv2d``.

The rule is installed with :func:`rectifier_rules`, a context manager of
removable module hooks (see its docstring): for deconv the ReLU's own autograd
node is bypassed and replaced by one whose backward is ``relu(grad)``; for
guided backprop the ReLU's native backward (the forward mask) is kept and a
hook on its output rectifies the incoming gradient. Both are safe with
``inplace=True`` and with one ReLU module used several times.

Unit projections (:func:`project_units`: every unit on every image;
:func:`project_unit_pairs`: chosen (image, unit) pairs) batch over pairs and
crop each pair's input to the receptive field of its argmax position, aligned
to the layer's total stride so that every intermediate grid and every padded
border of the crop coincides with the full image's: the projection is the same
number, computed on a fraction of the pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.nn.hooks import HookHandles, resolve_layer

RULES = ("deconv", "guided")


# -- the rule -------------------------------------------------------------------
class _DeconvReLU(torch.autograd.Function):
    """Forward: the ReLU's own output. Backward: ``relu(grad)`` (the deconvnet rule).

    ``pre`` is the ReLU's graph-connected input; ``rectified`` carries the
    module's output, computed on a detached alias (passed in a list so autograd
    does not treat it as an input: no second ReLU pass is needed). The ReLU's
    own backward (the forward mask) never runs.
    """

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, rectified: list) -> torch.Tensor:
        out = rectified[0]
        if out is pre or out.data_ptr() == pre.data_ptr():
            # In-place ReLU: output and input share storage; return a new tensor
            # so autograd sees a fresh output, not a modified input.
            out = out.clone()
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.clamp_min(0), None


def _rectify_grad(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp_min(0)


@contextlib.contextmanager
def rectifier_rules(module: nn.Module, rule: str) -> Iterator[int]:
    """Apply ``rule`` ("deconv" or "guided") at every ``nn.ReLU`` of ``module``.

    deconv: a forward pre-hook hands the ReLU a detached alias of its input and
    keeps the graph-connected original; the forward hook returns the output
    through :class:`_DeconvReLU`, so the backward signal is rectified and the
    forward mask is skipped. guided: the ReLU keeps its own backward (the
    forward mask); a hook on its output tensor rectifies the incoming
    gradient first (``relu(g) * mask == relu(g * mask)``). Both are safe with
    in-place and reused ReLUs.

    Yields the number of ReLU modules hooked. Every module hook is removed on
    exit, also when the body raises (tensor hooks die with the graph).
    """
    if rule not in RULES:
        raise UsageError(f"unknown rectifier rule {rule!r}", f"use one of {', '.join(RULES)}")
    pending: dict[int, list[torch.Tensor]] = {}

    def pre_hook(relu: nn.Module, args: tuple) -> tuple:
        (x, *rest) = args
        pending.setdefault(id(relu), []).append(x)
        return (x.detach(), *rest)

    def deconv_hook(relu: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
        x = pending[id(relu)].pop()
        return _DeconvReLU.apply(x, [output])

    def guided_hook(relu: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(_rectify_grad)

    with HookHandles() as handles:
        count = 0
        for sub in module.modules():
            if isinstance(sub, nn.ReLU):
                if rule == "deconv":
                    handles.add(sub.register_forward_pre_hook(pre_hook))
                    handles.add(sub.register_forward_hook(deconv_hook))
                else:
                    handles.add(sub.register_forward_hook(guided_hook))
                count += 1
        try:
            yield count
        finally:
            pending.clear()


# -- detecting rectifications the rule cannot see ---------------------------------
_RECTIFYING = {
    "relu", "relu_", "relu6", "clamp", "clamp_", "clamp_min", "clamp_min_", "clip", "clip_",
    "threshold", "threshold_", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "rrelu", "rrelu_",
}


class _RectifierSpy(TorchFunctionMode):
    """Records rectifying calls made outside any ``nn.ReLU`` module."""

    def __init__(self) -> None:
        super().__init__()
        self.inside_relu = 0
        self.stack: list[str] = []
        self.hidden: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _RECTIFYING and not self.inside_relu:
            where = self.stack[-1] if self.stack else "forward"
            key = f"{name}() in {where}.forward"
            self.hidden[key] = self.hidden.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


_CHECKED: "weakref.WeakKeyDictionary[nn.Module, set]" = weakref.WeakKeyDictionary()


def check_rectifiers(module: nn.Module, sample: torch.Tensor, method: str) -> None:
    """Raise CapabilityError if ``module`` rectifies outside ``nn.ReLU`` modules.

    Runs one forward pass of ``sample`` (one input) under a TorchFunctionMode.
    A module that passed is remembered (per submodule structure and input
    shape), so repeated calls cost nothing.
    """
    key = (tuple(id(m) for m in module.modules()), tuple(sample.shape[1:]))
    if key in _CHECKED.get(module, ()):
        return
    _probe_rectifiers(module, sample, method)
    _CHECKED.setdefault(module, set()).add(key)


def _probe_rectifiers(module: nn.Module, sample: torch.Tensor, method: str) -> None:
    relus = [m for m in module.modules() if isinstance(m, nn.ReLU)]
    model_name = type(module).__name__
    hint = (
        f"write every rectification of {model_name} as its own nn.ReLU module "
        "(not F.relu / torch.relu / clamp in forward), so the method can apply its rule there"
    )
    if not relus:
        raise CapabilityError(f"{method}: {model_name} has no nn.ReLU modules, so the method has no rule to apply", hint)
    spy = _RectifierSpy()
    names = {m: n for n, m in module.named_modules()}

    def enter(m: nn.Module, _args: Any) -> None:
        name = names.get(m, "?")
        spy.stack.append(f"{type(m).__name__}" if not name else f"{name!r} ({type(m).__name__})")
        if isinstance(m, nn.ReLU):
            spy.inside_relu += 1

    def leave(m: nn.Module, _args: Any, _out: Any) -> None:
        spy.stack.pop()
        if isinstance(m, nn.ReLU):
            spy.inside_relu -= 1

    with HookHandles() as handles:
        for m in module.modules():
            handles.add(m.register_forward_pre_hook(enter))
            handles.add(m.register_forward_hook(leave))
        with torch.no_grad(), spy:
            module(sample)
    if spy.hidden:
        found = ", ".join(f"{k} (x{v})" for k, v in sorted(spy.hidden.items()))
        raise CapabilityError(
            f"{method}: {model_name} rectifies outside nn.ReLU modules ({found}); "
            "the method would silently treat those as linear",
            hint,
        )


# -- forward to a layer ---------------------------------------------------------
class _Stop(Exception):
    """Raised by a hook to end the forward pass once the layer has its output."""


def _run_until_stop(module: nn.Module, x: torch.Tensor, hooks: HookHandles) -> None:
    """Run ``module(x)``; a hook raising :class:`_Stop` ends it early. ``hooks`` are removed after."""
    with hooks:
        try:
            module(x)
        except _Stop:
            pass


def forward_to(module: nn.Module, x: torch.Tensor, layer: str, stop: bool = True) -> torch.Tensor:
    """Run ``module`` on ``x`` until ``layer`` has produced its output; return that output.

    With ``stop=False`` the whole forward pass runs, and a layer module that is
    called more than once (a reused module) is refused: which call is meant
    would be ambiguous.
    """
    target = resolve_layer(module, layer)
    box: dict[str, Any] = {"calls": 0}

    def hook(_m: nn.Module, _args: Any, output: Any) -> None:
        box["calls"] += 1
        if "out" not in box:
            # Keep the value: a later in-place op (ReLU(inplace=True)) would overwrite it.
            box["out"] = output if stop or not isinstance(output, torch.Tensor) else output.detach().clone()
        if stop:
            raise _Stop

    _run_until_stop(module, x, HookHandles(target.register_forward_hook(hook)))
    if box["calls"] > 1:
        raise UsageError(
            f"layer {layer!r} ({type(target).__name__}) is called {box['calls']} times in one forward pass, "
            "so its units are ambiguous",
            "pick a layer module that is used once (e.g. the conv before a shared ReLU), "
            "or give each use its own module",
        )
    if "out" not in box:
        raise UsageError(f"layer {layer!r} was not called by the forward pass", "pick a layer on the forward path")
    out = box["out"]
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(
            f"layer {layer!r} outputs {shape}, not a feature map [N, C, h, w]",
            "unit projections need a convolutional layer (see the model's `layers`)",
        )
    return out


# -- class level ------------------------------------------------------------------
def attribute_class(module: nn.Module, x: torch.Tensor, target: Any, rule: str) -> torch.Tensor:
    """Gradient of the target logits under ``rule``; [N, C, H, W] like ``x``."""
    x = _check_inputs(x)
    with torch.enable_grad(), rectifier_rules(module, rule):
        inputs = x.detach().requires_grad_(True)
        logits = module(inputs)
        if logits.ndim != 2:
            raise UsageError(f"the model returns shape {tuple(logits.shape)}, not logits [N, classes]", None)
        index = _targets(target, logits)
        selected = logits.gather(1, index[:, None]).sum()
        (grad,) = torch.autograd.grad(selected, inputs)
    return grad.detach()


def _targets(target: Any, logits: torch.Tensor) -> torch.Tensor:
    n, classes = logits.shape
    if isinstance(target, torch.Tensor):
        index = target.to(device=logits.device, dtype=torch.long).reshape(-1)
        if index.numel() == 1:
            index = index.expand(n)
    else:
        index = torch.full((n,), int(target), dtype=torch.long, device=logits.device)
    if index.numel() != n:
        raise UsageError(f"target has {index.numel()} entries for {n} inputs", "give one class per input or one int")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= classes):
        raise UsageError(f"target class out of range 0..{classes - 1}", "use a class index of the model")
    return index


def _check_inputs(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"inputs must be a tensor [N, C, H, W], got {shape}", "use Model.to_input(images)")
    return x if x.is_floating_point() else x.float()


# -- unit level -------------------------------------------------------------------
@dataclasses.dataclass
class UnitPlan:
    """How the projections of one (layer, input size) are cut into crops."""

    crop: tuple[int, int]  # crop height, width (== input size for whole images)
    stride: tuple[int, int]  # the layer's total stride
    start: tuple[int, int]  # window start of output position (0, 0)
    size: tuple[int, int]  # receptive field size
    whole: bool  # True: no cropping


def _crop_length(size: int, stride: int, extent: int) -> int:
    """Shortest crop length that covers any stride-aligned window and ends flush at ``extent``."""
    need = min(size + stride - 1, extent)
    # Crops start at multiples of the stride; the last one must end exactly at
    # the image border so its padding matches the full image's.
    length = extent - ((extent - need) // stride) * stride
    return length


_RF_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def plan_units(module: nn.Module, layer: str, input_size: tuple[int, int, int], crop: bool) -> UnitPlan:
    from interpret_core.nn.receptive_field import receptive_field

    _, height, width = input_size
    if not crop:
        return UnitPlan((height, width), (1, 1), (0, 0), (height, width), True)
    cache = _RF_CACHE.setdefault(module, {})
    key = (layer, tuple(input_size))
    if key not in cache:
        try:
            cache[key] = receptive_field(module, layer, input_size)
        except CapabilityError:
            cache[key] = None
    rf = cache[key]
    if rf is None:
        return UnitPlan((height, width), (1, 1), (0, 0), (height, width), True)
    ch = _crop_length(rf.size[0], rf.stride[0], height)
    cw = _crop_length(rf.size[1], rf.stride[1], width)
    whole = ch * cw * 2 >= height * width  # forward + backward on crops vs backward on whole images
    if whole:
        return UnitPlan((height, width), rf.stride, rf.start, rf.size, True)
    return UnitPlan((ch, cw), rf.stride, rf.start, rf.size, False)


@dataclasses.dataclass(frozen=True)
class Projection:
    """What one :func:`project_units` call projects through, and its memory budget."""

    module: nn.Module
    layer: str
    rule: str  # "deconv" or "guided"
    max_batch: int | None = None  # (image, unit) pairs or images per pass; None: from max_memory_mb
    max_memory_mb: float = 256.0


@dataclasses.dataclass(frozen=True)
class PairPeaks:
    """(image, unit) pairs to project and where each starts; all long/float [P]."""

    image: torch.Tensor  # index into the inputs
    unit: torch.Tensor  # channel of the layer
    row: torch.Tensor  # argmax row in the layer's output grid
    col: torch.Tensor  # argmax column
    value: torch.Tensor  # the activation there (each crop must reproduce it)
    weight: torch.Tensor  # what is backpropagated from the argmax (1 or the activation)


def _crop_starts(pos: torch.Tensor, start: int, size: int, stride: int, crop: int, extent: int) -> torch.Tensor:
    """Stride-aligned crop start for output positions ``pos`` along one axis."""
    window_start = (start + pos * stride).clamp_min(0)
    aligned = torch.div(window_start, stride, rounding_mode="floor") * stride
    last = ((extent - crop) // stride) * stride
    return aligned.clamp_max(last)


def _check_units(units: Sequence[int], total_units: int, layer: str) -> list[int]:
    unit_list = [int(u) for u in units]
    bad = [u for u in unit_list if not 0 <= u < total_units]
    if bad:
        raise UsageError(f"unit(s) {bad} out of range: layer {layer!r} has {total_units} units", f"use 0..{total_units - 1}")
    return unit_list


def project_units(
    module: nn.Module,
    x: torch.Tensor,
    layer: str,
    units: Sequence[int] | None,
    rule: str,
    *,
    max_batch: int | None = None,
    max_memory_mb: float = 256.0,
    crop: bool = True,
    scale: str = "one",
) -> torch.Tensor:
    """Project each unit's maximal activation back to the input: [N, U, C, H, W].

    ``scale="one"`` backpropagates 1 at the argmax (as Captum's neuron methods
    do); ``"activation"`` backpropagates the activation value itself (the
    original deconvnet). ``max_batch`` bounds how many (image, unit) pairs go
    through one forward/backward pass; without it, the batch is sized to stay
    within ``max_memory_mb``.
    """
    x = _check_inputs(x).detach()
    n, channels, height, width = x.shape
    with torch.no_grad():
        # One image through the whole net refuses a reused layer module; the
        # batch then stops at the layer.
        forward_to(module, x[:1], layer, stop=False)
        activations = forward_to(module, x, layer)
    total_units = activations.shape[1]
    unit_list = list(range(total_units)) if units is None else _check_units(units, total_units, layer)
    u_count = len(unit_list)
    result = torch.zeros(n, u_count, channels, height, width, dtype=x.dtype, device=x.device)
    if n == 0 or u_count == 0:
        return result

    unit_index = torch.tensor(unit_list, dtype=torch.long, device=x.device)
    maps = activations[:, unit_index].flatten(2)  # [N, U, h*w]
    peak, flat = maps.max(dim=2)
    map_w = activations.shape[3]
    rows, cols = torch.div(flat, map_w, rounding_mode="floor"), flat % map_w
    weights = peak if scale == "activation" else torch.ones_like(peak)
    job = Projection(module, layer, rule, max_batch, max_memory_mb)

    plan = plan_units(module, layer, (channels, height, width), crop)
    # (image, unit) pairs, image-major: pair p = image * U + unit position.
    pairs = PairPeaks(
        image=torch.arange(n, device=x.device).repeat_interleave(u_count),
        unit=unit_index.repeat(n),
        row=rows.reshape(-1),
        col=cols.reshape(-1),
        value=peak.reshape(-1),
        weight=weights.reshape(-1),
    )
    flat_result = result.view(n * u_count, channels, height, width)
    if plan.whole or not _project_crops(job, x, pairs, plan, flat_result):
        result.zero_()
        _project_whole_images(job, x, pairs, flat_result)
    return result


def project_unit_pairs(
    module: nn.Module,
    x: torch.Tensor,
    layer: str,
    images: Sequence[int],
    units: Sequence[int],
    rule: str,
    *,
    starts: tuple[Any, Any, Any] | None = None,
    max_batch: int | None = None,
    max_memory_mb: float = 256.0,
    crop: bool = True,
    scale: str = "one",
) -> torch.Tensor:
    """Project chosen (image, unit) pairs: [P, C, H, W], entry p = unit ``units[p]`` from its maximum over ``x[images[p]]``.

    Entry p equals ``project_units(module, x[images[p]][None], layer,
    [units[p]], ...)[0, 0]``, but all pairs share a few batched crop passes,
    so a sparse set of pairs costs what its size says, not one call per unit.

    Args:
        starts: (rows, cols, values), each [P]: where each unit's maximum is
            in the layer's output grid and its activation there, as a unit
            scan found them. They spare the forward pass of every image to the
            layer; each crop's activation is still checked against ``values``.
            None: the maxima are found here.
    """
    x = _check_inputs(x).detach()
    n, channels, height, width = x.shape
    image_list = [int(i) for i in images]
    count = len(image_list)
    if count != len(units):
        raise UsageError(f"{count} image indices for {len(units)} units", "give one image per unit")
    if any(not 0 <= i < n for i in image_list):
        raise UsageError(f"image indices must lie in 0..{n - 1}", "index into the inputs passed")
    result = torch.zeros(count, channels, height, width, dtype=x.dtype, device=x.device)
    if not count:
        return result
    with torch.no_grad():
        # One image through the whole net refuses a reused layer module.
        probe = forward_to(module, x[:1], layer, stop=False)
        activations = forward_to(module, x, layer) if starts is None else None
    _, total_units, map_h, map_w = probe.shape
    pair_image = torch.tensor(image_list, dtype=torch.long, device=x.device)
    pair_unit = torch.tensor(_check_units(units, total_units, layer), dtype=torch.long, device=x.device)
    if activations is not None:
        value, flat = activations[pair_image, pair_unit].flatten(1).max(dim=1)
        row, col = torch.div(flat, map_w, rounding_mode="floor"), flat % map_w
    else:
        row, col, value = (torch.as_tensor(v, device=x.device).reshape(-1) for v in starts)
        if not row.numel() == col.numel() == value.numel() == count:
            raise UsageError(f"starts must hold {count} rows, columns and values", "one per pair")
        row, col, value = row.long(), col.long(), value.to(x.dtype)
        if bool((row < 0).any() | (row >= map_h).any() | (col < 0).any() | (col >= map_w).any()):
            raise UsageError(f"starts lie outside layer {layer!r}'s {map_h}x{map_w} grid", "pass the scan's argmax cells")
    pairs = PairPeaks(pair_image, pair_unit, row, col, value, value if scale == "activation" else torch.ones_like(value))
    job = Projection(module, layer, rule, max_batch, max_memory_mb)
    plan = plan_units(module, layer, (channels, height, width), crop)
    if plan.whole or not _project_crops(job, x, pairs, plan, result):
        result.zero_()
        _project_whole_images(job, x, pairs, result)
    return result


def _project_crops(job: Projection, x: torch.Tensor, pairs: PairPeaks, plan: UnitPlan, out: torch.Tensor) -> bool:
    """Receptive-field crops of every pair, batched; fills ``out`` [P, C, H, W] in place.

    Returns False (``out`` partly filled) where the crops cannot reproduce the
    full image's activation, or the network's preprocessing cannot be cropped:
    the caller projects whole images then.
    """
    module, layer, rule = job.module, job.layer, job.rule
    _, _, height, width = x.shape
    ch, cw = plan.crop
    y0 = _crop_starts(pairs.row, plan.start[0], plan.size[0], plan.stride[0], ch, height)
    x0 = _crop_starts(pairs.col, plan.start[1], plan.size[1], plan.stride[1], cw, width)
    rel_row = pairs.row - torch.div(y0, plan.stride[0], rounding_mode="floor")
    rel_col = pairs.col - torch.div(x0, plan.stride[1], rounding_mode="floor")
    expected = pairs.value

    # Where the network preprocesses the whole image before its first
    # convolution (e.g. per-image standardisation), crop the first conv's input
    # instead, and backpropagate through the preprocessing on whole images.
    entry, prefix = _entry_conv(module, x[:1])
    if prefix and entry is None:
        return False
    source = x
    if prefix:
        with torch.no_grad():
            source = _entry_input(module, entry, x)

    batch = job.max_batch or _batch_for_memory(
        module, x[:1, :, :ch, :cw], layer, job.max_memory_mb,
        # The preprocessing backward runs on one whole image per pair.
        extra_bytes=x[:1].numel() * x.element_size() * 8 if prefix else 0,
    )
    offsets_h = torch.arange(ch, device=x.device)
    offsets_w = torch.arange(cw, device=x.device)
    for begin in range(0, pairs.image.numel(), batch):
        part = slice(begin, begin + batch)
        b = pairs.image[part].numel()
        row_idx = (y0[part, None] + offsets_h)[:, :, None]  # [b, ch, 1]
        col_idx = (x0[part, None] + offsets_w)[:, None, :]  # [b, 1, cw]
        image_idx = pairs.image[part, None, None]
        crops = source[image_idx, :, row_idx, col_idx].permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        with torch.enable_grad(), rectifier_rules(module, rule):
            if prefix:
                # The net runs on image crops, but its first conv sees the crops
                # of the preprocessed image.
                dummy = x[image_idx, :, row_idx, col_idx].permute(0, 3, 1, 2).contiguous()
                with _replace_input(entry, crops):
                    output = forward_to(module, dummy, layer)
            else:
                output = forward_to(module, crops, layer)
            picked = output[torch.arange(b, device=x.device), pairs.unit[part], rel_row[part], rel_col[part]]
            # The crop must reproduce the full image's activation exactly; a
            # network with other non-local operations (global normalisation
            # after a conv, train-mode batch norm) would not: fall back then.
            exact = torch.allclose(
                picked.detach(), expected[part], rtol=1e-4, atol=1e-5 * (1 + float(expected[part].abs().max()))
            )
            if not exact:
                return False
            (grad,) = torch.autograd.grad(picked, crops, grad_outputs=pairs.weight[part].to(picked.dtype))
            if prefix:
                grad_source = source.new_zeros((b, *source.shape[1:]))
                grad_source[torch.arange(b, device=x.device)[:, None, None], :, row_idx, col_idx] = grad.permute(0, 2, 3, 1)
                images = x[pairs.image[part]].requires_grad_(True)  # indexing copies already
                (grad_images,) = torch.autograd.grad(_entry_input(module, entry, images), images, grad_source)
        pair = torch.arange(begin, begin + b, device=x.device)
        if prefix:
            out[pair] = grad_images
        else:
            out[pair[:, None, None], :, row_idx, col_idx] = grad.permute(0, 2, 3, 1)
    return True


_ENTRY_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _entry_conv(module: nn.Module, sample: torch.Tensor) -> tuple[nn.Module | None, bool]:
    """(first nn.Conv2d called, whether its input differs from the network input).

    The entry is None (with True) when the first conv's input cannot stand in
    for the image: another spatial size, or no conv at all.
    """
    cache = _ENTRY_CACHE.setdefault(module, {})
    key = tuple(sample.shape[1:])
    if key in cache:
        return cache[key]
    box: dict[str, Any] = {}

    def pre_hook(conv: nn.Module, args: tuple) -> None:
        box["conv"], box["input"] = conv, args[0]
        raise _Stop

    hooks = HookHandles(*(m.register_forward_pre_hook(pre_hook) for m in module.modules() if isinstance(m, nn.Conv2d)))
    with torch.no_grad():
        _run_until_stop(module, sample, hooks)
    if "conv" not in box:
        found: tuple[nn.Module | None, bool] = (None, True)
    elif box["input"] is sample:
        found = (box["conv"], False)
    elif isinstance(box["input"], torch.Tensor) and box["input"].shape[-2:] == sample.shape[-2:]:
        found = (box["conv"], True)
    else:
        found = (None, True)
    cache[key] = found
    return found


def _entry_input(module: nn.Module, entry: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``entry`` (the first conv) receives when the network runs on ``x``."""
    box: dict[str, torch.Tensor] = {}

    def pre_hook(_conv: nn.Module, args: tuple) -> None:
        box["input"] = args[0]
        raise _Stop

    _run_until_stop(module, x, HookHandles(entry.register_forward_pre_hook(pre_hook)))
    return box["input"]


@contextlib.contextmanager
def _replace_input(entry: nn.Module, replacement: torch.Tensor) -> Iterator[None]:
    """Feed ``replacement`` to the first call of ``entry`` instead of its input."""
    used = [False]

    def pre_hook(_conv: nn.Module, args: tuple) -> tuple | None:
        if used[0]:
            return None
        used[0] = True
        return (replacement, *args[1:])

    with HookHandles(entry.register_forward_pre_hook(pre_hook)):
        yield


def _project_whole_images(job: Projection, x: torch.Tensor, pairs: PairPeaks, result: torch.Tensor) -> None:
    """Whole images: one forward pass per image, one backward per pair (graph retained); fills ``result`` [P, C, H, W].

    The pairs of an image share its forward pass: a chunk of images goes
    forward once, then round j backpropagates every chunk image's j-th pair
    in one backward pass. Each batch element is its own computation (the
    model is in eval mode), so an image without a j-th pair only carries a
    zero signal, and pair p is the projection of its unit on its image
    alone. Images with the most pairs come first, so a chunk's rounds are
    nearly full. On a deep layer whose receptive field covers the image (no
    crop to gain from), this is a forward pass per image rather than per
    pair: the backward passes are what is left.
    """
    per_image = _activation_bytes(job.module, x[:1], job.layer)
    chunk = job.max_batch or max(1, int(job.max_memory_mb * 2**20 // max(per_image * 3, 1)))
    members: dict[int, list[int]] = {}  # image -> its pairs, in pair order
    for p, image in enumerate(pairs.image.tolist()):
        members.setdefault(image, []).append(p)
    order = sorted(members, key=lambda image: (-len(members[image]), image))
    for begin in range(0, len(order), chunk):
        images = order[begin : begin + chunk]
        xs = x[images].detach().clone().requires_grad_(True)
        rounds = len(members[images[0]])
        with torch.enable_grad(), rectifier_rules(job.module, job.rule):
            out = forward_to(job.module, xs, job.layer)
            for j in range(rounds):
                active = sum(1 for image in images if len(members[image]) > j)  # a prefix: counts descend
                pair = torch.tensor([members[image][j] for image in images[:active]], dtype=torch.long, device=x.device)
                picked = out[torch.arange(active, device=x.device), pairs.unit[pair], pairs.row[pair], pairs.col[pair]]
                (grad,) = torch.autograd.grad(
                    picked, xs, grad_outputs=pairs.weight[pair].to(picked.dtype), retain_graph=j + 1 < rounds
                )
                result[pair] = grad[:active]


def _activation_bytes(module: nn.Module, x: torch.Tensor, layer: str) -> int:
    """Bytes of all module outputs of one forward pass of ``x`` up to ``layer``."""
    total = [0]

    def hook(_m: nn.Module, _a: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()

    with HookHandles() as handles:
        for m in module.modules():
            if not list(m.children()):
                handles.add(m.register_forward_hook(hook))
        with torch.no_grad():
            forward_to(module, x, layer)
    return max(total[0], x.numel() * x.element_size())


def _batch_for_memory(module: nn.Module, one: torch.Tensor, layer: str, max_memory_mb: float, extra_bytes: int = 0) -> int:
    # Forward activations, their saved copies and the backward signal: ~3x.
    per_item = _activation_bytes(module, one, layer) * 3 + extra_bytes
    return max(1, int(max_memory_mb * 2**20 // per_item))


__all__ = [
    "RULES",
    "attribute_class",
    "check_rectifiers",
    "forward_to",
    "plan_units",
    "project_unit_pairs",
    "project_units",
    "rectifier_rules",
]
