"""Dense motion: K+1 sparse motions blended by a predicted mask, plus an occlusion map.

Layout: every per-motion quantity is kept channels-last, (B, h, w, K+1), motion 0 being the
identity (background). The K+1 warped copies of the source are gathered side by side
along the width, (B, h, w*(K+1), C), so building the hourglass input
[h_0, img_0(C), h_1, img_1(C), ...] needs only rank-4 concat and reshape.
"""
from __future__ import annotations

import tensorflow as tf

from . import ops
from .blocks import AntiAliasInterpolation2d, Block, Conv2d, Hourglass


class DenseMotionNetwork(Block):
    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels,
                 estimate_occlusion_map=False, scale_factor=1, kp_variance=0.01,
                 align_corners=False):
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion,
                                   in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        if estimate_occlusion_map:
            self.occlusion = Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
        else:
            self.occlusion = None
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.scale_factor = scale_factor
        self.kp_variance = float(kp_variance)
        self.align_corners = bool(align_corners)
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def downsample(self, source_image, taps=None):
        """The source at the dense-motion resolution (the source itself at scale 1)."""
        if self.scale_factor == 1:
            return source_image
        return self.down(source_image, taps)

    def heatmap_representations(self, height, width, kp_driving, kp_source):
        """(B, h, w, K+1): gaussian(driving) - gaussian(source), zero background first."""
        heatmap = (ops.kp_gaussian(kp_driving, height, width, self.kp_variance)
                   - ops.kp_gaussian(kp_source, height, width, self.kp_variance))
        # The batch of the driving inputs, never of a broadcast result (issue 9).
        zeros = ops.tile_to_batch(tf.zeros([1, height, width, 1]), ops.batch_size(kp_driving))
        return tf.concat([zeros, heatmap], axis=-1)

    def sparse_motions(self, height, width, kp_driving, jac_driving, kp_source, jac_source):
        """x and y of the K+1 motions, each (B, h, w, K+1): the identity, then for each
        keypoint T_k(z) = J_k (z - d_k) + s_k with J_k = J_source,k @ inverse(J_driving,k)."""
        gx, gy = ops.grid_xy_maps(height, width)
        dx, dy = ops.kp_components(kp_driving)
        sx, sy = ops.kp_components(kp_source)
        zx, zy = gx - dx, gy - dy
        if jac_driving is not None:
            jac = ops.matmul2x2(ops.mat2x2_components(jac_source),
                                ops.inverse2x2_components(ops.mat2x2_components(jac_driving)))
            j00, j01, j10, j11 = jac
            zx, zy = j00 * zx + j01 * zy, j10 * zx + j11 * zy
        batch = ops.batch_size(kp_driving)
        motion_x = tf.concat([ops.tile_to_batch(gx, batch), zx + sx], axis=-1)
        motion_y = tf.concat([ops.tile_to_batch(gy, batch), zy + sy], axis=-1)
        return motion_x, motion_y

    def motion(self, source, kp_driving, jac_driving, kp_source, jac_source, taps=None):
        """Dense motion from the downsampled source (B, h, w, C); all inputs share a batch.

        Returns mask (B, h, w, K+1), deformation (B, h, w, 2) of (x, y), sparse_deformed
        (B, K+1, h, w, C) and, when estimated, occlusion_map (B, h, w, 1).
        """
        h, w = ops.static_hw(source)
        n, c = self.num_kp + 1, self.num_channels
        heatmaps = self.heatmap_representations(h, w, kp_driving, kp_source)
        motion_x, motion_y = self.sparse_motions(h, w, kp_driving, jac_driving, kp_source,
                                                 jac_source)
        # All K+1 warps in one grid_sample: motion k of pixel (i, j) sits at column j*n + k.
        warped = ops.grid_sample(source, tf.reshape(motion_x, [-1, h, w * n, 1]),
                                 tf.reshape(motion_y, [-1, h, w * n, 1]), self.align_corners)
        features = tf.concat([tf.reshape(heatmaps, [-1, h, w * n, 1]), warped], axis=-1)
        features = tf.reshape(features, [-1, h, w, n * (c + 1)])
        # (B, h*w, n, C) -> (B, n, h*w, C) in 4-D; only the output itself is 5-D.
        sparse_deformed = tf.reshape(
            tf.transpose(tf.reshape(warped, [-1, h * w, n, c]), [0, 2, 1, 3]),
            [-1, n, h, w, c])
        out = {"sparse_deformed": self._tap(taps, sparse_deformed, ":sparse_deformed",
                                            "sparse")}

        prediction = self.hourglass(features, taps)
        mask = tf.nn.softmax(self.mask(prediction, taps), axis=-1)
        out["mask"] = self._tap(taps, mask, ":mask")
        deformation = tf.stack([tf.reduce_sum(motion_x * mask, axis=-1),
                                tf.reduce_sum(motion_y * mask, axis=-1)], axis=-1)
        out["deformation"] = self._tap(taps, deformation, ":deformation", "raw")
        if self.occlusion is not None:
            occlusion = tf.sigmoid(self.occlusion(prediction, taps))
            out["occlusion_map"] = self._tap(taps, occlusion, ":occlusion_map")
        return out

    def __call__(self, source_image, kp_driving, jac_driving, kp_source, jac_source,
                 taps=None):
        return self.motion(self.downsample(source_image, taps), kp_driving, jac_driving,
                           kp_source, jac_source, taps)
