"""The keypoint detector's head in double-float, for any tensor library: resnet18's global
average pool and fc layer, then 2 * sigmoid(z) - 1, from the last block's float32 output.

The thin-plate warps multiply keypoint error about a hundredfold into the frames, so the
exported detectors put their keypoints closer to float64 than float32 arithmetic lands
(issue 21; scripts/measure_tpsmm_kp_noise.py). On tiny-rect, from float64's last block
output rounded to float32, the float32 head left the keypoints 3.9e-7 (TF) to 6.5e-7
(TFLite) from float64; this head 9.5e-8 (TF), 1.0e-7 (TFLite), 1.4e-7 (ONNX), near the
rounding of its own output. The pool's sum and the fc's dot products are double-float
(double_float.py: elementwise ops, slicing and broadcasts of at most 3-D tensors), and the
keypoint is tanh(z / 2), the same function, taken from the logit's high part with a
first-order correction for its low part; as 2 * sigmoid - 1 (TF's and TFLite's sigmoid
round worse) the same head gave 1.9e-7 (TF).

The original's float32 arithmetic stays the torch reference (torch_model/keypoint_detector.py);
this head is what the exported graphs compute (TF formats, ONNX).
"""
from __future__ import annotations

from .. import double_float as df


def keypoint_coordinates(features, weight, bias, tanh):
    """features (B, N, C): the last block's output, its N positions on axis 1; weight
    (1, O, C) and bias (1, O, 1): the fc layer's (torch's layout); tanh: the library's.
    Returns (coordinates (B, O, 1), pooled (B, 1, C), logits (B, O, 1)), the last two the
    high parts of the head's double-floats (the original's modules' outputs, for taps)."""
    pooled = df.divide_float(df.total((features, features * 0), 1), float(int(features.shape[1])))
    logits = df.add_float(df.dot_float(pooled, weight, 2), bias)
    t = tanh(logits[0] * 0.5)
    return t + (1 - t * t) * (logits[1] * 0.5), pooled[0], logits[0]
