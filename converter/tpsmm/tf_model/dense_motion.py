"""Dense motion: K TPS warps plus the identity, blended by predicted contribution maps,
and four occlusion maps (H/8 .. H). Torch reference: torch_model/dense_motion.py.

Layout as FOMM's TF dense motion: per-transformation quantities channels-last, (B, h, w,
K+1), transformation 0 the identity; the K+1 warped copies of the source are sampled in
one grid_sample side by side along the width, (B, h, w*(K+1), C), so the hourglass
input [heatmaps (5K+1), source warped by transformation 0 (C), by 1 (C), ...] needs
only rank-4 reshapes and a concat.
"""
from __future__ import annotations

import tensorflow as tf

from ...tf_model import ops
from ...tf_model.blocks import (AntiAliasInterpolation2d, Block, Conv2d, Hourglass,
                                InstanceNorm2d, UpBlock2d, assign_paths)
from ..architecture import KP_VARIANCE, dense_motion_plan
from . import tps
from .grid import grid_maps


class DenseMotionNetwork(Block):
    def __init__(self, block_expansion, num_blocks, max_features, num_tps, num_channels,
                 scale_factor=0.25, kp_variance=KP_VARIANCE):
        """The original's arguments but bg (the demo never passes a background
        transform) and multi_mask (always True: architecture.network_arguments)."""
        super().__init__()
        plan = dense_motion_plan(block_expansion, num_blocks, max_features, num_tps,
                                 num_channels, scale_factor)
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.hourglass = Hourglass(block_expansion, plan.in_features, num_blocks, max_features,
                                   norm=InstanceNorm2d, every_output=True)
        self.maps = Conv2d(plan.outputs[-1], num_tps + 1, kernel_size=7, padding=3)
        self.up = [UpBlock2d(i, o, norm=InstanceNorm2d) for i, o in plan.up]
        self.occlusion = [Conv2d(c, 1, kernel_size=7, padding=3) for c, _ in plan.occlusion]
        self._occlusion_sources = [source for _, source in plan.occlusion]
        self.num_tps = num_tps
        self.num_channels = num_channels
        self.kp_variance = float(kp_variance)
        assign_paths(self)

    def downsample(self, source_image, taps=None):
        """The source at the dense-motion size (the source itself at scale 1)."""
        source_image = tf.convert_to_tensor(source_image, tf.float32)
        return self.down(source_image, taps) if self.scale_factor != 1 else source_image

    def heatmap_representations(self, height, width, kp_driving, kp_source):
        """(B, h, w, 5K+1): driving minus source gaussians, a zero channel first."""
        grid = grid_maps(height, width, kp_driving)
        heatmap = (ops.kp_gaussian(kp_driving, height, width, self.kp_variance, grid)
                   - ops.kp_gaussian(kp_source, height, width, self.kp_variance, grid))
        zeros = ops.tile_to_batch(tf.zeros([1, height, width, 1]), ops.batch_size(kp_driving))
        return tf.concat([zeros, heatmap], axis=-1)

    def transformations(self, height, width, kp_driving, theta, control_params):
        """x and y of the K+1 sampling grids, each (B, h, w, K+1): the identity, then
        each TPS's (theta and control_params float32 or double-floats: tps.warp_grid)."""
        warp_x, warp_y = tps.warp_grid(height, width, tps.control_points(kp_driving), theta,
                                       control_params)
        gx, gy = grid_maps(height, width, kp_driving)
        batch = ops.batch_size(kp_driving)
        return (tf.concat([ops.tile_to_batch(gx, batch), warp_x], axis=-1),
                tf.concat([ops.tile_to_batch(gy, batch), warp_y], axis=-1))

    def motion(self, source_down, kp_driving, kp_source, taps=None):
        """Everything after the downsample (which depends on the source only). The batch
        is kp_driving's; source_down and kp_source may have batch 1.

        Returns contribution_maps (B, h, w, K+1), deformation (B, h, w, 2) of (x, y),
        occlusion_map (the 4 maps (B, h_i, w_i, 1), coarsest first), tps_theta (B, K, 2,
        3) and tps_control_params (B, K, 5, 2)."""
        h, w = ops.static_hw(source_down)
        n, c = self.num_tps + 1, self.num_channels
        kp_driving = tf.convert_to_tensor(kp_driving, tf.float32)
        batch = ops.batch_size(kp_driving)
        source_down = ops.tile_to_batch(tf.convert_to_tensor(source_down, tf.float32), batch)
        kp_source = tf.convert_to_tensor(kp_source, tf.float32)
        heatmaps = self.heatmap_representations(h, w, kp_driving, kp_source)
        theta, control_params = tps.fit(kp_driving, kp_source)
        motion_x, motion_y = self.transformations(h, w, kp_driving, theta, control_params)
        # All K+1 warps in one grid_sample: transformation k of pixel (i, j) at column j*n + k.
        warped = ops.grid_sample(source_down, tf.reshape(motion_x, [-1, h, w * n, 1]),
                                 tf.reshape(motion_y, [-1, h, w * n, 1]), True)
        if taps is not None:  # (B, K+1, h, w, C), made only for the tap
            self._tap(taps, tf.transpose(tf.reshape(warped, [-1, h, w, n, c]), [0, 3, 1, 2, 4]),
                      ":deformed_source", "sparse")
        outputs = self.hourglass(tf.concat([heatmaps, tf.reshape(warped, [-1, h, w, n * c])],
                                           axis=-1), taps)
        contribution_maps = tf.nn.softmax(self.maps(outputs[-1], taps), axis=-1)
        deformation = tf.stack([tf.reduce_sum(motion_x * contribution_maps, axis=-1),
                                tf.reduce_sum(motion_y * contribution_maps, axis=-1)], axis=-1)
        features = {"hourglass": outputs, "up": []}
        for block in self.up:
            features["up"].append(block(features["up"][-1] if features["up"] else outputs[-1],
                                        taps))
        occlusion_map = [tf.sigmoid(conv(features[kind][i], taps))
                         for conv, (kind, i) in zip(self.occlusion, self._occlusion_sources)]
        theta, control_params = theta[0], control_params[0]  # rounded to float32
        out = {"contribution_maps": self._tap(taps, contribution_maps, ":contribution_maps"),
               "deformation": self._tap(taps, deformation, ":deformation", "raw"),
               "occlusion_map": [self._tap(taps, m, f":occlusion_map:{i}")
                                 for i, m in enumerate(occlusion_map)],
               "tps_theta": self._tap(taps, theta, ":tps_theta", "raw"),
               "tps_control_params": self._tap(taps, control_params, ":tps_control_params",
                                               "raw")}
        return out

    def __call__(self, source_image, kp_driving, kp_source, taps=None):
        return self.motion(self.downsample(source_image, taps), kp_driving, kp_source, taps)
