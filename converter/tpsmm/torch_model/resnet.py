"""resnet18 with torchvision's module names and state_dict layout (no torchvision needed):
the TPSMM keypoint detector's backbone."""
from __future__ import annotations

import torch
from torch import nn

from ..architecture import (RESNET18_BLOCKS_PER_STAGE, RESNET18_STAGES,
                            RESNET18_STEM_WIDTH)


class BasicBlock(nn.Module):
    """3x3 conv (stride), BN, ReLU, 3x3 conv, BN, plus the input (through a 1x1 conv and
    BN where the shape changes), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()  # called twice, as torchvision's (a module of the original)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages of basic blocks, global
    average pool, then a linear layer to num_outputs. in_channels: 3 for the keypoint
    detector; the background predictor (never run at inference) reads two images, 6."""

    def __init__(self, num_outputs: int, in_channels: int = 3):
        super().__init__()
        width = RESNET18_STEM_WIDTH
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (out, stride) in enumerate(RESNET18_STAGES, start=1):
            blocks = [BasicBlock(width if j == 0 else out, out, stride if j == 0 else 1)
                      for j in range(RESNET18_BLOCKS_PER_STAGE)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            width = out
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_outputs)

    def features(self, x):
        """The stem and the four stages: the last block's output (B, 512, h, w)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, len(RESNET18_STAGES) + 1):
            x = getattr(self, f"layer{i}")(x)
        return x

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))
