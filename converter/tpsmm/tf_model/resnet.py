"""resnet18 in TF with torchvision's module names (the TPSMM keypoint detector's backbone;
torch reference: converter/tpsmm/torch_model/resnet.py).

torch pads its strided convolutions and the max pool evenly on both sides, where TF's
SAME would put the odd pixel after: every such layer pads explicitly and runs VALID.
"""
from __future__ import annotations

import tensorflow as tf

from ...tf_model import ops
from ...tf_model.blocks import BatchNorm2d, Block, Conv2d, Sequential
from ..architecture import RESNET18_BLOCKS_PER_STAGE, RESNET18_STAGES, RESNET18_STEM_WIDTH
from .layers import Linear


class BasicBlock(Block):
    """3x3 conv (stride), BN, ReLU, 3x3 conv, BN, plus the input (through a 1x1 conv and
    BN where the shape changes), ReLU; torchvision's `relu` module runs twice (the
    second output tapped as relu#1, as a forward hook records a module's second call)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, 1, stride=stride, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential({
                "0": Conv2d(in_channels, out_channels, 1, 0, stride=stride, bias=False),
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
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages of basic blocks, global
    average pool, then a linear layer to num_outputs: (B, H, W, 3) -> (B, num_outputs)."""

    def __init__(self, num_outputs: int):
        super().__init__()
        width = RESNET18_STEM_WIDTH
        self.conv1 = Conv2d(3, width, 7, 3, stride=2, bias=False)
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
        h, w = ops.static_hw(x)
        # AdaptiveAvgPool2d((1, 1)) as one average pool over the whole map.
        x = self._tap(taps, tf.nn.avg_pool2d(x, ksize=(h, w), strides=(h, w), padding="VALID"),
                      ".avgpool")
        return self._tap(taps, self.fc(tf.reshape(x, [-1, x.shape[-1]]), taps))
