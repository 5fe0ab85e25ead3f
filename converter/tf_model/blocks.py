"""Building blocks of FOMM as tf.Modules whose attribute tree mirrors the torch modules.

TPSMM's blocks are the same with InstanceNorm2d in place of BatchNorm2d (`norm`), and its
hourglass returns every decoder output (`every_output`), as on the torch side.

A variable's dotted path (`named_variables`) reads like the torch state_dict key it comes
from: `encoder.down_blocks.0.conv.kernel` <- `encoder.down_blocks.0.conv.weight`.

Per-layer taps: each module knows its dotted path (set by `assign_paths` on the root)
and, when called eagerly with a `taps` dict, records its output there under the name a
torch forward hook on the same module would have, in the torch layout (NCHW).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from . import ops
from ..architecture import anti_alias_kernel_size, downsample_step, hourglass_channels

ROOT = "<root>"


# ---------------------------------------------------------------- module tree
def _children(module: tf.Module) -> Iterator[tuple[str, object]]:
    """(name, value) of a module's public attributes, lists expanded by index."""
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                yield f"{name}.{i}", item
        else:
            yield name, value


def named_variables(module: tf.Module, prefix: str = "") -> list[tuple[str, tf.Variable]]:
    """Every variable of a tf.Module tree by dotted path, in attribute order."""
    out = []
    for name, value in _children(module):
        path = f"{prefix}{name}"
        if isinstance(value, tf.Variable):
            out.append((path, value))
        elif isinstance(value, tf.Module):
            out.extend(named_variables(value, f"{path}."))
    return out


def named_modules(module: tf.Module, prefix: str = "") -> list[tuple[str, tf.Module]]:
    """Every submodule by dotted path (the root as '')."""
    out = [(prefix.rstrip("."), module)]
    for name, value in _children(module):
        if isinstance(value, tf.Module):
            out.extend(named_modules(value, f"{prefix}{name}."))
    return out


def assign_paths(root: tf.Module) -> None:
    """Give every module of the tree its dotted path, the name its taps are recorded under."""
    for path, module in named_modules(root):
        if isinstance(module, Block):
            module._path = path or ROOT


def to_torch_layout(value: tf.Tensor, layout: str = "nhwc") -> np.ndarray:
    """A TF tensor as numpy in the layout torch would hold it ("nhwc": a 4-D tensor as
    NCHW, the (B, features) outputs of linear layers as they are)."""
    array = value.numpy()
    if layout == "nhwc":
        return np.transpose(array, (0, 3, 1, 2)) if array.ndim == 4 else array
    if layout == "sparse":  # (B, K+1, h, w, C) -> (B, K+1, C, h, w)
        return np.transpose(array, (0, 1, 4, 2, 3))
    if layout == "raw":
        return array
    raise ValueError(f"unknown layout {layout!r}")


class Block(tf.Module):
    """A tf.Module that can record its outputs under its torch module path."""

    _path = ROOT

    def _tap(self, taps, value, suffix: str = "", layout: str = "nhwc"):
        """Record `value` as `<path><suffix>` (suffix: '.child', ':key' or ':index')."""
        if taps is not None:
            taps[self._name_for(suffix)] = to_torch_layout(value, layout)
        return value

    def _name_for(self, suffix: str) -> str:
        if self._path == ROOT and suffix.startswith("."):
            return suffix[1:]
        return f"{self._path}{suffix}"


def _zeros(shape) -> tf.Variable:
    return tf.Variable(tf.zeros(shape, tf.float32), trainable=False)


# ---------------------------------------------------------------- layers
class Conv2d(Block):
    """Conv; kernel HWIO [k, k, in, out] (torch OIHW), bias [out] (None: bias-free)."""

    stride = 1

    def __init__(self, in_features: int, out_features: int, kernel_size: int, padding: int,
                 stride: int = 1, bias: bool = True):
        super().__init__()
        self.kernel = _zeros([kernel_size, kernel_size, in_features, out_features])
        self.bias = _zeros([out_features]) if bias else None
        self.padding = padding
        self.stride = stride

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.conv2d(x, self.kernel, self.bias, self.padding,
                                          self.stride))


class BatchNorm2d(Block):
    def __init__(self, features: int):
        super().__init__()
        self.gamma = _zeros([features])
        self.beta = _zeros([features])
        self.moving_mean = _zeros([features])
        self.moving_variance = _zeros([features])

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.batch_norm(x, self.gamma, self.beta, self.moving_mean,
                                              self.moving_variance))


class InstanceNorm2d(Block):
    """Affine InstanceNorm2d: per-instance statistics, also at inference."""

    def __init__(self, features: int):
        super().__init__()
        self.gamma = _zeros([features])
        self.beta = _zeros([features])

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.instance_norm(x, self.gamma, self.beta))


class AntiAliasInterpolation2d(Block):
    """Gaussian blur then subsample by int(1/scale); the kernel comes from the checkpoint."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        size = anti_alias_kernel_size(scale)
        self.kernel = _zeros([size, size, channels, 1])
        self.step = downsample_step(scale)

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.anti_alias_downsample(x, self.kernel, self.step))


# ---------------------------------------------------------------- blocks
class DownBlock2d(Block):
    """Conv, norm, ReLU, average pool 2x2."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=BatchNorm2d):
        super().__init__()
        self.conv = Conv2d(in_features, out_features, kernel_size, padding)
        self.norm = norm(out_features)

    def __call__(self, x, taps=None):
        out = tf.nn.relu(self.norm(self.conv(x, taps), taps))
        out = self._tap(taps, ops.avg_pool2x2(out), ".pool")
        return self._tap(taps, out)


class UpBlock2d(Block):
    """Nearest upsample x2, conv, norm, ReLU."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=BatchNorm2d):
        super().__init__()
        self.conv = Conv2d(in_features, out_features, kernel_size, padding)
        self.norm = norm(out_features)

    def __call__(self, x, taps=None):
        out = self.conv(ops.upsample_nearest2x(x), taps)
        return self._tap(taps, tf.nn.relu(self.norm(out, taps)))


class SameBlock2d(Block):
    """Conv, norm, ReLU at the same resolution."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, norm=BatchNorm2d):
        super().__init__()
        self.conv = Conv2d(in_features, out_features, kernel_size, padding)
        self.norm = norm(out_features)

    def __call__(self, x, taps=None):
        return self._tap(taps, tf.nn.relu(self.norm(self.conv(x, taps), taps)))


class ResBlock2d(Block):
    """Pre-activation residual block: norm, ReLU, conv, norm, ReLU, conv, plus the input."""

    def __init__(self, features, kernel_size=3, padding=1, norm=BatchNorm2d):
        super().__init__()
        self.conv1 = Conv2d(features, features, kernel_size, padding)
        self.conv2 = Conv2d(features, features, kernel_size, padding)
        self.norm1 = norm(features)
        self.norm2 = norm(features)

    def __call__(self, x, taps=None):
        out = self.conv1(tf.nn.relu(self.norm1(x, taps)), taps)
        out = self.conv2(tf.nn.relu(self.norm2(out, taps)), taps)
        return self._tap(taps, out + x)


class Sequential(Block):
    """Children r0, r1, ... applied in order (torch nn.Sequential with named modules)."""

    def __init__(self, blocks: dict):
        super().__init__()
        self._order = list(blocks)
        for name, block in blocks.items():
            setattr(self, name, block)

    def __call__(self, x, taps=None):
        for name in self._order:
            x = getattr(self, name)(x, taps)
        return self._tap(taps, x)


class Encoder(Block):
    def __init__(self, channels, norm=BatchNorm2d):
        super().__init__()
        self.down_blocks = [DownBlock2d(i, o, norm=norm) for i, o in channels]

    def __call__(self, x, taps=None):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1], taps))
        return _tap_output(self, taps, outs)


class Decoder(Block):
    """Up blocks, each output concatenated with the encoder's skip; returns the last
    output, or the list of every one (every_output)."""

    every_output = False

    def __init__(self, channels, norm=BatchNorm2d, every_output=False):
        super().__init__()
        self.up_blocks = [UpBlock2d(i, o, norm=norm) for i, o in channels]
        self.every_output = every_output

    def __call__(self, features, taps=None):
        features = list(features)
        out = features.pop()
        outs = []
        for block in self.up_blocks:
            out = tf.concat([block(out, taps), features.pop()], axis=-1)
            outs.append(out)
        return _tap_output(self, taps, outs if self.every_output else out)


class Hourglass(Block):
    """U-Net; the (last) output has block_expansion + in_features channels."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256,
                 norm=BatchNorm2d, every_output=False):
        super().__init__()
        encoder, decoder = hourglass_channels(block_expansion, in_features, num_blocks,
                                              max_features)
        self.encoder = Encoder(encoder, norm)
        self.decoder = Decoder(decoder, norm, every_output)
        self.out_filters = block_expansion + in_features

    def __call__(self, x, taps=None):
        return _tap_output(self, taps, self.decoder(self.encoder(x, taps), taps))


def _tap_output(block: Block, taps, out):
    """Record a block's output, a list by index as torch's hooks name it (`:<i>`)."""
    if isinstance(out, list):
        for i, value in enumerate(out):
            block._tap(taps, value, f":{i}")
        return out
    return block._tap(taps, out)
