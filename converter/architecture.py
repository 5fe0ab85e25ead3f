"""FOMM's channel plans, shared by the torch reference and the TF graph (framework-free)."""
from __future__ import annotations


def _widths(block_expansion, max_features):
    return lambda i: min(max_features, block_expansion * 2 ** i)


def hourglass_channels(block_expansion, in_features, num_blocks, max_features):
    """(encoder, decoder) lists of (in, out) channels of each block, in module order.

    Encoder block i: (in_features if i == 0 else width(i)) -> width(i+1); the decoder runs
    i = n-1 .. 0 and takes its input concatenated with the skip (twice the width) except
    for the innermost block. The hourglass outputs block_expansion + in_features channels.
    """
    width = _widths(block_expansion, max_features)
    encoder = [(in_features if i == 0 else width(i), width(i + 1)) for i in range(num_blocks)]
    decoder = [((1 if i == num_blocks - 1 else 2) * width(i + 1), width(i))
               for i in reversed(range(num_blocks))]
    return encoder, decoder


def generator_channels(block_expansion, max_features, num_down_blocks):
    """(down, up, bottleneck) channel plans of the generator, in module order."""
    width = _widths(block_expansion, max_features)
    down = [(width(i), width(i + 1)) for i in range(num_down_blocks)]
    up = [(width(num_down_blocks - i), width(num_down_blocks - i - 1))
          for i in range(num_down_blocks)]
    return down, up, width(num_down_blocks)
