"""The built-in :class:`~interpret_core.Model` plugins.

No torch at import time: the ``nn.Module`` classes live in :mod:`.nets`,
imported inside :meth:`build`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from interp_datasets.emotions import EMOTIONS
from interpret_core.api.interfaces import Model

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["FerCNNModel", "FerResNetModel"]


class FerCNNModel(Model):
    """``fer-cnn``: per-image standardisation, three conv -> ReLU -> max-pool blocks
    (5x5, 3x3, 3x3; 16/32/64 channels), then FC 128 with dropout 0.2; ~0.55 M
    parameters (2.2 MB float32)."""

    name = "fer-cnn"
    description = "paper-style expression CNN: per-image standardisation, 3 x (conv-ReLU-maxpool), 5x5/3x3 filters, 16/32/64 channels, FC-128 + dropout"
    default_weights: ClassVar[str | None] = "interp_models:weights/fer-cnn.safetensors"
    analysable_layers: ClassVar[tuple[str, ...]] = ("conv1", "conv2", "conv3")
    #: CK+'s 8 classes, what the shipped weights are trained on
    default_class_names: ClassVar[tuple[str, ...]] = EMOTIONS

    def build(self) -> nn.Module:
        from .nets import FerCNN

        return FerCNN(num_classes=len(self.class_names), input_size=self.input_size)

    @property
    def layers(self) -> list[str]:
        return list(self.analysable_layers)


class FerResNetModel(Model):
    """``fer-resnet``: a small ResNet (per-image standardisation, 5x5 stem + 3 basic
    blocks, 16/32/64 wide, BatchNorm, global average pooling); ~0.08 M
    parameters. Trained from scratch."""

    name = "fer-resnet"
    description = "small ResNet for grey crops: 5x5 stem, 3 basic blocks (16/32/64), BatchNorm, global average pool"
    default_weights: ClassVar[str | None] = None
    analysable_layers: ClassVar[tuple[str, ...]] = ("stem", "layer1", "layer2", "layer3")
    default_class_names: ClassVar[tuple[str, ...]] = EMOTIONS

    def build(self) -> nn.Module:
        from .nets import FerResNet

        return FerResNet(num_classes=len(self.class_names), input_size=self.input_size)

    @property
    def layers(self) -> list[str]:
        return list(self.analysable_layers)
