"""TFLite-safe building ops shared by the TF models.

Rules every function here keeps, because the TFLite runtime is where they are checked:
- builtin ops only (no Flex / select-TF ops);
- NHWC float32, spatial sizes static (TFLite needs them), the batch may be dynamic;
- no broadcasting between tensors of different ranks and nothing above rank 4 is
  broadcast: operands are reshaped to the same rank, or tiled explicitly;
- what the LiteRT GPU delegate takes (export/tflite_ops.py has its rules), so that a
  batch-1 file runs on the GPU whole: slices keep their axes (a:a+1, then a reshape: no
  shrink-axis STRIDED_SLICE), gathers take 1-D int32 indices, no tensor above rank 4
  inside the graph, and of a MUL's two same-rank operands one is at least as large as
  the other in every dimension.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..architecture import BN_EPSILON



# ---------------------------------------------------------------- shapes and batches
def static_hw(x: tf.Tensor) -> tuple[int, int]:
    """The static (height, width) of an NHWC tensor; TFLite graphs need them known."""
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError(f"spatial size must be static, got shape {x.shape}")
    return int(h), int(w)


def batch_size(x: tf.Tensor) -> tf.Tensor | int:
    """The batch size: a Python int when static, else a scalar tensor."""
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def tile_to_batch(x: tf.Tensor, batch) -> tf.Tensor:
    """Repeat a batch of 1 (or pass through a batch of `batch`) along axis 0, explicitly.

    The multiple is batch // batch(x), so x may hold 1 or `batch` elements.
    """
    rank = x.shape.rank
    if isinstance(batch, int) and x.shape[0] is not None:
        if x.shape[0] == batch:
            return x
        if x.shape[0] != 1:
            raise ValueError(f"cannot tile batch {x.shape[0]} to {batch}")
        return tf.tile(x, [batch] + [1] * (rank - 1))
    multiple = tf.math.floordiv(batch, tf.shape(x)[0])
    return tf.tile(x, tf.concat([tf.reshape(multiple, [1]),
                                 tf.ones([rank - 1], dtype=tf.int32)], axis=0))


# ---------------------------------------------------------------- grids and keypoints
def coordinate_axis(n: int) -> np.ndarray:
    """n values 2*i/(n-1) - 1 in float32, computed in the same order as the torch code."""
    return (np.arange(n, dtype=np.float32) / np.float32(n - 1)) * np.float32(2) - np.float32(1)


def coordinate_grid(height: int, width: int) -> np.ndarray:
    """(height, width, 2) grid of (x, y): x varies along the width, y along the height."""
    x = np.broadcast_to(coordinate_axis(width)[None, :], (height, width))
    y = np.broadcast_to(coordinate_axis(height)[:, None], (height, width))
    return np.stack([x, y], axis=-1).astype(np.float32)


def grid_xy_maps(height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The grid's x and y as (1, height, width, 1) constants."""
    grid = coordinate_grid(height, width)
    return (tf.constant(grid[None, :, :, 0:1]), tf.constant(grid[None, :, :, 1:2]))


def kp_components(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(B, K, 2) keypoints -> x and y as (B, 1, 1, K), ready to meet (1, h, w, 1) grids."""
    k = value.shape[1]
    x = tf.reshape(value[:, :, 0:1], [-1, 1, 1, k])
    y = tf.reshape(value[:, :, 1:2], [-1, 1, 1, k])
    return x, y


def kp_gaussian(value: tf.Tensor, height: int, width: int, variance: float,
                grid=None) -> tf.Tensor:
    """(B, K, 2) -> (B, h, w, K): exp(-0.5 * |grid - kp|^2 / variance); grid: its x and y
    maps, (1, h, w, 1) each, when not grid_xy_maps' constants."""
    gx, gy = grid_xy_maps(height, width) if grid is None else grid
    kx, ky = kp_components(value)
    dx = gx - kx
    dy = gy - ky
    return tf.exp((-0.5 * (dx * dx + dy * dy)) / variance)


def mat2x2_components(m: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(B, K, 2, 2) -> its four entries (a, b, c, d) = ([0,0], [0,1], [1,0], [1,1]), each
    (B, 1, 1, K) like kp_components' coordinates."""
    k = m.shape[1]
    entries = tf.reshape(m, [-1, k, 4])
    return tuple(tf.reshape(entries[:, :, i:i + 1], [-1, 1, 1, k]) for i in range(4))


def inverse2x2(m: tf.Tensor) -> tf.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices: [[d, -b], [-c, a]] / (ad - bc)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    inv = tf.stack([d / det, -b / det, -c / det, a / det], axis=-1)
    return tf.reshape(inv, tf.shape(m))


def matmul2x2(p, q):
    """Product of two 2x2 matrices given as (a, b, c, d) component tuples."""
    a, b, c, d = p
    e, f, g, h = q
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def inverse2x2_components(m):
    """Closed-form inverse of a 2x2 matrix given as an (a, b, c, d) component tuple."""
    a, b, c, d = m
    det = a * d - b * c
    return (d / det, -b / det, -c / det, a / det)


# ---------------------------------------------------------------- layers
def conv_padding(x: tf.Tensor, kernel: tf.Variable, padding: int,
                 stride: int = 1) -> tuple[tf.Tensor, str]:
    """x and the conv padding mode giving torch's `padding` zeros on each side (TF's SAME
    pads less before than after at stride 2: strided convs get explicit zeros)."""
    k_h, k_w = int(kernel.shape[0]), int(kernel.shape[1])
    if padding == 0:
        return x, "VALID"
    if stride == 1 and k_h == k_w and k_h % 2 == 1 and padding == k_h // 2:
        return x, "SAME"
    return tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]]), "VALID"


def conv2d(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable | None, padding: int,
           stride: int = 1) -> tf.Tensor:
    """Convolution with `padding` zeros on each side (torch semantics), HWIO kernel; bias
    None for a bias-free one."""
    x, mode = conv_padding(x, kernel, padding, stride)
    out = tf.nn.conv2d(x, kernel, strides=stride, padding=mode)
    return out if bias is None else tf.nn.bias_add(out, bias)


def batch_norm(x, gamma, beta, mean, variance, epsilon: float = BN_EPSILON) -> tf.Tensor:
    """Inference BatchNorm, as torch's CPU kernel evaluates it: x * alpha + (beta - mean * alpha).

    The per-channel factors are reshaped to x's rank, (1, 1, 1, C) or (1, C): no rank-1
    against rank-4 broadcasting reaches TFLite."""
    alpha = gamma / tf.sqrt(variance + epsilon)
    shift = beta - mean * alpha
    shape = [1] * (x.shape.rank - 1) + [-1]
    return x * tf.reshape(alpha, shape) + tf.reshape(shift, shape)


def instance_norm(x, gamma, beta, epsilon: float = BN_EPSILON) -> tf.Tensor:
    """InstanceNorm2d (affine), each (sample, channel) normalised by its own mean and
    biased variance over h*w, in the form of torch's CPU kernel: x * alpha + (beta -
    mean * alpha), alpha = gamma / sqrt(var + eps). Sums run over the width, then the
    height (as the FOMM detector's expectation): shorter runs of float32 additions than
    one over a whole plane, in kernels that add term by term (TFLite's)."""
    h, w = static_hw(x)

    def mean_of(v):
        return tf.reduce_sum(tf.reduce_sum(v, axis=2, keepdims=True), axis=1,
                             keepdims=True) / float(h * w)
    mean = mean_of(x)  # (B, 1, 1, C)
    centred = x - mean
    alpha = tf.reshape(gamma, [1, 1, 1, -1]) / tf.sqrt(mean_of(centred * centred) + epsilon)
    return x * alpha + (tf.reshape(beta, [1, 1, 1, -1]) - mean * alpha)


def avg_pool2x2(x: tf.Tensor) -> tf.Tensor:
    """2x2 average pool, stride 2; odd sizes are floored like torch's AvgPool2d."""
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


def upsample_nearest2x(x: tf.Tensor) -> tf.Tensor:
    """Nearest upsampling by 2: out[i] = in[floor(i / 2)] (torch F.interpolate(scale_factor=2)),
    as four copies of x side by side on channels and depth_to_space: both run on XNNPACK,
    RESIZE_NEAREST_NEIGHBOR does not (it split the TFLite detector into six partitions)."""
    return tf.nn.depth_to_space(tf.concat([x, x, x, x], axis=-1), 2)


def resize_bilinear(x: tf.Tensor, height: int, width: int,
                    align_corners: bool = False) -> tf.Tensor:
    """torch F.interpolate(mode='bilinear', align_corners=...) to (height, width).

    TF's half-pixel-centre bilinear resize uses the same source coordinate
    (i + 0.5) * in / out - 0.5 and the same clamping at both edges; with corners aligned
    both take i * (in - 1) / (out - 1).
    """
    if static_hw(x) == (height, width):
        return x
    if align_corners:
        return tf.raw_ops.ResizeBilinear(images=x, size=[height, width], align_corners=True,
                                         half_pixel_centers=False)
    return tf.image.resize(x, [height, width], method="bilinear", antialias=False)


def anti_alias_downsample(x: tf.Tensor, kernel: tf.Variable, step: int) -> tf.Tensor:
    """Depthwise blur with a [k, k, C, 1] kernel and k//2 zero padding, keeping every
    `step`-th row and column from 0: one strided VALID depthwise conv does both."""
    pad = int(kernel.shape[0]) // 2
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, step, step, 1], padding="VALID")


# ---------------------------------------------------------------- grid_sample
def unnormalize(coord: tf.Tensor, size: int, align_corners: bool) -> tf.Tensor:
    """Normalised [-1, 1] coordinates -> pixel coordinates, as torch's grid_sample does."""
    if align_corners:
        return ((coord + 1.0) / 2.0) * float(size - 1)
    return ((coord + 1.0) * float(size) - 1.0) / 2.0


def grid_sample(image: tf.Tensor, grid_x: tf.Tensor, grid_y: tf.Tensor,
                align_corners: bool) -> tf.Tensor:
    """Bilinear sampling with zero padding (torch F.grid_sample, mode bilinear, zeros).

    image (B, H, W, C); grid_x, grid_y (B, h, w, 1) normalised coordinates of batch
    element b of the image -> (B, h, w, C). Taps outside the image contribute zero: the
    image gets a one-pixel zero border, and coordinates are clamped into [-1, W] x [-1, H],
    which only moves taps from one zero pixel to another. Four GATHERs from the flattened
    image, each with 1-D indices (the only kind the GPU delegate takes).
    """
    height, width = static_hw(image)
    channels = image.shape[3]
    px = tf.clip_by_value(unnormalize(grid_x, width, align_corners), -1.0, float(width))
    py = tf.clip_by_value(unnormalize(grid_y, height, align_corners), -1.0, float(height))
    x0 = tf.floor(px)
    y0 = tf.floor(py)
    x1 = x0 + 1.0
    y1 = y0 + 1.0
    # torch's weights: nw = (x1 - x)(y1 - y), ne = (x - x0)(y1 - y), ...
    wx0, wx1 = x1 - px, px - x0
    wy0, wy1 = y1 - py, py - y0

    padded_w = width + 2
    padded = tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]])
    flat = tf.reshape(padded, [-1, channels])
    batch = batch_size(image)
    offsets = tf.reshape(tf.range(batch, dtype=tf.int32) * ((height + 2) * padded_w),
                         [-1, 1, 1, 1])
    # Indices into the padded image: pixel p sits at p + 1; the far tap is clamped to the
    # border (its weight is 0 exactly when it would leave the padded image).
    ix0 = tf.cast(x0, tf.int32) + 1
    iy0 = tf.cast(y0, tf.int32) + 1
    ix1 = tf.minimum(ix0 + 1, width + 1)
    iy1 = tf.minimum(iy0 + 1, height + 1)
    row0 = offsets + iy0 * padded_w
    row1 = offsets + iy1 * padded_w
    out_shape = [-1, *static_hw(grid_x), channels]

    def tap(row, col, weight):
        return tf.reshape(tf.gather(flat, tf.reshape(row + col, [-1])), out_shape) * weight

    return (tap(row0, ix0, wx0 * wy0) + tap(row0, ix1, wx1 * wy0)
            + tap(row1, ix0, wx0 * wy1) + tap(row1, ix1, wx1 * wy1))
