"""The ``torch.nn`` modules behind the built-in model plugins.

Imported lazily (from ``Model.build``) so that listing plugins never imports
torch. Every rectification is its own ``nn.ReLU`` instance (never in-place,
never reused) and every pooling is an ``nn.MaxPool2d`` module, so module hooks
(deconvnet, guided backprop, Captum) see each ReLU and each pooling switch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FerCNN", "FerResNet", "FerResNet18", "BasicBlock"]


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Conv (same padding) + its own ReLU; the Sequential's output is rectified."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.ReLU(inplace=False),
    )


class Standardise(nn.Module):
    """Per-image standardisation: zero mean, unit standard deviation over (C, H, W).

    Removes global brightness and contrast (lighting that changes between
    frames and subjects) before the first convolution; parameter-free and
    differentiable, so gradient-based attributions pass through it.
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (x - mean) / (std + self.eps)


class FerCNN(nn.Module):
    """Paper-style expression CNN: three conv -> ReLU -> max-pool blocks, then FC + dropout.

    Each crop is first standardised (zero mean, unit std; see
    :class:`Standardise`). Block 1 uses 5x5 filters, blocks 2 and 3 use 3x3
    filters; channels widen block by block. Named submodules ``conv1``, ``conv2``, ``conv3`` output
    rectified feature maps; ``pool1``..``pool3`` halve the resolution.

    Shapes for the default (1, 64, 64) input and channels (16, 32, 64):
    conv1 [16, 64, 64] -> pool1 [16, 32, 32] -> conv2 [32, 32, 32] -> pool2
    [32, 16, 16] -> conv3 [64, 16, 16] -> pool3 [64, 8, 8] -> fc1 [hidden] ->
    fc2 [num_classes] (logits).
    """

    def __init__(
        self,
        num_classes: int,
        input_size: Sequence[int] = (1, 64, 64),
        channels: Sequence[int] = (16, 32, 64),
        hidden: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__()
        in_channels, height, width = (int(v) for v in input_size)
        if height % 8 or width % 8:
            raise ValueError(f"FerCNN needs input height and width divisible by 8, got {height}x{width}")
        c1, c2, c3 = (int(c) for c in channels)
        self.standardise = Standardise()
        self.conv1 = _conv_relu(in_channels, c1, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = _conv_relu(c1, c2, 3)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = _conv_relu(c2, c3, 3)
        self.pool3 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.dropout1 = nn.Dropout(dropout)
        self.fc1 = nn.Sequential(nn.Linear(c3 * (height // 8) * (width // 8), hidden), nn.ReLU(inplace=False))
        self.dropout2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(self.standardise(x)))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x))
        x = self.dropout1(self.flatten(x))
        x = self.dropout2(self.fc1(x))
        return self.fc2(x)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + identity or 1x1 projection shortcut).

    ``relu1`` rectifies the first conv, ``relu2`` the sum; the block's output
    is rectified, so a block is an analysable layer.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


def _init_resnet(network: nn.Module) -> None:
    """He et al.'s initialisation: Kaiming-normal convs (fan out), BatchNorm at weight 1, bias 0."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class FerResNet(nn.Module):
    """A small ResNet for grey face crops, built from scratch (no downloaded weights).

    standardise (per-image zero mean, unit std); stem: 5x5 conv + BN + ReLU
    at full resolution, then a 2x2 max-pool;
    ``layer1``..``layer3``: one basic block each, the last two with stride 2;
    global average pool; dropout; linear classifier.

    Shapes for (1, 64, 64) and widths (16, 32, 64): stem [16, 64, 64] -> pool
    [16, 32, 32] -> layer1 [16, 32, 32] -> layer2 [32, 16, 16] -> layer3
    [64, 8, 8] -> avgpool [64] -> fc [num_classes].
    """

    def __init__(
        self,
        num_classes: int,
        input_size: Sequence[int] = (1, 64, 64),
        widths: Sequence[int] = (16, 32, 64),
        dropout: float = 0.2,
    ):
        super().__init__()
        in_channels = int(input_size[0])
        w1, w2, w3 = (int(w) for w in widths)
        self.standardise = Standardise()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w1, 5, padding=2, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(inplace=False),
        )
        self.pool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w3, num_classes)
        _init_resnet(self)
        # Zero the last BN of each residual branch so every block starts as
        # (nearly) the identity: faster, steadier training of a small net.
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(self.standardise(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.dropout(self.flatten(self.avgpool(x)))
        return self.fc(x)


class FerResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) for face crops at 224x224, defined here (no torchvision).

    The standard topology: per-image standardisation, then a 7x7 stride-2
    conv + BN + ReLU stem and a 3x3 stride-2 max-pool, four stages of two
    :class:`BasicBlock` each (64, 128, 256, 512 channels; stages 2-4 start
    with stride 2 and a 1x1 projection shortcut), global average pooling and
    a linear classifier over the expression classes. About 11.2 M parameters
    for one grey input channel and 8 classes (torchvision's ImageNet
    ResNet-18 has 11.7 M: three input channels and 1000 classes).

    Shapes for (1, 224, 224): stem [64, 112, 112] -> pool [64, 56, 56] ->
    layer1 [64, 56, 56] -> layer2 [128, 28, 28] -> layer3 [256, 14, 14] ->
    layer4 [512, 7, 7] -> avgpool [512] -> fc [num_classes].
    """

    def __init__(
        self,
        num_classes: int,
        input_size: Sequence[int] = (1, 224, 224),
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
    ):
        super().__init__()
        in_channels = int(input_size[0])
        widths = [int(w) for w in widths]
        self.standardise = Standardise()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=False),
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        previous = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks), start=1):
            stride = 1 if stage == 1 else 2
            stage_blocks = [BasicBlock(previous, width, stride=stride)]
            stage_blocks += [BasicBlock(width, width) for _ in range(int(count) - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*stage_blocks))
            previous = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(previous, num_classes)
        _init_resnet(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(self.standardise(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))
