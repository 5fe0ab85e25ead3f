"""Convolutions summed over their input channels in chunks, for runtimes that accumulate
each output of a convolution term by term (TFLite: XNNPACK and the reference kernels).

    tflite_kp_detector = chunked_accumulation(kp_detector, KP_DETECTOR_CHUNK)

A 3x3 convolution over 1024 channels is a 9216-term dot product per output; summed in
one float32 accumulator its rounding grows with the term count, and the keypoint
detector's temperature-0.1 softmax multiplies what reaches the heatmap logits by ten.
Measured on vox-256 (oracle weights, against a float64 run of the original): TFLite's
keypoints were 4.3e-6 RMS off (max 1.5e-5) where torch's float32 is 1.7e-6; with the
input channels in chunks of 16, each convolved separately and the partial sums added
pairwise, 1.8e-6 (max 6.8e-6), for 3 ms more per frame. Same function and variables; TF's
own kernels (Eigen) already block their sums, so the SavedModel keeps the plain graph.
"""
from __future__ import annotations

import tensorflow as tf

from ..algebra import pairwise_sum
from . import ops
from .blocks import Block, Conv2d

KP_DETECTOR_CHUNK = 16


class ChunkedConv2d(Conv2d):
    """A Conv2d (its variables shared) over `chunk` input channels at a time."""

    def __init__(self, ref: Conv2d, chunk: int):
        Block.__init__(self)
        self.kernel, self.bias, self.padding = ref.kernel, ref.bias, ref.padding
        self.stride = ref.stride
        self.chunk = chunk
        self._path = ref._path

    def __call__(self, x, taps=None):
        x, mode = ops.conv_padding(x, self.kernel, self.padding, self.stride)
        channels = int(self.kernel.shape[2])
        # Slice ends inside the tensor: the GPU delegate refuses an end past it ("Output
        # shape mismatch"), which left the detector's head to the CPU.
        parts = [tf.nn.conv2d(x[..., i:min(i + self.chunk, channels)],
                              self.kernel[:, :, i:i + self.chunk], strides=self.stride,
                              padding=mode)
                 for i in range(0, channels, self.chunk)]
        out = pairwise_sum(parts)
        return self._tap(taps, out if self.bias is None else tf.nn.bias_add(out, self.bias))


def chunked_accumulation(module: Block, chunk: int) -> Block:
    """A copy of a Block tree whose Conv2d layers over more than `chunk` input channels
    are ChunkedConv2d; variables and every other attribute are shared, not copied."""
    def convert(value):
        if isinstance(value, Conv2d):
            return ChunkedConv2d(value, chunk) if int(value.kernel.shape[2]) > chunk else value
        if isinstance(value, Block):
            return chunked_accumulation(value, chunk)
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    clone = type(module).__new__(type(module))
    Block.__init__(clone)
    own = set(vars(clone))  # tf.Module's name and tracking state: the clone's own
    for name, value in vars(module).items():
        if name not in own:
            setattr(clone, name, convert(value))
    return clone
