"""Animation via disentanglement: the source keypoints (identity) and a driving frame's
(pose) -> keypoints with the source's identity and the driving pose."""
from __future__ import annotations

import tensorflow as tf

from ...tf_model import ops
from ...tf_model.blocks import Block, assign_paths
from ..architecture import AVD_WIDTHS, num_keypoints
from .layers import mlp


class AVDNetwork(Block):
    def __init__(self, num_tps: int, id_bottle_size: int = 64, pose_bottle_size: int = 64):
        super().__init__()
        self.num_points = num_keypoints(num_tps)
        size = 2 * self.num_points
        self.id_encoder = mlp(size, AVD_WIDTHS, id_bottle_size)
        self.pose_encoder = mlp(size, AVD_WIDTHS, pose_bottle_size)
        self.decoder = mlp(pose_bottle_size + id_bottle_size, AVD_WIDTHS[::-1], size)
        assign_paths(self)

    def __call__(self, kp_source, kp_driving, taps=None):
        """(1 or B, 5K, 2), (B, 5K, 2) -> (B, 5K, 2); the batch is the driving one."""
        kp_source = tf.convert_to_tensor(kp_source, tf.float32)
        kp_driving = tf.convert_to_tensor(kp_driving, tf.float32)
        size = 2 * self.num_points
        pose = self.pose_encoder(tf.reshape(kp_driving, [-1, size]), taps)
        identity = self.id_encoder(tf.reshape(kp_source, [-1, size]), taps)
        identity = ops.tile_to_batch(identity, ops.batch_size(kp_driving))
        out = self.decoder(tf.concat([pose, identity], axis=1), taps)
        return self._tap(taps, tf.reshape(out, [-1, self.num_points, 2]), ":fg_kp", "raw")
