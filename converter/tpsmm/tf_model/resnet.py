"""resnet18 in TF with torchvision's module names (the TPSMM keypoint detector's backbone;
torch reference: converter/tpsmm/torch_model/resnet.py).

torch pads its strided convolutions and the max pool evenly on both sides, where TF's
SAME would put the odd pixel after: every such layer pads explicitly and runs VALID.

Every convolution over more than CHUNK input channels sums them CHUNK at a time, the
partial sums added pairwise (tf_model/accumulation.py): TFLite's kernels, and here TF's
too, accumulate a 3x3 convolution's 576 to 4608 terms in one float32 sum, and the warps
amplify the keypoints' rounding about a hundredfold (issue 21). Measured on tiny-rect
(scripts/measure_tpsmm_kp_noise.py, with the double-float head): the keypoints 5.1e-7
(TF) and 5.5e-7 (TFLite) from float64 in one sum, 2.3e-7 and 2.6e-7 in chunks of 32
(16: the same); the original's own 3.6e-7. Cost at vox-256, TFLite, one thread: 50.8 to
54.1 ms a frame.
"""
from __future__ import annotations

import tensorflow as tf

from ...tf_model.accumulation import ChunkedConv2d
from ...tf_model.blocks import BatchNorm2d, Block, Conv2d, Sequential
from ..architecture import RESNET18_BLOCKS_PER_STAGE, RESNET18_STAGES, RESNET18_STEM_WIDTH
from .layers import Linear

CHUNK = 32


def conv(in_channels: int, out_channels: int, size: int, padding: int, stride: int):
    """A bias-free Conv2d, summed CHUNK input channels at a time where it has more."""
    layer = Conv2d(in_channels, out_channels, size, padding, stride=stride, bias=False)
    return ChunkedConv2d(layer, CHUNK) if in_channels > CHUNK else layer


class BasicBlock(Block):
    """3x3 conv (stride), BN, ReLU, 3x3 conv, BN, plus the input (through a 1x1 conv and
    BN where the shape changes), ReLU; torchvision's `relu` module runs twice (the
    second output tapped as relu#1, as a forward hook records a module's second call)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = conv(in_channels, out_channels, 3, 1, stride)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, 1, 1)
        self.bn2 = BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential({
                "0": conv(in_channels, out_channels, 1, 0, stride),
                "1": BatchNorm2d(out_channels)})

    def __call__(self, x, taps=None):
        out = self._tap(taps, tf.nn.relu(self.bn1(self.conv1(x, taps), taps)), ".relu")
        out = self.bn2(self.conv2(out, taps), taps)
        identity = x if self.downsample is None else self.downsample(x, taps)
        out = self._tap(taps, tf.nn.relu(out + identity), ".relu#1")
        return self._tap(taps, out)


def max_pool3x3s2(x: tf.Tensor) -> tf.Tensor:
    """torch MaxPool2d(3, stride 2, padding 1) of a ReLU's output: torch pads with -inf,
    but every value is >= 0 here, so zeros give the same maxima."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


class ResNet18(Block):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and four stages of basic blocks:
    (B, H, W, 3) -> the last block's (B, h, w, 512). The global average pool and the
    linear layer to num_outputs (`fc`, its variables here) are the keypoint detector's
    double-float head (tpsmm/keypoint_head.py)."""

    def __init__(self, num_outputs: int):
        super().__init__()
        width = RESNET18_STEM_WIDTH
        self.conv1 = conv(3, width, 7, 3, 2)
        self.bn1 = BatchNorm2d(width)
        self._stages = []
        for i, (out, stride) in enumerate(RESNET18_STAGES, start=1):
            blocks = {str(j): BasicBlock(width if j == 0 else out, out, stride if j == 0 else 1)
                      for j in range(RESNET18_BLOCKS_PER_STAGE)}
            setattr(self, f"layer{i}", Sequential(blocks))
            self._stages.append(f"layer{i}")
            width = out
        self.fc = Linear(width, num_outputs)

    def __call__(self, x, taps=None):
        x = self._tap(taps, tf.nn.relu(self.bn1(self.conv1(x, taps), taps)), ".relu")
        x = self._tap(taps, max_pool3x3s2(x), ".maxpool")
        for stage in self._stages:
            x = getattr(self, stage)(x, taps)
        return x
