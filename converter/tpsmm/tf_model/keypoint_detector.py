"""Keypoint detector: resnet18 logits -> 5K keypoints in (-1, 1), groups of 5 per TPS."""
from __future__ import annotations

import tensorflow as tf

from ...tf_model.blocks import Block, assign_paths
from ..architecture import num_keypoints
from .resnet import ResNet18


class KPDetector(Block):
    """Raw [0, 1] RGB (B, H, W, 3), no ImageNet normalisation -> (B, 5K, 2) keypoints (x, y)."""

    def __init__(self, num_tps: int):
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = ResNet18(num_outputs=2 * num_keypoints(num_tps))
        assign_paths(self)

    def __call__(self, image, taps=None):
        logits = self.fg_encoder(tf.convert_to_tensor(image, tf.float32), taps)
        keypoints = tf.reshape(tf.sigmoid(logits) * 2 - 1, [-1, num_keypoints(self.num_tps), 2])
        return self._tap(taps, keypoints, ":fg_kp", "raw")
