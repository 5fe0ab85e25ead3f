"""Keypoint detector: resnet18 logits -> 5K keypoints in (-1, 1), groups of 5 per TPS."""
from __future__ import annotations

import torch
from torch import nn

from ..architecture import num_keypoints
from ..keypoint_head import keypoint_coordinates
from .resnet import ResNet18


class KPDetector(nn.Module):
    """Raw [0, 1] RGB (no ImageNet normalisation) -> (B, 5K, 2) keypoints (x, y)."""

    def __init__(self, num_tps: int):
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = ResNet18(num_outputs=2 * num_keypoints(num_tps))

    def forward(self, image):
        logits = self.fg_encoder(image)
        keypoints = torch.sigmoid(logits) * 2 - 1
        return keypoints.view(logits.shape[0], num_keypoints(self.num_tps), 2)


def exported_head(detector: KPDetector, features: torch.Tensor) -> torch.Tensor:
    """detector's keypoints from its resnet18 body's output (fg_encoder.features) as the
    exported graphs compute them (the ONNX file's): the double-float head
    (tpsmm/keypoint_head.py)."""
    fc = detector.fg_encoder.fc
    coordinates, _, _ = keypoint_coordinates(
        features.flatten(2).transpose(1, 2), fc.weight[None], fc.bias[None, :, None],
        torch.tanh)
    return coordinates.view(features.shape[0], num_keypoints(detector.num_tps), 2)
