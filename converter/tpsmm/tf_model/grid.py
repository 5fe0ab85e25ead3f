"""The coordinate grid as the TPSMM graph uses it (the TPS evaluation, the identity
transformation, the heatmaps): computed at run time, so that it stays exact in the
float16 TFLite files.

TFLite's float16 pass rounds every float constant of a file, and the grid's values
2i/(n-1) - 1 are not float16 numbers: rounded (up to 2.4e-4), they moved the tiny
config's avd frame by 9.0e-3 (alone), of the 1.3e-2 the float16 generator was off
(docs/performance.md). Here the grid is computed in the graph from values float16
holds exactly (the indices i and n - 1, integers up to 2048, then 2 and 1), in the torch
reference's order, 2 * (i / (n - 1)) - 1: ops.coordinate_grid's float32 values bit for bit
in every variant. The converter folds arithmetic on constants into one constant (and turns
a division by a constant into a multiplication by its rounded reciprocal), so both
operands of the division carry a run-time zero, 0 times one element of a run-time input.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

# Float16 holds every integer up to 2**11 exactly.
LARGEST_EXACT = 2 ** 11


def runtime_zero(anchor: tf.Tensor) -> tf.Tensor:
    """A (1, 1, 1, 1) zero the converter cannot fold: 0 times anchor's first element (NaN
    only where that element is NaN or infinite, and then the keypoints the grid meets
    are too)."""
    anchor = tf.convert_to_tensor(anchor, tf.float32)  # eager callers pass arrays too
    first = anchor[(slice(0, 1),) * anchor.shape.rank]
    return 0.0 * tf.reshape(first, [1, 1, 1, 1])


def grid_maps(height: int, width: int, anchor: tf.Tensor,
              copies: int = 1) -> tuple[tf.Tensor, tf.Tensor]:
    """x and y of the (height, width) grid, each (1, height, width, copies), equal to
    ops.coordinate_grid's; anchor: any run-time tensor of the graph (runtime_zero)."""
    if max(height, width) - 1 > LARGEST_EXACT:
        raise ValueError(f"a {height}x{width} grid has indices float16 does not hold")
    zero = runtime_zero(anchor)

    def axis(index: np.ndarray, n: int) -> tf.Tensor:
        index = np.broadcast_to(index.astype(np.float32), (1, height, width, copies))
        return (tf.constant(index) + zero) / (np.float32(n - 1) + zero) * 2.0 - 1.0
    return (axis(np.arange(width)[None, None, :, None], width),
            axis(np.arange(height)[None, :, None, None], height))
