"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) through Zennit.

Zennit (Anders et al. 2021, LGPL-3.0) is a dependency, installed with the
``lrp`` extra (``pip install "interp[lrp]"``); nothing of it is copied here.
Its package imports torchvision, which needs the torch build it was made for,
so Zennit is imported only when a map is computed: without it every method
here raises a :class:`CapabilityError` naming the extra, and ``interp bench``
skips the method with that message.

================ ======================================================= =================
plugin           rules (Zennit composite)                                 options
================ ======================================================= =================
lrp-epsilon      epsilon everywhere (LayerMapComposite)                   epsilon=1e-6
lrp-alpha-beta   alpha-beta on convolutions, epsilon on dense layers     alpha=2, beta=1,
                 (``EpsilonAlpha2Beta1`` for the defaults)                epsilon=1e-6
lrp-epsilon-     flat on the first layer, z+ on the other convolutions,  epsilon=1e-6
plus-flat        epsilon on dense layers (``EpsilonPlusFlat``)
================ ======================================================= =================

What every composite here adds to Zennit's own layer map:

* **Batch norm** is merged into the convolution or linear layer before it
  (Zennit's ``SequentialMergeBatchNorm`` canonizer), so the rules see one
  affine layer, as LRP assumes.
* **Residual additions** of basic blocks (modules with ``conv1``, ``bn1``,
  ``relu1``, ``conv2``, ``bn2``, ``shortcut``, ``relu2``, as ``fer-resnet``'s)
  are rewritten for the duration as a ``zennit.layer.Sum`` of the two
  branches, which the composites split in proportion to each branch's
  contribution (the Norm rule) instead of giving each branch the whole
  relevance (the gradient of ``+``).
* **Parameter-free custom modules that keep their input's shape** (``fer-cnn``'s
  ``Standardise``, per-image zero mean and unit std) pass relevance through
  unchanged (Zennit's ``Pass`` rule): they rescale the image, they do not mix
  evidence between pixels, and their gradient would smear relevance over
  the whole image.

The relevance that enters at the output is the explained logit's value
(zero for the other classes), so a map sums to about f_c(x) minus what the
biases and the epsilon stabiliser absorb. Maps are signed.

Units (``attribute_units``): the relevance of one unit, entered at each
image's maximal position of that unit's map with the activation's value, and
propagated to the pixels with the same rules: the LRP counterpart of the
``deconv`` plugin's projections.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.api.interfaces import Attribution

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["LRPEpsilon", "LRPAlphaBeta", "LRPEpsilonPlusFlat", "import_zennit"]

#: Attributes that make a module a basic residual block for the Sum canonizer.
BASIC_BLOCK_PARTS = ("conv1", "bn1", "relu1", "conv2", "bn2", "shortcut", "relu2")


def import_zennit() -> Any:
    """The ``zennit`` package, or a CapabilityError that says how to get it."""
    try:
        import zennit.attribution
        import zennit.canonizers
        import zennit.composites
        import zennit.layer
        import zennit.rules
        import zennit.types
    except Exception as exc:  # ImportError, or torchvision failing to load beside this torch
        raise CapabilityError(
            f"LRP needs Zennit, which could not be imported ({type(exc).__name__}: {exc})",
            "install the extra: pip install \"interp[lrp]\" (zennit 0.5.1 needs a torchvision that matches "
            "your torch, e.g. torch==2.14.1 torchvision==0.29.1; tests/run_torchvision_suite.sh builds one)",
        ) from exc
    return zennit


def _residual_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A basic block's forward with its addition as a Sum module over a stacked last axis."""
    import torch

    main = block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x)))))
    return block.relu2(block.lrp_sum(torch.stack([main, block.shortcut(x)], dim=-1)))


def _residual_canonizer(zennit: Any) -> Any:
    def attributes(_name: str, module: nn.Module) -> dict[str, Any] | None:
        if not all(hasattr(module, part) for part in BASIC_BLOCK_PARTS):
            return None
        return {"forward": types.MethodType(_residual_forward, module), "lrp_sum": zennit.layer.Sum(dim=-1)}

    return zennit.canonizers.AttributeCanonizer(attributes)


def pass_through_types(module: nn.Module, inputs: torch.Tensor) -> tuple[type, ...]:
    """Classes of the parameter-free, shape-keeping custom leaf modules of ``module`` (relevance passes them).

    "Custom": defined outside ``torch``; found with one probe forward pass on
    the first input, whose hooks compare each candidate's input and output shapes.
    """
    import torch

    from interpret_core.nn.hooks import forward_hooks

    candidates = {
        name: sub for name, sub in module.named_modules()
        if sub is not module and not any(True for _ in sub.children()) and not any(True for _ in sub.parameters())
        and not type(sub).__module__.startswith("torch.")
    }
    keeps_shape: dict[type, bool] = {}

    def hook(sub, args, output):
        same = bool(args) and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor) \
            and args[0].shape == output.shape
        keeps_shape[type(sub)] = keeps_shape.get(type(sub), True) and same

    with torch.no_grad(), forward_hooks(module, {name: hook for name in candidates}):
        module(inputs[:1])
    return tuple(sorted((cls for cls, ok in keeps_shape.items() if ok), key=lambda c: c.__qualname__))


class _LRP(Attribution):
    """Shared machinery: a composite per call, relevance entered at the target logit."""

    signed: ClassVar[bool] = True
    supports_units: ClassVar[bool] = True
    #: LRP conserves relevance: the map sums to the target logit, less what biases and
    #: stabilisers absorb (the ``completeness`` metric measures how much, from a zero reference).
    claims_completeness: ClassVar[bool] = True

    def completeness_baseline(self, inputs: torch.Tensor) -> None:
        """No reference input: relevance should sum to f_c(x) itself."""
        return None

    def __init__(self, epsilon: float = 1e-6, **unknown: Any):
        super().__init__(**unknown)
        self.epsilon = self._positive("epsilon", epsilon)

    def _positive(self, option: str, value: Any, minimum: float = 0.0, strict: bool = True) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not (number > minimum if strict else number >= minimum):
            relation = ">" if strict else ">="
            raise UsageError(f"attribution {self.name!r}: {option} must be a number {relation} {minimum}, got {value!r}",
                             "see docs/methods.md (LRP)")
        return number

    def rules(self, zennit: Any) -> list[tuple[Any, Any]]:
        """The composite's layer map after the shared entries (Convolution / Linear rules)."""
        raise NotImplementedError

    def first_rules(self, zennit: Any) -> list[tuple[Any, Any]] | None:
        """Rules for the first linear layer, or None (no special first layer)."""
        return None

    def composite(self, module: nn.Module, inputs: torch.Tensor) -> Any:
        """The Zennit composite for ``module`` (canonizers and pass-through types included)."""
        zennit = import_zennit()
        passing = pass_through_types(module, inputs)
        layer_map = ([(passing, zennit.rules.Pass())] if passing else []) + zennit.composites.layer_map_base(self.epsilon)
        layer_map += self.rules(zennit)
        canonizers = [zennit.canonizers.SequentialMergeBatchNorm(), _residual_canonizer(zennit)]
        first = self.first_rules(zennit)
        if first is None:
            return zennit.composites.LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
        return zennit.composites.SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first,
                                                               canonizers=canonizers)

    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        import torch

        inputs = inputs.detach().float()
        targets = torch.as_tensor(target, device=inputs.device).to(torch.int64).reshape(-1)
        if targets.numel() == 1:
            targets = targets.expand(inputs.shape[0])
        composite = self.composite(module, inputs)
        with composite.context(module) as modified, torch.enable_grad():
            x = inputs.clone().requires_grad_(True)
            logits = modified(x)
            entered = torch.zeros_like(logits)
            entered.scatter_(1, targets.view(-1, 1), logits.gather(1, targets.view(-1, 1)).detach())
            (relevance,) = torch.autograd.grad(logits, x, grad_outputs=entered)
        return relevance.detach()

    def attribute_units(
        self, module: nn.Module, inputs: torch.Tensor, layer: str, units: Sequence[int] | None = None
    ) -> torch.Tensor:
        import torch

        from interpret_core.nn.hooks import capture_outputs

        inputs = inputs.detach().float()
        composite = self.composite(module, inputs)
        maps = []
        with composite.context(module) as modified, torch.enable_grad():
            x = inputs.clone().requires_grad_(True)
            with capture_outputs(modified, [layer], detach=False) as captured:
                modified(x)
            activation = captured[layer]
            if activation.ndim != 4:
                raise UsageError(f"layer {layer!r} outputs {tuple(activation.shape)}, not a feature map [N, C, h, w]",
                                 "pick a convolutional layer (see the model's `layers`)")
            unit_list = list(range(activation.shape[1])) if units is None else [int(u) for u in units]
            flat = activation.detach().flatten(2)  # [N, C, h*w]
            for position, unit in enumerate(unit_list):
                peak = flat[:, unit].argmax(dim=1)
                entered = torch.zeros_like(flat)
                entered[torch.arange(flat.shape[0]), unit, peak] = flat[torch.arange(flat.shape[0]), unit, peak]
                (relevance,) = torch.autograd.grad(activation, x, grad_outputs=entered.view_as(activation),
                                                   retain_graph=position < len(unit_list) - 1)
                maps.append(relevance.detach())
        if not maps:
            return torch.zeros((inputs.shape[0], 0, *inputs.shape[1:]), dtype=inputs.dtype)
        return torch.stack(maps, dim=1)


class LRPEpsilon(_LRP):
    """LRP-epsilon on every convolution and dense layer (Bach et al. 2015)."""

    name = "lrp-epsilon"
    description = "LRP, epsilon rule everywhere (Zennit; batch norm merged; needs the 'lrp' extra)"

    def rules(self, zennit):
        return [(zennit.types.Linear, zennit.rules.Epsilon(epsilon=self.epsilon))]


class LRPAlphaBeta(_LRP):
    """LRP-alpha-beta on convolutions, epsilon on dense layers (Bach et al. 2015; alpha - beta = 1)."""

    name = "lrp-alpha-beta"
    description = "LRP, alpha-beta rule on convolutions (alpha=2, beta=1), epsilon on dense layers (Zennit; 'lrp' extra)"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, epsilon: float = 1e-6, **unknown: Any):
        super().__init__(epsilon=epsilon, **unknown)
        self.alpha = self._positive("alpha", alpha, 1.0, strict=False)
        self.beta = self._positive("beta", beta, 0.0, strict=False)
        if abs(self.alpha - self.beta - 1.0) > 1e-9:
            raise UsageError(f"attribution {self.name!r}: alpha - beta must be 1 (relevance is conserved), "
                             f"got alpha={self.alpha}, beta={self.beta}", "e.g. alpha=2,beta=1 or alpha=1,beta=0")

    def rules(self, zennit):
        return [
            (zennit.types.Convolution, zennit.rules.AlphaBeta(alpha=self.alpha, beta=self.beta, stabilizer=self.epsilon)),
            (torch_linear(), zennit.rules.Epsilon(epsilon=self.epsilon)),
        ]


class LRPEpsilonPlusFlat(_LRP):
    """Zennit's EpsilonPlusFlat: flat first layer, z+ convolutions, epsilon dense layers (Montavon et al. 2019)."""

    name = "lrp-epsilon-plus-flat"
    description = "LRP, flat first layer, z+ on convolutions, epsilon on dense layers (Zennit EpsilonPlusFlat; 'lrp' extra)"

    def rules(self, zennit):
        return [
            (zennit.types.Convolution, zennit.rules.ZPlus(stabilizer=self.epsilon)),
            (torch_linear(), zennit.rules.Epsilon(epsilon=self.epsilon)),
        ]

    def first_rules(self, zennit):
        return [(zennit.types.Linear, zennit.rules.Flat(stabilizer=self.epsilon))]


def torch_linear() -> type:
    from torch import nn

    return nn.Linear
