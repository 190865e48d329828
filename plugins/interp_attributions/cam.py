"""The CAM family beyond Grad-CAM, written from the papers' formulas (no pytorch-grad-cam code).

Notation: ``A`` [N, K, h, w] is the explained layer's output (by default the
last spatial block after its rectifier, :func:`interpret_core.nn.blocks.last_spatial_block`;
``layer=`` overrides), ``G = d y_c / d A`` the gradient of the explained
logit ``y_c``, sums over (i, j) run over the h x w positions, and every map
is upsampled bilinearly to the input and repeated over its channels.

================ ============================================================ ======================
plugin           map                                                          paper
================ ============================================================ ======================
grad-cam-pp      relu(sum_k w_k A_k), w_k = sum_ij a_kij relu(G_kij),          Chattopadhyay et al.
                 a_kij = G^2 / (2 G^2 + sum_ab A_kab G^3)  (exp. output)       2018 (eq. 19)
score-cam        relu(sum_k s_k A_k), s_k = softmax(f(x * M_k))_c, M_k = A_k   Wang et al. 2020
                 upsampled and min-max scaled to [0, 1]
layer-cam        relu(sum_k relu(G_k) * A_k)  (element-wise)                   Jiang et al. 2021
hires-cam        sum_k G_k * A_k  (element-wise; signed, no relu)              Draelos & Carin 2020
eigen-cam        A projected on its first principal direction: A_ij . v_1,     Muhammad & Yeasin 2020
                 v_1 the first right singular vector of A as [h*w, K]
                 (sign: the map's sum is >= 0); ignores the class
xgrad-cam        relu(sum_k w_k A_k), w_k = sum_ij (A_kij / sum_ab A_kab) G_kij Fu et al. 2020
================ ============================================================ ======================

Where a formula divides by zero (Grad-CAM++'s ``a`` where ``G`` is 0,
XGrad-CAM's weights for a channel that is zero everywhere) the term is 0.
Score-CAM follows the authors' release in using the masked input's softmax
probability as it is (no baseline subtracted: the paper's ``f(X_b)`` shifts
every weight alike); it runs one forward pass per channel, in batches of
``batch_size`` masked images.

No torch at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import CapabilityError, UsageError
from interpret_core.api.interfaces import Attribution

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["GradCamPlusPlus", "ScoreCam", "LayerCam", "HiResCam", "EigenCam", "XGradCam", "layer_activations"]


def _targets(target: Any, n: int, device: Any) -> torch.Tensor:
    import torch

    targets = torch.as_tensor(target, device=device).to(torch.int64).reshape(-1)
    return targets.expand(n) if targets.numel() == 1 else targets


def layer_activations(module: nn.Module, inputs: torch.Tensor, layer: str, targets: torch.Tensor | None):
    """(A [N, K, h, w], G = d y_target / d A or None, logits) at ``layer`` for ``inputs``."""
    import torch

    from interpret_core.nn.hooks import capture_outputs

    with torch.enable_grad():
        x = inputs.detach().float().clone().requires_grad_(targets is not None)
        with capture_outputs(module, [layer], detach=False) as captured:
            logits = module(x)
        activation = captured[layer]
        if not isinstance(activation, torch.Tensor) or activation.ndim != 4:
            shape = tuple(activation.shape) if isinstance(activation, torch.Tensor) else type(activation).__name__
            raise UsageError(f"layer {layer!r} outputs {shape}, not a feature map [N, C, h, w]",
                             "pick a convolutional layer (see the model's `layers`)")
        gradient = None
        if targets is not None:
            chosen = logits.gather(1, targets.view(-1, 1).to(logits.device)).sum()
            (gradient,) = torch.autograd.grad(chosen, activation)
    return activation.detach(), gradient, logits.detach()


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    import torch

    nonzero = denominator != 0
    return torch.where(nonzero, numerator / torch.where(nonzero, denominator, torch.ones_like(denominator)),
                       torch.zeros_like(numerator))


class _CAM(Attribution):
    """Shared: the layer, the forward/backward pass, upsampling to the input."""

    signed: ClassVar[bool] = False
    needs_gradient: ClassVar[bool] = True

    def __init__(self, layer: str | None = None, **unknown: Any):
        super().__init__(**unknown)
        if layer is not None and not isinstance(layer, str):
            raise UsageError(f"attribution {self.name!r}: layer must be a module name, got {layer!r}")
        self.layer = layer

    def target_layer(self, module: nn.Module, inputs: torch.Tensor) -> str:
        from interpret_core.nn.blocks import last_spatial_block

        return self.layer or last_spatial_block(module, tuple(int(v) for v in inputs.shape[1:])).layer

    def cam(self, module, inputs, targets, activation, gradient) -> torch.Tensor:
        """The map at the layer's resolution, [N, h, w]."""
        raise NotImplementedError

    def attribute(self, module: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        inputs = inputs.detach().float()
        targets = _targets(target, inputs.shape[0], inputs.device)
        layer = self.target_layer(module, inputs)
        try:
            activation, gradient, _ = layer_activations(module, inputs, layer, targets if self.needs_gradient else None)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model the hooks cannot run
            raise CapabilityError(f"{self.name} failed on {type(module).__name__} at layer {layer!r}: {exc}",
                                  "pass layer=NAME with a feature-map layer") from exc
        cam = self.cam(module, inputs, targets, activation, gradient)
        up = F.interpolate(cam[:, None].to(torch.float32), size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        return up.expand(-1, inputs.shape[1], -1, -1).contiguous()


class GradCamPlusPlus(_CAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018): positive gradients weighted per position by alpha."""

    name = "grad-cam-pp"
    description = "Grad-CAM++: per-position weighted positive gradients at the last spatial block (our implementation)"

    def cam(self, module, inputs, targets, activation, gradient):
        import torch

        a, g = activation.to(torch.float64), gradient.to(torch.float64)
        g2, g3 = g**2, g**3
        denominator = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        alpha = _safe_divide(g2, denominator)
        weights = (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)
        return torch.relu((weights * a).sum(dim=1))


class ScoreCam(_CAM):
    """Score-CAM (Wang et al. 2020): each channel weighted by the class probability of the image it masks."""

    name = "score-cam"
    description = "Score-CAM: channels weighted by the softmax score of the input masked by each (our implementation)"
    needs_gradient = False

    def __init__(self, layer: str | None = None, batch_size: int = 64, **unknown: Any):
        super().__init__(layer=layer, **unknown)
        try:
            batch_size = int(batch_size)
        except (TypeError, ValueError):
            batch_size = 0
        if batch_size < 1:
            raise UsageError(f"attribution {self.name!r}: batch_size must be a positive integer")
        self.batch_size = batch_size

    def masks(self, activation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """M [N, K, H, W]: each channel upsampled and min-max scaled to [0, 1] (a constant channel gives 0)."""
        import torch
        import torch.nn.functional as F

        up = F.interpolate(activation, size=size, mode="bilinear", align_corners=False).to(torch.float32)
        low = up.flatten(2).amin(dim=2)[..., None, None]
        high = up.flatten(2).amax(dim=2)[..., None, None]
        return _safe_divide(up - low, high - low)

    def cam(self, module, inputs, targets, activation, gradient):
        import torch

        n, k = activation.shape[:2]
        masks = self.masks(activation, tuple(inputs.shape[-2:]))  # [N, K, H, W]
        scores = torch.empty(n, k, dtype=torch.float64)
        flat_index = torch.arange(n * k)
        with torch.no_grad():
            for first in range(0, n * k, self.batch_size):
                index = flat_index[first : first + self.batch_size]
                image, channel = index // k, index % k
                masked = inputs[image] * masks[image, channel][:, None]
                probabilities = torch.softmax(module(masked).to(torch.float64), dim=1)
                scores[image, channel] = probabilities.gather(1, targets[image].view(-1, 1).to(probabilities.device)).view(-1).cpu()
        scores = scores.to(activation.device)
        return torch.relu((scores[..., None, None] * activation.to(torch.float64)).sum(dim=1))


class LayerCam(_CAM):
    """LayerCAM (Jiang et al. 2021): positive gradients times activations, position by position."""

    name = "layer-cam"
    description = "LayerCAM: element-wise relu(gradient) x activation, summed over channels (our implementation)"

    def cam(self, module, inputs, targets, activation, gradient):
        import torch

        return torch.relu((torch.relu(gradient.to(torch.float64)) * activation.to(torch.float64)).sum(dim=1))


class HiResCam(_CAM):
    """HiResCAM (Draelos & Carin 2020): gradients times activations element-wise, signed (no averaging, no relu)."""

    name = "hires-cam"
    description = "HiResCAM: element-wise gradient x activation summed over channels, signed (our implementation)"
    signed = True

    def cam(self, module, inputs, targets, activation, gradient):
        return (gradient.double() * activation.double()).sum(dim=1)


class EigenCam(_CAM):
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal direction; class-independent."""

    name = "eigen-cam"
    description = "Eigen-CAM: projection of the layer's activations on their first singular vector (ignores the class)"
    needs_gradient = False

    def cam(self, module, inputs, targets, activation, gradient):
        import torch

        n, k, h, w = activation.shape
        matrix = activation.to(torch.float64).reshape(n, k, h * w).transpose(1, 2)  # [N, h*w, K]
        _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
        projection = (matrix @ vh[:, 0, :, None])[..., 0]  # [N, h*w]
        sign = torch.where(projection.sum(dim=1, keepdim=True) < 0, -1.0, 1.0).to(projection.dtype)
        return (projection * sign).reshape(n, h, w)


class XGradCam(_CAM):
    """XGrad-CAM (Fu et al. 2020): gradients averaged with the activations' own weights."""

    name = "xgrad-cam"
    description = "XGrad-CAM: channel weights = activation-weighted gradient sums (our implementation)"

    def cam(self, module, inputs, targets, activation, gradient):
        import torch

        a, g = activation.to(torch.float64), gradient.to(torch.float64)
        weights = _safe_divide(a * g, a.sum(dim=(2, 3), keepdim=True)).sum(dim=(2, 3), keepdim=True)
        return torch.relu((weights * a).sum(dim=1))
