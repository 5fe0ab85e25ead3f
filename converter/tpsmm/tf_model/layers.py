"""The TPSMM layers FOMM's TF blocks do not have: linear layers, BatchNorm1d and ReLU as
modules (the AVD network's and resnet18's), with torch's module names."""
from __future__ import annotations

import tensorflow as tf

from ...tf_model.blocks import BatchNorm2d, Block, Sequential, _zeros


class Linear(Block):
    """x @ kernel + bias; kernel [in, out] (torch's weight [out, in], transposed)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.kernel = _zeros([in_features, out_features])
        self.bias = _zeros([out_features])

    def __call__(self, x, taps=None):
        return self._tap(taps, tf.matmul(x, self.kernel) + self.bias)


class BatchNorm1d(BatchNorm2d):
    """BatchNorm over (B, features): BatchNorm2d's arithmetic, its factors (1, C)."""


class ReLU(Block):
    def __call__(self, x, taps=None):
        return self._tap(taps, tf.nn.relu(x))


def mlp(in_features: int, widths, out_features: int) -> Sequential:
    """Linear, BatchNorm1d, ReLU for each width, then a Linear, at the indices of the
    original's nn.Sequential (0, 1, 2, 3, ...)."""
    layers = []
    for width in widths:
        layers += [Linear(in_features, width), BatchNorm1d(width), ReLU()]
        in_features = width
    layers.append(Linear(in_features, out_features))
    return Sequential({str(i): layer for i, layer in enumerate(layers)})
