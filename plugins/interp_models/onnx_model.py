"""``onnx``: any network exported to ONNX, rebuilt in PyTorch by onnx2torch.

``interp run --model onnx --weights net.onnx`` (``get_model("onnx",
weights="net.onnx")``). The ONNX file is the network: onnx2torch turns its
graph into an ``nn.Module`` (a ``torch.fx.GraphModule`` whose ``Relu`` nodes
are ``nn.ReLU`` modules, so deconvnet and guided backprop apply their rules
there; their rectifier check still refuses a graph that rectifies otherwise).

Class names and input size come, in this order, from the options
(``--model-option class_names=anger,happy,...``), from an interp model card
beside the file (``net.json``, same stem), from the graph's static input
shape, or default to ``class_0, class_1, ...`` with a warning. Analysable
layers: every ``nn.ReLU`` module with a feature-map output, in execution
order (``layers=...`` overrides).

Needs the optional extra ``onnx`` (onnx2torch, which imports torchvision; see
docs/models.md for the matching torch build).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interpret_core.api.errors import CapabilityError, UsageError, WeightsError
from interpret_core.api.interfaces import Model
from interpret_core.registry.user_models import RectifiedLayers

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["OnnxModel"]


def _onnx2torch():
    try:
        import onnx2torch
    except Exception as exc:  # ImportError, or torchvision's own error when torch does not match
        raise CapabilityError(
            f"model 'onnx' needs onnx2torch, which failed to import ({type(exc).__name__}: {exc})",
            'pip install "interp[onnx]"; onnx2torch imports torchvision, which needs its matching torch '
            "(e.g. torch==2.14.1 with torchvision==0.29.1)",
        ) from exc
    return onnx2torch


class OnnxModel(RectifiedLayers, Model):
    """An ONNX graph (``weights=FILE.onnx``) as an interp model."""

    name = "onnx"
    description = "any network exported to ONNX (--weights net.onnx), rebuilt in PyTorch by onnx2torch (extra 'onnx')"
    builds_from_weights: ClassVar[bool] = True

    def __init__(
        self,
        weights: str | None = None,
        class_names: Sequence[str] | str | None = None,
        input_size: Sequence[int] | None = None,
        layers: Sequence[str] | str | None = None,
    ):
        _onnx2torch()  # a clear error first when the extra is missing
        if weights is None:
            raise UsageError("model 'onnx' needs the ONNX file", "pass --weights net.onnx")
        self.path = Path(weights)
        if self.path.suffix.lower() != ".onnx":
            raise WeightsError(f"{self.path}: model 'onnx' reads .onnx files", "export the network with torch.onnx.export, or use another --model")
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: ONNX file not found", "give the path of a .onnx file")
        import onnx

        from interpret_core.nn.weights import card_path, read_card, sha256_file

        try:
            self.graph = onnx.load(str(self.path))
        except Exception as exc:
            raise WeightsError(f"{self.path}: not a readable ONNX model ({exc})", "re-export the network") from exc
        card: dict[str, Any] = {}
        if card_path(self.path).is_file():
            card = read_card(self.path)
        architecture = card.get("architecture", {})
        if isinstance(class_names, str):
            class_names = [c.strip() for c in class_names.split(",") if c.strip()]
        size = input_size or architecture.get("input_size") or self._graph_input_size()
        if size is None:
            raise UsageError(f"{self.path}: the graph's input has no static shape", "pass --model-option input_size=1,64,64")
        names = class_names or architecture.get("class_names")
        self._layers = [layers] if isinstance(layers, str) else (list(layers) if layers else None)
        super().__init__(class_names=list(names) if names else ["class_0"], input_size=tuple(int(v) for v in size))
        if not names:
            outputs = self._probe_outputs()
            self.class_names = [f"class_{i}" for i in range(outputs)]
            warnings.warn(
                f"{self.path}: no class names (no card beside it, no class_names option); using {', '.join(self.class_names)}",
                stacklevel=3,
            )
        self.card = {
            **{k: v for k, v in card.items() if k not in ("architecture", "weights")},
            "architecture": self.architecture(),
            "weights": {"file": self.path.name, "sha256": sha256_file(self.path), "format": "onnx"},
            "path": str(self.path),
        }

    def _graph_input_size(self) -> tuple[int, ...] | None:
        initialisers = {i.name for i in self.graph.graph.initializer}
        inputs = [i for i in self.graph.graph.input if i.name not in initialisers]
        if not inputs:
            return None
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or not all(dims[1:]):
            return None
        return tuple(dims[1:])

    def _probe_outputs(self) -> int:
        import torch

        with torch.no_grad():
            out = self.module(torch.zeros(1, *self.input_size))
        return int(out.shape[-1])

    def build(self) -> nn.Module:
        return _onnx2torch().convert(self.graph)

    def architecture(self) -> dict[str, Any]:
        found = super().architecture()
        found["model"] = "onnx"
        return found
