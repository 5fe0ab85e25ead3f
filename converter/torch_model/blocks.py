"""Building blocks of FOMM, with the original's module names (they are state_dict keys).

TPSMM's blocks are the same with InstanceNorm2d in place of BatchNorm2d (`norm`), and its
hourglass returns every decoder output (`every_output`)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..architecture import (anti_alias_kernel_size, anti_alias_sigma, downsample_step,
                            hourglass_channels)


def make_coordinate_grid(height: int, width: int, dtype=torch.float32) -> torch.Tensor:
    """(height, width, 2) grid of (x, y) in [-1, 1]; x runs along the width."""
    x = 2 * (torch.arange(width, dtype=dtype) / (width - 1)) - 1
    y = 2 * (torch.arange(height, dtype=dtype) / (height - 1)) - 1
    xx = x.view(1, -1).repeat(height, 1)
    yy = y.view(-1, 1).repeat(1, width)
    return torch.stack([xx, yy], dim=2)


def kp2gaussian(value: torch.Tensor, spatial_size, kp_variance: float) -> torch.Tensor:
    """Gaussian blob around each keypoint: (B, K, 2) -> (B, K, h, w)."""
    grid = make_coordinate_grid(*spatial_size, dtype=value.dtype)
    grid = grid.view(1, 1, *grid.shape)
    mean = value.view(*value.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * ((grid - mean) ** 2).sum(-1) / kp_variance)


def gaussian_kernel(channels: int, scale: float) -> np.ndarray:
    """The anti-aliasing kernel, [C, 1, k, k] (computed in float64; checkpoints carry theirs)."""
    sigma, size = anti_alias_sigma(scale), anti_alias_kernel_size(scale)
    axis = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
    kernel = np.outer(axis, axis)
    kernel /= kernel.sum()
    return np.broadcast_to(kernel, (channels, 1, size, size)).astype(np.float32)


def grid_sample(image: torch.Tensor, grid: torch.Tensor, align_corners: bool) -> torch.Tensor:
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=align_corners)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur, then keep every (1/scale)-th row and column."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        kernel = gaussian_kernel(channels, scale)
        size = kernel.shape[-1]
        self.pad = size // 2
        self.step = downsample_step(scale)
        self.groups = channels
        self.register_buffer("weight", torch.from_numpy(kernel.copy()))

    def forward(self, x):
        out = F.conv2d(F.pad(x, [self.pad] * 4), self.weight, groups=self.groups)
        return out[:, :, ::self.step, ::self.step]


class ResBlock2d(nn.Module):
    """Pre-activation residual block: norm, ReLU, conv, norm, ReLU, conv, plus input."""

    def __init__(self, in_features: int, kernel_size: int, padding: int, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = norm(in_features, affine=True)
        self.norm2 = norm(in_features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest upsample x2, conv, norm, ReLU."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2))))


class DownBlock2d(nn.Module):
    """Conv, norm, ReLU, average pool 2x2."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """Conv, norm, ReLU at the same resolution."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    def __init__(self, channels, norm=nn.BatchNorm2d):
        super().__init__()
        self.down_blocks = nn.ModuleList(DownBlock2d(i, o, norm=norm) for i, o in channels)

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Up blocks, each output concatenated with the encoder's skip; returns the last
    output, or the list of every one (every_output)."""

    def __init__(self, channels, norm=nn.BatchNorm2d, every_output=False):
        super().__init__()
        self.up_blocks = nn.ModuleList(UpBlock2d(i, o, norm=norm) for i, o in channels)
        self.every_output = every_output

    def forward(self, features):
        features = list(features)
        out = features.pop()
        outs = []
        for block in self.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
            outs.append(out)
        return outs if self.every_output else out


class Hourglass(nn.Module):
    """U-Net; the output has block_expansion + in_features channels."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256,
                 norm=nn.BatchNorm2d, every_output=False):
        super().__init__()
        encoder, decoder = hourglass_channels(block_expansion, in_features, num_blocks,
                                              max_features)
        self.encoder = Encoder(encoder, norm)
        self.decoder = Decoder(decoder, norm, every_output)
        self.out_filters = block_expansion + in_features

    def forward(self, x):
        return self.decoder(self.encoder(x))
