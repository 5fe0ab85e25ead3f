"""Dense motion: K+1 sparse motions blended by a predicted mask, plus an occlusion map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import AntiAliasInterpolation2d, Hourglass, grid_sample, kp2gaussian, \
    make_coordinate_grid
from .normalize import inverse2x2, matmul2x2, matvec2x2


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels,
                 estimate_occlusion_map=False, scale_factor=1, kp_variance=0.01,
                 align_corners=False):
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion,
                                   in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
        else:
            self.occlusion = None
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        self.align_corners = align_corners
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def heatmap_representations(self, spatial_size, kp_driving, kp_source):
        """(B, K+1, 1, h, w): driving minus source gaussians, background channel first."""
        heatmap = (kp2gaussian(kp_driving["value"], spatial_size, self.kp_variance)
                   - kp2gaussian(kp_source["value"], spatial_size, self.kp_variance))
        zeros = heatmap.new_zeros(kp_driving["value"].shape[0], 1, *spatial_size)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def sparse_motions(self, spatial_size, kp_driving, kp_source):
        """(B, K+1, h, w, 2): identity, then T_k(z) = J_k (z - d_k) + s_k for each keypoint."""
        h, w = spatial_size
        b = kp_driving["value"].shape[0]
        identity = make_coordinate_grid(h, w, dtype=kp_source["value"].dtype).view(1, 1, h, w, 2)
        grid = identity - kp_driving["value"].view(b, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving:
            jacobian = matmul2x2(kp_source["jacobian"], inverse2x2(kp_driving["jacobian"]))
            grid = matvec2x2(jacobian.view(b, self.num_kp, 1, 1, 2, 2), grid)
        driving_to_source = grid + kp_source["value"].view(b, self.num_kp, 1, 1, 2)
        return torch.cat([identity.repeat(b, 1, 1, 1, 1), driving_to_source], dim=1)

    def deformed_sources(self, image, motions, b):
        """(B, K+1, C, h, w): the image (batch b) warped by each sparse motion."""
        _, c, h, w = image.shape
        n = self.num_kp + 1
        repeated = image.unsqueeze(1).repeat(1, n, 1, 1, 1).view(b * n, c, h, w)
        warped = grid_sample(repeated, motions.view(b * n, h, w, 2), self.align_corners)
        return warped.view(b, n, c, h, w)

    def downsample(self, source_image):
        return self.down(source_image) if self.scale_factor != 1 else source_image

    def forward(self, source_image, kp_driving, kp_source):
        return self.motion(self.downsample(source_image), kp_driving, kp_source)

    def motion(self, source_image, kp_driving, kp_source):
        """Everything after the anti-aliased downsample, which depends on the source only.

        Batch sizes come from the driving keypoints, never from the shape of a broadcast
        source: a runtime may get that shape wrong (OpenVINO gave 1 for source batch 1,
        driving N)."""
        _, _, h, w = source_image.shape
        b = kp_driving["value"].shape[0]
        heatmaps = self.heatmap_representations((h, w), kp_driving, kp_source)
        motions = self.sparse_motions((h, w), kp_driving, kp_source)
        sparse_deformed = self.deformed_sources(source_image, motions, b)
        out = {"sparse_deformed": sparse_deformed}
        features = torch.cat([heatmaps, sparse_deformed], dim=2).view(b, -1, h, w)
        prediction = self.hourglass(features)
        mask = F.softmax(self.mask(prediction), dim=1)
        out["mask"] = mask
        deformation = (motions.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1)
        out["deformation"] = deformation.permute(0, 2, 3, 1)
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out
