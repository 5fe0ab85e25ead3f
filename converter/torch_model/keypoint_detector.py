"""Keypoint detector: hourglass features -> heatmap softmax -> expected (x, y) and jacobian."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .blocks import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


class KPDetector(nn.Module):
    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks,
                 temperature, estimate_jacobian=False, scale_factor=1,
                 single_jacobian_map=False, pad=0):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels,
                                   max_features=max_features, num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=7, padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps,
                                      kernel_size=7, padding=pad)
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, x):
        if self.scale_factor != 1:
            x = self.down(x)
        features = self.predictor(x)
        prediction = self.kp(features)
        b, k, h, w = prediction.shape
        heatmap = F.softmax(prediction.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        # The grid spans the heatmap's own size, which is smaller than the image's with pad 0.
        grid = make_coordinate_grid(h, w, dtype=heatmap.dtype).view(1, 1, h, w, 2)
        out = {"value": (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))}
        if self.jacobian is not None:
            maps = self.jacobian(features).reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * maps).view(b, k, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(b, k, 2, 2)
        return out
