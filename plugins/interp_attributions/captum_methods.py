"""Captum baselines as plugins, and a generic adapter for any ``captum.attr`` class.

Named plugins (defaults chosen for 64-96 px grey faces; options override):

================== ============================================ ==================================
plugin             Captum class                                 defaults
================== ============================================ ==================================
saliency           Saliency                                     abs=True
integrated-gradients IntegratedGradients                        steps=32, baseline=blur
input-x-gradient   InputXGradient
deeplift           DeepLift                                     baseline=blur
occlusion          Occlusion                                    window=8, stride=4, baseline=mean
grad-cam           LayerGradCam at the last spatial block       relu=True, interpolate_mode=bilinear
guided-grad-cam    GuidedGradCam at the last spatial block      interpolate_mode=bilinear
captum             any class: ``algorithm="NoiseTunnel(Saliency)"``
================== ============================================ ==================================

Baselines (``baseline=``): ``blur`` (each input blurred by a Gaussian of sigma
= size/16, which removes facial detail but keeps the face's brightness),
``mean`` (each input's mean grey), ``zero`` (black), or a number (a flat grey).

Option aliases: ``steps`` -> ``n_steps``, ``baseline`` -> ``baselines``,
``window`` -> ``sliding_window_shapes`` (an int or ``HxW``; channels added),
``stride`` -> ``strides``, ``samples`` -> ``n_samples``, ``relu`` ->
``relu_attributions``. Any other option of the Captum class's constructor or
``attribute`` is passed through; noise tunnels take ``nt_type``,
``nt_samples``, ``nt_samples_batch_size``, ``stdevs`` and
``draw_baseline_from_distrib``.

Layer methods (``Layer*``, Grad-CAM) default to the output of the network's
last spatial block after its rectifier
(:func:`interpret_core.nn.blocks.last_spatial_block`; ``conv3`` on fer-cnn,
never the pre-ReLU or a 1x1 classifier convolution); ``layer=`` overrides.
They return a map per layer unit; it is summed over
channels and upsampled bilinearly to the input. Neuron methods (``Neuron*``)
give unit projections through :meth:`attribute_units` (the neuron is each
unit's argmax, as in the ``deconv`` plugin).

No torch or captum at import time.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import CapabilityError, InterpError, UsageError
from interpret_core.api.interfaces import Attribution
from interpret_core.registry.options import parse_value

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = [
    "CaptumMethod",
    "CaptumAdapter",
    "Saliency",
    "IntegratedGradients",
    "InputXGradient",
    "DeepLift",
    "Occlusion",
    "GradCam",
    "GuidedGradCam",
    "default_layer",
    "baseline_tensor",
]

ALIASES = {
    "steps": "n_steps",
    "baseline": "baselines",
    "window": "sliding_window_shapes",
    "stride": "strides",
    "samples": "n_samples",
    "relu": "relu_attributions",
}
NOISE_TUNNEL_OPTIONS = ("nt_type", "nt_samples", "nt_samples_batch_size", "stdevs", "draw_baseline_from_distrib")
NOISE_TUNNEL_DEFAULTS = {"nt_type": "smoothgrad", "nt_samples": 10, "stdevs": 0.1}
# Face defaults the generic adapter applies where the Captum class takes the option.
GENERIC_DEFAULTS: dict[str, Any] = {
    "n_steps": 32,
    "baselines": "blur",
    "sliding_window_shapes": 8,
    "strides": 4,
    "perturbations_per_eval": 16,
    "internal_batch_size": 256,
    "feature_mask": "patches",
}
_EXPRESSION = re.compile(r"^\s*(?:(NoiseTunnel)\s*\(\s*([A-Za-z_]\w*)\s*\)|([A-Za-z_]\w*))\s*$")


def default_layer(module: nn.Module, inputs: torch.Tensor) -> str:
    """Dotted name of the output of ``module``'s last spatial block after its rectifier, for ``inputs``' size."""
    from interpret_core.nn.blocks import last_spatial_block

    return last_spatial_block(module, tuple(int(v) for v in inputs.shape[1:])).layer


def _blur(inputs: torch.Tensor) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    n, c, h, w = inputs.shape
    sigma = max(h, w) / 16.0
    radius = max(1, min(int(3 * sigma), min(h, w) // 2 - 1))
    t = torch.arange(-radius, radius + 1, dtype=inputs.dtype, device=inputs.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    flat = inputs.reshape(n * c, 1, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def baseline_tensor(kind: Any, inputs: torch.Tensor) -> Any:
    """Resolve a baseline option (``blur``/``mean``/``zero``/number/tensor) for ``inputs``."""
    import torch

    if isinstance(kind, torch.Tensor) or kind is None:
        return kind
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return torch.full_like(inputs, float(kind))
    if kind in ("zero", "zeros", "black"):
        return torch.zeros_like(inputs)
    if kind in ("mean", "grey", "gray"):
        return inputs.mean(dim=(1, 2, 3), keepdim=True).expand_as(inputs).contiguous()
    if kind == "blur":
        return _blur(inputs)
    raise UsageError(f"unknown baseline {kind!r}", "use blur, mean, zero or a number such as 0.5")


def _patch_mask(inputs: torch.Tensor, patch: int = 8) -> torch.Tensor:
    """Feature groups for perturbation methods: square patches, shared across channels."""
    import torch

    n, c, h, w = inputs.shape
    rows = torch.arange(h, device=inputs.device) // patch
    cols = torch.arange(w, device=inputs.device) // patch
    ids = rows[:, None] * ((w + patch - 1) // patch) + cols[None, :]
    return ids.expand(1, c, h, w).contiguous()


def _captum_class(name: str) -> type:
    import captum.attr

    cls = getattr(captum.attr, name, None)
    if not (isinstance(cls, type) and issubclass(cls, captum.attr.Attribution)) or name in (
        "Attribution", "GradientAttribution", "PerturbationAttribution", "LayerAttribution", "NeuronAttribution",
    ):
        valid = sorted(
            n for n in dir(captum.attr)
            if isinstance(getattr(captum.attr, n), type) and issubclass(getattr(captum.attr, n), captum.attr.Attribution)
        )
        close = difflib.get_close_matches(name, valid, n=1)
        raise UsageError(
            f"captum.attr has no attribution class {name!r}",
            f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}",
        )
    return cls


def _parameters(function: Any) -> dict[str, inspect.Parameter]:
    return dict(list(inspect.signature(function).parameters.items())[1:])  # drop self


class CaptumMethod(Attribution):
    """An attribution method computed by a Captum class.

    Subclasses set ``algorithm`` (a Captum class name, or ``NoiseTunnel(Name)``)
    and ``defaults``; :class:`CaptumAdapter` takes ``algorithm`` as an option.
    """

    algorithm: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any):
        # The registry's base class rejects unknown options; we validate them
        # against the Captum signatures instead.
        Attribution.__init__(self)
        algorithm = options.pop("algorithm", None) or type(self).algorithm
        seed = options.pop("seed", 0)
        try:
            self.seed = int(parse_value(seed) if isinstance(seed, str) else seed)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{type(self).name}: seed must be an integer, got {seed!r}", "write seed=0") from exc
        options = {ALIASES.get(k, k): (parse_value(v) if isinstance(v, str) else v) for k, v in options.items()}
        match = _EXPRESSION.match(str(algorithm))
        if not match:
            raise UsageError(
                f"cannot read Captum method {algorithm!r}",
                "write a class name (Saliency) or a noise tunnel (NoiseTunnel(IntegratedGradients))",
            )
        self.noise_tunnel = match.group(1) is not None
        self.class_name = match.group(2) or match.group(3)
        if self.class_name == "NoiseTunnel":
            raise UsageError("NoiseTunnel needs a method to wrap", "write NoiseTunnel(Saliency)")
        self.algorithm_expression = (
            f"NoiseTunnel({self.class_name})" if self.noise_tunnel else self.class_name
        )
        self.captum_class = _captum_class(self.class_name)
        init_params = _parameters(self.captum_class.__init__)
        attr_params = _parameters(self.captum_class.attribute)
        self.is_neuron = self.class_name.startswith("Neuron")
        self.init_names = [n for n in init_params if n not in ("forward_func", "model", "layer", "device_ids")]
        self.attr_names = [n for n in attr_params if n not in ("inputs", "target", "additional_forward_args", "neuron_selector", "kwargs")]
        allowed = set(self.init_names) | set(self.attr_names) | {"layer", "seed"}
        if self.noise_tunnel:
            allowed |= set(NOISE_TUNNEL_OPTIONS)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UsageError(
                f"{self.label}: unknown option(s) {unknown}",
                f"valid options: {', '.join(sorted(allowed))} (aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})",
            )
        if "layer" in options and not ("layer" in init_params):
            raise UsageError(f"{self.label}: {self.class_name} takes no layer", "drop the layer= option")
        merged: dict[str, Any] = {}
        if type(self) is CaptumAdapter:
            merged.update({k: v for k, v in GENERIC_DEFAULTS.items() if k in self.attr_names})
            if self.noise_tunnel:
                merged.update(NOISE_TUNNEL_DEFAULTS)
        merged.update(type(self).defaults)
        merged.update(options)
        self.layer: str | None = merged.pop("layer", None)
        self.init_options = {k: merged.pop(k) for k in list(merged) if k in self.init_names}
        self.nt_options = {k: merged.pop(k) for k in list(merged) if k in NOISE_TUNNEL_OPTIONS}
        self.attr_options = merged
        # Capability flags follow the configured Captum method.
        self.supports_units = self.is_neuron

        def effective(option: str) -> Any:
            if option in self.attr_options:
                return self.attr_options[option]
            parameter = attr_params.get(option)
            return None if parameter is None else parameter.default

        self.signed = type(self).signed and not (effective("abs") is True or effective("relu_attributions") is True)
        if "multiply_by_inputs" in self.init_options:
            self.multiplies_by_inputs = bool(self.init_options["multiply_by_inputs"])
        else:
            self.multiplies_by_inputs = type(self).multiplies_by_inputs or self.class_name in (
                "InputXGradient", "IntegratedGradients", "DeepLift", "DeepLiftShap", "GradientShap",
                "LayerGradientXActivation",
            )

    @property
    def claims_completeness(self) -> bool:
        """Whether the maps sum to f(x) - f(baseline) by construction (checked by the ``completeness`` metric)."""
        return self.class_name in COMPLETE_CLASSES and not self.noise_tunnel

    def completeness_baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The reference input the maps' sum is measured from (Captum's default baseline is zero)."""
        return baseline_tensor(self.attr_options.get("baselines", "zero"), inputs)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.algorithm_expression})" if hasattr(self, "algorithm_expression") else self.name

    # -- building ------------------------------------------------------------
    def _build(self, module: nn.Module, inputs: torch.Tensor, layer: str | None = None) -> Any:
        from interpret_core.nn.hooks import resolve_layer

        args: list[Any] = [module]
        kwargs = dict(self.init_options)
        if "layer" in _parameters(self.captum_class.__init__):
            name = layer or self.layer or default_layer(module, inputs)
            kwargs["layer"] = resolve_layer(module, name)
        method = self.captum_class(*args, **kwargs)
        if self.noise_tunnel:
            import captum.attr

            method = captum.attr.NoiseTunnel(method)
        return method

    def _attribute_kwargs(self, inputs: torch.Tensor) -> dict[str, Any]:
        channels = inputs.shape[1]
        kwargs: dict[str, Any] = {}
        for key, value in self.attr_options.items():
            if key == "baselines":
                value = baseline_tensor(value, inputs)
            elif key in ("sliding_window_shapes", "strides"):
                if isinstance(value, int):
                    value = (channels, value, value)
                elif isinstance(value, (tuple, list)) and len(value) == 2:
                    value = (channels, *value)
                else:
                    value = tuple(value)
            elif key == "feature_mask" and value == "patches":
                value = _patch_mask(inputs)
            kwargs[key] = value
        kwargs.update(self.nt_options)
        return kwargs

    def _to_input_shape(self, attributions: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if isinstance(attributions, tuple):
            attributions = attributions[0]
        if attributions.shape == inputs.shape:
            return attributions
        if attributions.ndim != 4:
            raise CapabilityError(
                f"{self.label} returned shape {tuple(attributions.shape)}, which is not a map over the input",
                "use a layer whose output is a feature map [N, C, h, w]",
            )
        summed = attributions.sum(dim=1, keepdim=True)
        up = F.interpolate(summed, size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        return up.expand(-1, inputs.shape[1], -1, -1).contiguous()

    @contextlib.contextmanager
    def _seeded_draws(self, inputs: torch.Tensor) -> Iterator[None]:
        """Captum's random draws come from the global generators: torch's (NoiseTunnel's noise,
        Lime's and ShapleyValueSampling's samples), numpy's (GradientShap's interpolation points)
        and Python's (the baselines' choice). Seed all three, for this call only, from ``seed``
        and the batch's bytes, and give the caller's states back after.

        So one seed gives the same maps in every run, process and executor; an image's map
        depends on the batch it is computed in (the draws are per batch).
        """
        import random

        import numpy as np
        import torch

        from interpret_core.util.fingerprint import content_seed

        seed = content_seed(np.ascontiguousarray(inputs.detach().to(torch.float32).cpu().numpy()).tobytes(), self.seed)
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[inputs.device] if inputs.device.type == "cuda" else []):
                torch.manual_seed(seed)
                np.random.seed(seed % 2**32)
                random.seed(seed)
                yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)

    # -- entry points ----------------------------------------------------------
    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        """Class-level map [N, C, H, W] for the target logit(s)."""
        import torch

        if self.is_neuron:
            raise CapabilityError(
                f"{self.label} attributes neurons, not classes",
                "call attribute_units (e.g. `interp visualize --layer ...`) or pick a class-level method",
            )
        inputs = inputs.detach().float()
        if isinstance(target, torch.Tensor):
            target = target.to(device=inputs.device, dtype=torch.long).reshape(-1)
            if target.numel() == 1:
                target = int(target)
        method = self._build(module, inputs)
        kwargs = self._attribute_kwargs(inputs)
        with warnings.catch_warnings(), torch.enable_grad(), self._seeded_draws(inputs):
            warnings.simplefilter("ignore")
            try:
                result = method.attribute(inputs, target=target, **kwargs)
            except InterpError:
                raise
            except Exception as exc:
                raise CapabilityError(
                    f"{self.label} failed on {type(module).__name__}: {type(exc).__name__}: {exc}",
                    "check the Captum method's requirements and options (docs/methods.md)",
                ) from exc
        return self._to_input_shape(result, inputs).detach()

    def attribute_units(
        self, module: nn.Module, inputs: torch.Tensor, layer: str, units: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Neuron methods only: one Captum call per unit, at each image's argmax; [N, U, C, H, W]."""
        import torch

        if not self.is_neuron:
            return super().attribute_units(module, inputs, layer, units)
        from ._rectifier import forward_to

        inputs = inputs.detach().float()
        with torch.no_grad():
            activations = forward_to(module, inputs, layer)
        unit_list = list(range(activations.shape[1])) if units is None else [int(u) for u in units]
        method = self._build(module, inputs, layer)
        kwargs = self._attribute_kwargs(inputs)
        maps = []
        for unit in unit_list:
            def selector(out: torch.Tensor, _u: int = unit) -> torch.Tensor:
                return out[:, _u].flatten(1).max(dim=1).values

            with warnings.catch_warnings(), torch.enable_grad(), self._seeded_draws(inputs):
                warnings.simplefilter("ignore")
                maps.append(method.attribute(inputs, neuron_selector=selector, **kwargs).detach())
        if not maps:
            return inputs.new_zeros((inputs.shape[0], 0, *inputs.shape[1:]))
        return torch.stack(maps, dim=1)


class CaptumAdapter(CaptumMethod):
    """Any ``captum.attr`` class by name: ``get_attribution("captum", algorithm="NoiseTunnel(Saliency)")``.

    On the command line: ``--method captum:NoiseTunnel(Saliency),nt_samples=16``.
    """

    name = "captum"
    description = "any captum.attr class, e.g. captum:Saliency or captum:NoiseTunnel(IntegratedGradients)"
    #: ``captum:Saliency`` means ``algorithm="Saliency"``
    positional_option = "algorithm"
    #: the bare adapter projects no units; Captum's Neuron* classes do
    unit_specs = ("captum:NeuronDeconvolution",)

    def __init__(self, algorithm: str | None = None, **options: Any):
        if not algorithm:
            raise UsageError(
                "the captum adapter needs algorithm=ClassName",
                "e.g. --method captum:Saliency or captum:NoiseTunnel(IntegratedGradients),nt_samples=10",
            )
        super().__init__(algorithm=algorithm, **options)


class Saliency(CaptumMethod):
    """Absolute input gradient of the target logit (Simonyan et al. 2014)."""

    name = "saliency"
    description = "Captum Saliency: |d logit / d input|"
    algorithm = "Saliency"
    defaults = {"abs": True}
    signed = False


#: Captum classes whose maps sum to f(x) - f(baseline) by construction (completeness /
#: summation-to-delta); the ``completeness`` metric checks the claim.
COMPLETE_CLASSES = ("IntegratedGradients", "DeepLift")


class IntegratedGradients(CaptumMethod):
    """Integrated gradients from a blurred face (Sundararajan et al. 2017)."""

    name = "integrated-gradients"
    description = "Captum IntegratedGradients, 32 steps from a blurred-face baseline"
    algorithm = "IntegratedGradients"
    defaults = {"n_steps": 32, "baselines": "blur", "internal_batch_size": 256}
    multiplies_by_inputs = True


class InputXGradient(CaptumMethod):
    """Input times gradient."""

    name = "input-x-gradient"
    description = "Captum InputXGradient"
    algorithm = "InputXGradient"
    multiplies_by_inputs = True


class DeepLift(CaptumMethod):
    """DeepLIFT rescale rule from a blurred face (Shrikumar et al. 2017), after the net's input standardisation.

    Option ``input_transform``: ``after`` (default) explains the network
    after a leading parameter-free, shape-keeping module such as fer-cnn's
    ``Standardise`` (:func:`interpret_core.nn.blocks.leading_input_transform`):
    the input and the baseline are transformed first and DeepLIFT runs on the
    rest of the network, so its maps sum to f(x) - f(baseline) as the method
    claims (the rescale rule has no rule for a per-image division by the
    standard deviation and would fall back to its gradient, which missed
    completeness by a median 60 % on fer-cnn). The map's pixels are the
    standardised image's, which correspond one to one to the input's.
    ``through``: Captum on the whole network, as before.
    """

    name = "deeplift"
    description = "Captum DeepLift from a blurred-face baseline, after the net's input standardisation"
    algorithm = "DeepLift"
    defaults = {"baselines": "blur"}
    multiplies_by_inputs = True

    def __init__(self, input_transform: str = "after", **options: Any):
        if input_transform not in ("after", "through"):
            raise UsageError(f"attribution 'deeplift': input_transform={input_transform!r} is not 'after' or 'through'",
                             "see docs/methods.md (DeepLIFT and the input standardisation)")
        super().__init__(**options)
        self.input_transform = input_transform

    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        import torch

        from interpret_core.nn.blocks import leading_input_transform
        from interpret_core.nn.hooks import resolve_layer

        name = leading_input_transform(module, inputs) if self.input_transform == "after" else None
        if name is None:
            return super().attribute(module, inputs, target)
        transform = resolve_layer(module, name)
        with torch.no_grad():
            transformed = transform(inputs.detach().float())
            baseline = transform(self.completeness_baseline(inputs.detach().float()))
        original = self.attr_options.get("baselines")
        handle = transform.register_forward_hook(lambda _m, args, _out: args[0])  # the transform is done already
        self.attr_options["baselines"] = baseline
        try:
            return super().attribute(module, transformed, target)
        finally:
            handle.remove()
            self.attr_options["baselines"] = original


class Occlusion(CaptumMethod):
    """Output drop when an 8x8 patch is replaced by the face's mean grey (Zeiler & Fergus 2014)."""

    name = "occlusion"
    description = "Captum Occlusion, 8x8 window, stride 4, mean-grey patches"
    algorithm = "Occlusion"
    defaults = {"sliding_window_shapes": 8, "strides": 4, "baselines": "mean", "perturbations_per_eval": 16}


class GradCam(CaptumMethod):
    """Grad-CAM at the last spatial block after its rectifier (or ``layer=``), upsampled (Selvaraju et al. 2017)."""

    name = "grad-cam"
    description = "Captum LayerGradCam at the last spatial block's rectified output (layer=...), ReLU'd, upsampled bilinearly"
    algorithm = "LayerGradCam"
    defaults = {"relu_attributions": True}
    signed = False


class GuidedGradCam(CaptumMethod):
    """Guided backprop times upsampled Grad-CAM, at the last spatial block (or ``layer=``)."""

    name = "guided-grad-cam"
    description = "Captum GuidedGradCam at the last spatial block's rectified output (layer=...)"
    algorithm = "GuidedGradCam"
    defaults = {"interpolate_mode": "bilinear"}
