"""TFLite-safe building ops shared by the TF models (builtin ops only, explicit broadcasting)."""
from __future__ import annotations

import tensorflow as tf


def inverse2x2(m: tf.Tensor) -> tf.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices: [[d, -b], [-c, a]] / (ad - bc)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    inv = tf.stack([d / det, -b / det, -c / det, a / det], axis=-1)
    return tf.reshape(inv, tf.shape(m))
