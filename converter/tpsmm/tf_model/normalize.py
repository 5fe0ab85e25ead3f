"""The driving keypoints the generator is given, in the graph: relative (the original
demo's default) or standard, chosen by a 0/1 input. The avd mode is a network of its
own (avd.py). Torch reference: torch_model/normalize.py.

relative: (kp_driving - kp_driving_initial) * scale + kp_source, always scaled (unlike
FOMM there is no switch), scale = sqrt(hull area of kp_source[0] / hull area of
kp_driving_initial[0]) over all 5K points, from FOMM's int32-exact hull
(converter/tf_model/process_kp.py, movement_scale; 1 when a hull is degenerate, where the
original raises). standard: kp_driving as it is.
"""
from __future__ import annotations

import tensorflow as tf

from ...tf_model.process_kp import movement_scale


class ProcessKpDriving(tf.Module):
    """__call__(kp_driving (B, 5K, 2), kp_driving_initial and kp_source (1 or B, 5K, 2),
    use_relative_movement (scalar 0.0 or 1.0)) -> {"fg_kp": (B, 5K, 2),
    "adapt_movement_scale": (1,), the scale relative motion uses}."""

    def __call__(self, kp_driving, kp_driving_initial, kp_source, use_relative_movement):
        driving = tf.convert_to_tensor(kp_driving, tf.float32)
        initial = tf.convert_to_tensor(kp_driving_initial, tf.float32)
        source = tf.convert_to_tensor(kp_source, tf.float32)
        scale = movement_scale(source, initial)
        moved = (driving - initial) * tf.reshape(scale, [1, 1, 1]) + source
        relative = tf.reshape(tf.convert_to_tensor(use_relative_movement, tf.float32), []) > 0.5
        return {"fg_kp": tf.where(relative, moved, driving), "adapt_movement_scale": scale}
