"""Dense motion: K TPS warps plus the identity, blended by predicted contribution maps,
and four occlusion maps (H/8 .. H)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...torch_model.blocks import (AntiAliasInterpolation2d, Hourglass, UpBlock2d,
                                   grid_sample, kp2gaussian, make_coordinate_grid)
from ..architecture import KP_VARIANCE, dense_motion_plan
from . import tps


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion, num_blocks, max_features, num_tps, num_channels,
                 scale_factor=0.25, multi_mask=True, kp_variance=KP_VARIANCE,
                 tps_solve="inverse"):
        """The original's arguments but bg (the demo never passes a background
        transform), plus how the TPS systems are solved (tps.TPS_SOLVES)."""
        super().__init__()
        if not multi_mask:
            raise ValueError("dense motion: multi_mask False is not supported (no published "
                             "checkpoint uses it)")
        if tps_solve not in tps.TPS_SOLVES:
            raise ValueError(f"unknown TPS solve {tps_solve!r}")
        plan = dense_motion_plan(block_expansion, num_blocks, max_features, num_tps,
                                 num_channels, scale_factor)
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.hourglass = Hourglass(block_expansion, plan.in_features, num_blocks, max_features,
                                   norm=nn.InstanceNorm2d, every_output=True)
        self.maps = nn.Conv2d(plan.outputs[-1], num_tps + 1, kernel_size=7, padding=3)
        self.up = nn.ModuleList(UpBlock2d(i, o, norm=nn.InstanceNorm2d) for i, o in plan.up)
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=7, padding=3)
                                       for c, _ in plan.occlusion)
        self.occlusion_sources = [source for _, source in plan.occlusion]
        self.num_tps = num_tps
        self.kp_variance = kp_variance
        self.tps_solve = tps_solve

    def downsample(self, source_image):
        return self.down(source_image) if self.scale_factor != 1 else source_image

    def heatmap_representations(self, spatial_size, kp_driving, kp_source):
        """(B, 5K+1, h, w): driving minus source gaussians, a zero channel first."""
        heatmap = (kp2gaussian(kp_driving, spatial_size, self.kp_variance)
                   - kp2gaussian(kp_source, spatial_size, self.kp_variance))
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, *spatial_size)
        return torch.cat([zeros, heatmap], dim=1)

    def transformations(self, spatial_size, kp_driving, theta, control_params):
        """(B, K+1, h, w, 2): the identity grid, then each TPS's sampling grid."""
        grid = make_coordinate_grid(*spatial_size, dtype=kp_driving.dtype)
        warps = tps.warp_grid(grid, theta, tps.control_points(kp_driving), control_params)
        identity = grid.view(1, 1, *grid.shape).repeat(warps.shape[0], 1, 1, 1, 1)
        return torch.cat([identity, warps], dim=1)

    def deformed_sources(self, image, transformations):
        """(B, K+1, C, h, w): the image (batch 1 or B) warped by each transformation."""
        b, n, h, w, _ = transformations.shape
        c = image.shape[1]
        image = image.expand(b, -1, -1, -1)
        repeated = image.unsqueeze(1).repeat(1, n, 1, 1, 1).view(b * n, c, h, w)
        warped = grid_sample(repeated, transformations.view(b * n, h, w, 2), True)
        return warped.view(b, n, c, h, w)

    def forward(self, source_image, kp_driving, kp_source):
        return self.motion(self.downsample(source_image), kp_driving, kp_source)

    def motion(self, source_down, kp_driving, kp_source):
        """Everything after the downsample (which depends on the source only). The batch
        is kp_driving's; source_down and kp_source may have batch 1."""
        _, _, h, w = source_down.shape
        b = kp_driving.shape[0]
        heatmaps = self.heatmap_representations((h, w), kp_driving, kp_source)
        theta, control_params = tps.fit(kp_driving, kp_source, self.tps_solve)
        transformations = self.transformations((h, w), kp_driving, theta, control_params)
        deformed_source = self.deformed_sources(source_down, transformations)
        outputs = self.hourglass(torch.cat([heatmaps, deformed_source.view(b, -1, h, w)],
                                           dim=1))
        contribution_maps = F.softmax(self.maps(outputs[-1]), dim=1)
        deformation = (transformations.permute(0, 1, 4, 2, 3)
                       * contribution_maps.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 1)
        features = {"hourglass": outputs, "up": []}
        for block in self.up:
            features["up"].append(block(features["up"][-1] if features["up"] else outputs[-1]))
        occlusion_map = [torch.sigmoid(conv(features[kind][i]))
                         for conv, (kind, i) in zip(self.occlusion, self.occlusion_sources)]
        return {"deformed_source": deformed_source, "contribution_maps": contribution_maps,
                "deformation": deformation, "occlusion_map": occlusion_map,
                "tps_theta": tps.rounded(theta),
                "tps_control_params": tps.rounded(control_params)}
