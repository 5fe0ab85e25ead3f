"""Animation via disentanglement: keypoints of the source (identity) and of a driving
frame (pose) -> keypoints with the source's identity and the driving pose."""
from __future__ import annotations

import torch
from torch import nn

from ..architecture import AVD_WIDTHS, num_keypoints


def _mlp(in_features: int, widths, out_features: int) -> nn.Sequential:
    """Linear, BatchNorm1d, ReLU for each width, then a Linear (the original's indices)."""
    layers = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.BatchNorm1d(width), nn.ReLU()]
        in_features = width
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


class AVDNetwork(nn.Module):
    def __init__(self, num_tps: int, id_bottle_size: int = 64, pose_bottle_size: int = 64):
        super().__init__()
        self.num_points = num_keypoints(num_tps)
        size = 2 * self.num_points
        self.id_encoder = _mlp(size, AVD_WIDTHS, id_bottle_size)
        self.pose_encoder = _mlp(size, AVD_WIDTHS, pose_bottle_size)
        self.decoder = _mlp(pose_bottle_size + id_bottle_size, AVD_WIDTHS[::-1], size)

    def forward(self, kp_source, kp_driving):
        """(B or 1, 5K, 2), (B, 5K, 2) -> (B, 5K, 2); the batch is the driving one."""
        batch = kp_driving.shape[0]
        pose = self.pose_encoder(kp_driving.reshape(batch, -1))
        identity = self.id_encoder(kp_source.reshape(kp_source.shape[0], -1))
        identity = identity.expand(batch, -1)
        return self.decoder(torch.cat([pose, identity], dim=1)).view(batch, self.num_points, 2)
