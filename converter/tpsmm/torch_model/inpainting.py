"""Inpainting network: encode the source, warp and occlude its features at four scales,
decode the frame, and blend it with the warped source by the finest occlusion map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...torch_model.blocks import (DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d,
                                   grid_sample)
from ..architecture import inpainting_plan


class InpaintingNetwork(nn.Module):
    def __init__(self, num_channels, block_expansion, max_features, num_down_blocks,
                 multi_mask=True):
        super().__init__()
        if not multi_mask:
            raise ValueError("inpainting: multi_mask False is not supported (no published "
                             "checkpoint uses it)")
        plan = inpainting_plan(block_expansion, max_features, num_down_blocks)
        norm = nn.InstanceNorm2d
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3,
                                 norm=norm)
        self.down_blocks = nn.ModuleList(DownBlock2d(i, o, norm=norm) for i, o in plan.down)
        self.up_blocks = nn.ModuleList(UpBlock2d(i, o, norm=norm) for i, o in plan.up)
        self.resblock = nn.ModuleList(ResBlock2d(c, kernel_size=3, padding=1, norm=norm)
                                      for c in plan.resblock)
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    @staticmethod
    def deform(x, deformation):
        """Warp x (batch 1 or B) by a (B, h, w, 2) field, resized bilinearly (corners
        aligned) when x's size differs."""
        h, w = x.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w),
                                        mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
        return grid_sample(x.expand(deformation.shape[0], -1, -1, -1), deformation, True)

    def encode(self, source_image):
        """The source's features at H, H/2, H/4, H/8: what depends on the source only."""
        maps = [self.first(source_image)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        return maps

    def warped_features(self, encoder_maps, deformation, occlusion_map):
        """Each encoder map warped and multiplied by the occlusion map of its size,
        coarsest first (the original's warped_encoder_maps)."""
        return [self.deform(features, deformation) * occlusion
                for features, occlusion in zip(encoder_maps[::-1], occlusion_map)]

    def decode(self, encoder_maps, source_image, dense_motion):
        """{"deformed": the source warped at full size, "prediction"}."""
        occlusion_map = dense_motion["occlusion_map"]
        warped = self.warped_features(encoder_maps, dense_motion["deformation"], occlusion_map)
        out = warped[0]
        for i, block in enumerate(self.up_blocks):
            out = block(self.resblock[2 * i + 1](self.resblock[2 * i](out)))
            if i + 1 < len(self.up_blocks):
                out = torch.cat([out, warped[i + 1]], dim=1)
        deformed = self.deform(source_image, dense_motion["deformation"])
        occlusion = occlusion_map[-1]
        out = torch.sigmoid(self.final(out * (1 - occlusion) + warped[-1]))
        return {"deformed": deformed, "prediction": out * (1 - occlusion) + deformed * occlusion}

    def forward(self, source_image, dense_motion):
        return self.decode(self.encode(source_image), source_image, dense_motion)
