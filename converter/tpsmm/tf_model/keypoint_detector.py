"""Keypoint detector: resnet18 logits -> 5K keypoints in (-1, 1), groups of 5 per TPS; the
head (pool, fc, 2 sigmoid - 1) in double-float (tpsmm/keypoint_head.py)."""
from __future__ import annotations

import tensorflow as tf

from ...tf_model.blocks import Block, assign_paths
from ..architecture import num_keypoints
from ..keypoint_head import keypoint_coordinates
from .resnet import ResNet18


class KPDetector(Block):
    """Raw [0, 1] RGB (B, H, W, 3), no ImageNet normalisation -> (B, 5K, 2) keypoints (x, y)."""

    def __init__(self, num_tps: int):
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = ResNet18(num_outputs=2 * num_keypoints(num_tps))
        assign_paths(self)

    def __call__(self, image, taps=None):
        return self.head(self.fg_encoder(tf.convert_to_tensor(image, tf.float32), taps), taps)

    def head(self, features, taps=None):
        """resnet18's pool and fc, then 2 sigmoid - 1, in double-float, from the last
        block's (B, h, w, 512); the original's avgpool and fc outputs tapped."""
        encoder, fc = self.fg_encoder, self.fg_encoder.fc
        _, h, w, c = features.shape
        coordinates, pooled, logits = keypoint_coordinates(
            tf.reshape(features, [-1, h * w, c]), tf.transpose(fc.kernel)[None],
            tf.reshape(fc.bias, [1, -1, 1]), tf.tanh)
        encoder._tap(taps, tf.reshape(pooled, [-1, 1, 1, c]), ".avgpool")
        encoder._tap(taps, fc._tap(taps, tf.reshape(logits, [-1, logits.shape[1]])))
        keypoints = tf.reshape(coordinates, [-1, num_keypoints(self.num_tps), 2])
        return self._tap(taps, keypoints, ":fg_kp", "raw")
