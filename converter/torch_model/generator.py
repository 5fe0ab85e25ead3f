"""Occlusion-aware generator: encode the source, warp its features, decode the frame."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..architecture import generator_channels
from .blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, grid_sample
from .dense_motion import DenseMotionNetwork


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, estimate_occlusion_map=False, dense_motion_params=None,
                 estimate_jacobian=False, align_corners=False):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, num_channels=num_channels,
            estimate_occlusion_map=estimate_occlusion_map, align_corners=align_corners,
            **dense_motion_params)
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        down, up, bottleneck = generator_channels(block_expansion, max_features, num_down_blocks)
        self.down_blocks = nn.ModuleList(DownBlock2d(i, o) for i, o in down)
        self.up_blocks = nn.ModuleList(UpBlock2d(i, o) for i, o in up)
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(bottleneck, kernel_size=3, padding=1))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)
        self.align_corners = align_corners

    def deform(self, x, deformation):
        """Warp x by a (B, h, w, 2) field, resized bilinearly when x's size differs."""
        h, w = x.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w),
                                        mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        return grid_sample(x, deformation, self.align_corners)

    def encode(self, source_image):
        """The source's features: the part of the generator that ignores the keypoints."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features, motion):
        """Warp and occlude the source features by the motion, then decode the frame."""
        out = self.deform(features, motion["deformation"])
        if "occlusion_map" in motion:
            occlusion = motion["occlusion_map"]
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear",
                                          align_corners=False)
            out = out * occlusion
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(self, source_image, kp_driving, kp_source):
        features = self.encode(source_image)
        motion = self.dense_motion_network(source_image=source_image, kp_driving=kp_driving,
                                           kp_source=kp_source)
        result = {k: motion[k] for k in ("mask", "sparse_deformed", "occlusion_map")
                  if k in motion}
        result["deformed"] = self.deform(source_image, motion["deformation"])
        result["prediction"] = self.decode(features, motion)
        result["deformation"] = motion["deformation"]
        return result

    def generate(self, source_features, source_down, kp_driving, kp_source):
        """The prediction from encode()'s features and the downsampled source (encode-once)."""
        motion = self.dense_motion_network.motion(source_down, kp_driving, kp_source)
        return self.decode(source_features, motion)
