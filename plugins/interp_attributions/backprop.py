"""Deconvnet (Zeiler & Fergus 2014) and guided backprop (Springenberg et al. 2015).

Plugins ``deconv`` and ``guided-backprop``. Both give class-level maps
(:meth:`attribute`, the rule-modified gradient of the target logit) and unit
projections (:meth:`attribute_units`, each unit's maximal activation projected
back to pixel space, batched over units and cropped to receptive fields).
The torch code lives in :mod:`._rectifier`, imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import UsageError
from interpret_core.api.interfaces import Attribution

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["Deconvolution", "GuidedBackprop"]


class _RectifierMethod(Attribution):
    """Shared options of the two ReLU-rule methods.

    Options:
        max_batch: (image, unit) pairs per forward/backward pass of a unit
            projection on receptive-field crops, images per forward pass on
            whole images (default: sized from ``max_memory_mb``).
        max_memory_mb: memory budget for one such pass (default 256).
        crop: crop each projection's input to its receptive field (default
            True; the numbers are the same, early layers get much cheaper).
        scale: ``"one"`` backpropagates 1 from the unit's argmax, as Captum's
            neuron methods do; ``"activation"`` backpropagates the activation
            itself, as the original deconvnet does. Maps differ only by a
            positive factor per (image, unit) when the activation is positive.
        check: probe the model for rectifications the rule cannot see
            (``F.relu`` in ``forward``) and refuse it (default True).
    """

    supports_units: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    multiplies_by_inputs: ClassVar[bool] = False
    rule: ClassVar[str]

    def __init__(
        self,
        max_batch: int | None = None,
        max_memory_mb: float = 256.0,
        crop: bool = True,
        scale: str = "one",
        check: bool = True,
        **options: Any,
    ):
        super().__init__(**options)
        from interpret_core.registry.options import parse_value

        # Options may arrive as strings from the command line (-o crop=false).
        max_batch, max_memory_mb, crop, scale, check = (
            parse_value(v) if isinstance(v, str) else v for v in (max_batch, max_memory_mb, crop, scale, check)
        )
        if not isinstance(crop, bool) or not isinstance(check, bool):
            raise UsageError(f"{self.name}: crop and check take true or false", "e.g. --method-option crop=false")
        if max_batch is not None and int(max_batch) < 1:
            raise UsageError(f"{self.name}: max_batch must be >= 1, got {max_batch}", "use e.g. max_batch=256")
        if float(max_memory_mb) <= 0:
            raise UsageError(f"{self.name}: max_memory_mb must be positive", "use e.g. max_memory_mb=512")
        if scale not in ("one", "activation"):
            raise UsageError(f"{self.name}: scale must be 'one' or 'activation', got {scale!r}", None)
        self.max_batch = None if max_batch is None else int(max_batch)
        self.max_memory_mb = float(max_memory_mb)
        self.crop = bool(crop)
        self.scale = scale
        self.check = bool(check)

    def _check(self, module: nn.Module, inputs: torch.Tensor) -> None:
        from ._rectifier import check_rectifiers

        if module.training:
            import warnings

            warnings.warn(
                f"{self.name}: {type(module).__name__} is in training mode (dropout and batch statistics make "
                "the maps random); call .eval() first",
                stacklevel=3,
            )
        if self.check and inputs.shape[0] > 0:
            check_rectifiers(module, inputs[:1].detach(), self.name)

    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        """The rule-modified gradient of the target logit w.r.t. the inputs: [N, C, H, W]."""
        from ._rectifier import attribute_class

        self._check(module, inputs)
        return attribute_class(module, inputs, target, self.rule)

    def attribute_units(
        self, module: nn.Module, inputs: torch.Tensor, layer: str, units: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Project each unit's maximal activation (its argmax position) to the input.

        Args:
            inputs: float32 [N, C, H, W].
            layer: dotted module name; its (first) output must be [N, K, h, w].
            units: channel indices of ``layer`` (None: all K).

        Returns:
            [N, U, C, H, W]; entry (n, u) is the projection of unit ``units[u]``
            at its maximum over image n.
        """
        from ._rectifier import project_units

        self._check(module, inputs)
        return project_units(
            module,
            inputs,
            layer,
            units,
            self.rule,
            max_batch=self.max_batch,
            max_memory_mb=self.max_memory_mb,
            crop=self.crop,
            scale=self.scale,
        )


    def attribute_unit_pairs(
        self,
        module: nn.Module,
        inputs: torch.Tensor,
        layer: str,
        images: Sequence[int],
        units: Sequence[int],
        starts: tuple[Any, Any, Any] | None = None,
    ) -> torch.Tensor:
        """[P, C, H, W]: unit ``units[p]`` projected from its maximum over ``inputs[images[p]]``.

        The same maps as :meth:`attribute_units` one pair at a time, with all
        pairs of the call in a few batched receptive-field crops; with
        ``starts`` (a unit scan's argmax cells and maxima, [P] each) no image
        goes through the network whole.
        """
        from ._rectifier import project_unit_pairs

        self._check(module, inputs)
        return project_unit_pairs(
            module,
            inputs,
            layer,
            images,
            units,
            self.rule,
            starts=starts,
            max_batch=self.max_batch,
            max_memory_mb=self.max_memory_mb,
            crop=self.crop,
            scale=self.scale,
        )


class Deconvolution(_RectifierMethod):
    """Zeiler & Fergus deconvnet: the backward signal is rectified at every ReLU."""

    name = "deconv"
    description = "Zeiler-Fergus deconvnet: unit projections (batched, receptive-field crops) and class maps"
    rule = "deconv"


class GuidedBackprop(_RectifierMethod):
    """Springenberg et al. guided backprop: gradient masked by forward and backward positivity."""

    name = "guided-backprop"
    description = "Guided backprop: unit projections (batched, receptive-field crops) and class maps"
    rule = "guided"
