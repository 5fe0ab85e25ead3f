"""Keypoint detector: hourglass features -> spatial softmax -> expected (x, y) and jacobian."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import ops
from .blocks import AntiAliasInterpolation2d, Block, Conv2d, Hourglass, assign_paths


class KPDetector(Block):
    """kp_detector(image (B, H, W, C)) -> {"value": (B, K, 2), "jacobian": (B, K, 2, 2)}."""

    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks,
                 temperature, estimate_jacobian=False, scale_factor=1,
                 single_jacobian_map=False, pad=0, frame_shape=None):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels,
                                   max_features=max_features, num_blocks=num_blocks)
        self.kp = Conv2d(self.predictor.out_filters, num_kp, kernel_size=7, padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps,
                                   kernel_size=7, padding=pad)
        else:
            self.jacobian = None
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.temperature = float(temperature)
        self.scale_factor = scale_factor
        self._frame_shape = tuple(frame_shape) if frame_shape is not None else None
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        assign_paths(self)

    @property
    def frame_shape(self) -> tuple | None:
        return self._frame_shape

    @property
    def estimate_jacobian(self) -> bool:
        return self.jacobian is not None

    def __call__(self, image, taps=None):
        x = tf.convert_to_tensor(image, tf.float32)
        if self.scale_factor != 1:
            x = self.down(x, taps)
        features = self.predictor(x, taps)
        prediction = self.kp(features, taps)
        h, w = ops.static_hw(prediction)
        k = self.num_kp
        # Softmax over all h*w positions of each keypoint's map: (B, K, h*w).
        logits = tf.transpose(tf.reshape(prediction, [-1, h * w, k]), [0, 2, 1])
        heatmap = tf.nn.softmax(logits / self.temperature, axis=-1)
        # The grid spans the heatmap's own size (smaller than the image's with pad 0).
        grid = np.tile(ops.coordinate_grid(h, w).reshape(1, 1, h * w, 2), [1, k, 1, 1])
        value = expectation(heatmap, tf.constant(grid), h, w)
        out = {"value": self._tap(taps, value, ":value", "raw")}
        if self.jacobian is not None:
            maps = tf.reshape(self.jacobian(features, taps),
                              [-1, h * w, self.num_jacobian_maps, 4])
            # Channel 4*j + c is component c of map j: (B, J, hw, 4), J = 1 or K.
            maps = tf.transpose(maps, [0, 2, 1, 3])
            if self.num_jacobian_maps != k:  # K copies (a TILE would be folded back)
                maps = tf.concat([maps] * k, axis=1)
            jacobian = expectation(heatmap, maps, h, w)
            jacobian = tf.reshape(jacobian, [-1, k, 2, 2])
            out["jacobian"] = self._tap(taps, jacobian, ":jacobian", "raw")
        return out


def expectation(heatmap: tf.Tensor, maps: tf.Tensor, h: int, w: int) -> tf.Tensor:
    """Sum over the h*w positions of heatmap * maps: (B, K, hw) with (B or 1, K, hw, C)
    -> (B, K, C), as the original's multiply-and-sum, not as one dot product: TFLite's
    BATCH_MATMUL accumulates its h*w (3364) terms one by one, 1e-5 off on vox-256
    jacobians; a sum over each row, then over the rows, is as exact as torch's. maps has
    all K (copied by the caller): the GPU delegate's MUL broadcasts one operand only."""
    k = heatmap.shape[1]
    weighted = tf.reshape(heatmap, [-1, k, h * w, 1]) * maps
    c = weighted.shape[-1]
    rows = tf.reduce_sum(tf.reshape(weighted, [-1, h, w, c]), axis=2)
    return tf.reshape(tf.reduce_sum(rows, axis=1), [-1, k, c])


def kp_detector_from_spec(spec) -> KPDetector:
    """The TF kp_detector of a Spec (variables zero until weights are applied)."""
    return KPDetector(**spec.kp_detector_kwargs(), frame_shape=spec.frame_shape)
