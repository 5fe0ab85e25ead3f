"""The fast graph's convolution rewrites as TF ops (fast.py's blocks use them; the weight
algebra is algebra.py's): Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 convs, and nearest
upsample x2 + 3x3 conv as one 2x2 phase conv, directly or by Winograd F(2x2, 2x2). Every
op is one XNNPACK runs."""
from __future__ import annotations

import tensorflow as tf

from . import ops
from ..algebra import WINOGRAD_2TAP, WINOGRAD_AT, WINOGRAD_BT


def _combine(rows, coefficients):
    """sum_k coefficients[k] * rows[k] for coefficients in {-1, 0, 1}, as adds and subs
    (a positive term first, so that no negation is needed when there is one)."""
    terms = sorted((c < 0, k) for k, c in enumerate(coefficients) if c != 0)
    out = None
    for negative, k in terms:
        if out is None:
            out = -rows[k] if negative else rows[k]
        else:
            out = out - rows[k] if negative else out + rows[k]
    return out


def _f4_input(d):
    """The six rows of WINOGRAD_F4_BT applied to six terms, sharing the sums the rows have
    in common (17 ops where the rows one by one take 24; a power of 2 times a float32 is
    exact, so the sharing changes only the order of the rounding adds)."""
    p, q = d[4] - d[2] * 4.0, d[3] - d[1] * 4.0
    s, e = d[4] - d[2], d[3] - d[1]
    u = e * 2.0
    return [(d[0] - d[2]) * 4.0 + s, p + q, p - q, s + u, s - u, (d[5] - d[3]) - e * 4.0]


def _f4_output(m):
    """The four rows of WINOGRAD_F4_AT applied to six terms (13 ops)."""
    plus, minus = m[1] + m[2], m[1] - m[2]
    plus2, minus2 = m[3] + m[4], m[3] - m[4]
    return [m[0] + plus + plus2, minus + minus2 * 2.0, plus + plus2 * 4.0,
            minus + minus2 * 8.0 + m[5]]


def _rows(matrix):
    return lambda terms: [_combine(terms, row) for row in matrix]


# (output tile m, taps r) of F(m x m, r x r) -> (input transform, output transform), on
# lists of tensors (or arrays); F(2x2, 2x2) is the phase conv's (winograd_phase_conv).
TRANSFORMS = {(2, 3): (_rows(WINOGRAD_BT), _rows(WINOGRAD_AT)),
              (4, 3): (_f4_input, _f4_output),
              (2, 2): (_rows(WINOGRAD_2TAP[0]), _rows(WINOGRAD_2TAP[2]))}


def _winograd(x, pad, kernels, bias, relu: bool, tile: int, taps: int, tiles):
    """The VALID conv of x padded by pad = [[top, bottom], [left, right]], by Winograd
    F(m x m, r x r) (m = tile, r = taps, a = m + r - 1): tiles = (rows, columns) of m x m
    output blocks, (B, m*rows, m*columns, O) out. kernels: [a, a, I, O].

    The padded input (its size a multiple of m: rows past the last tile are never read)
    is cut into a x a tiles at stride m through space-to-depth: tile (t, s) rows
    m*t .. m*t+a-1 are block rows t, t+1 with phase 0 .. m-1. V = B^T d B takes adds
    (and, for F(4x4, 3x3), multiplies by powers of 2), M_ij = V_ij @ U_ij are a*a matrix
    products (1x1 convolutions) of (tiles, I) by (I, O), and Y = A^T M A sums them back
    into the m x m outputs of each tile, which depth-to-space interleaves. The bias rides
    on M_11, which every output sums exactly once (A^T[:, 1] = 1 in all three)."""
    c, m, a = x.shape[3], tile, tile + taps - 1
    forward, backward = TRANSFORMS[tile, taps]
    t_rows, t_cols = tiles
    blocks = tf.nn.space_to_depth(tf.pad(x, [[0, 0], *pad, [0, 0]]), m)
    # Padded row m*t + r is block row t + r // m, phase r % m (channels phase*m*C ..).
    rows = [blocks[:, r // m:r // m + t_rows, :, (r % m) * m * c:(r % m + 1) * m * c]
            for r in range(a)]
    products = {}
    for i, d in enumerate(forward(rows)):
        cols = [d[:, :, q // m:q // m + t_cols, (q % m) * c:(q % m + 1) * c] for q in range(a)]
        for j, v in enumerate(forward(cols)):
            product = tf.nn.conv2d(v, kernels[i, j][None, None], strides=1, padding="VALID")
            products[i, j] = tf.nn.bias_add(product, bias) if (i, j) == (1, 1) else product
    partial = {(i, q): y for i in range(a)
               for q, y in enumerate(backward([products[i, j] for j in range(a)]))}
    outputs = [None] * (m * m)
    for q in range(m):
        for p, y in enumerate(backward([partial[i, q] for i in range(a)])):
            outputs[p * m + q] = tf.nn.relu(y) if relu else y
    if m > 2:  # XNNPACK takes a concatenation of 4 inputs, and left one of 16 to TFLite's
        # one-thread kernel: row by row
        outputs = [tf.concat(outputs[p * m:(p + 1) * m], axis=-1) for p in range(m)]
    return tf.nn.depth_to_space(tf.concat(outputs, axis=-1), m)


def winograd_conv3x3(x, kernels, bias, relu: bool, tile: int = 2):
    """3x3 conv, stride 1, zero padding 1, by Winograd F(m x m, 3x3), m = tile (2 or 4):
    (B, H, W, I) -> (B, H, W, O) for H, W divisible by m; kernels [m+2, m+2, I, O] from
    `winograd_kernels`. (m+2)^2 products of I*O per m*m outputs instead of 9 m^2: 2.25x
    (m = 2) or 4x (m = 4) fewer multiply-adds (see _winograd)."""
    h, w = ops.static_hw(x)
    m = tile
    if h % m or w % m:
        raise ValueError(f"Winograd F({m}x{m}, 3x3) needs sizes divisible by {m}, got {h}x{w}")
    # Padded by 1, and m - 2 more rows and columns at the end for space-to-depth.
    return _winograd(x, [[1, m - 1]] * 2, kernels, bias, relu, m, 3, (h // m, w // m))


def phase_upsample_conv(x, kernel, bias, relu: bool = True):
    """Nearest upsample x2 + 3x3 conv (pad 1) as one 2x2 conv on x; kernel from
    `phase_kernels`, bias repeated 4 times (phase-major)."""
    h, w = ops.static_hw(x)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    out = tf.nn.bias_add(tf.nn.conv2d(padded, kernel, strides=1, padding="VALID"), bias)
    if relu:
        out = tf.nn.relu(out)
    out = tf.nn.depth_to_space(out, 2)
    return out[:, 1:2 * h + 1, 1:2 * w + 1, :]


def winograd_phase_conv(x, kernels, bias, relu: bool = True):
    """phase_upsample_conv with the 2x2 conv by Winograd F(2x2, 2x2): kernels [3, 3, I,
    4*O] from `phase_winograd_kernels`. 9 products of I*4O per 2x2 outputs instead of 16:
    1.78x fewer multiply-adds, and transforms of adds and subs only. The (H+1) x (W+1)
    outputs of the phase conv are computed in whole tiles, for even H (W) one more row
    (column) of them, outside the crop."""
    h, w = ops.static_hw(x)
    tiles = ((h + 2) // 2, (w + 2) // 2)
    # Padded by 1, then up to the 2 * (tiles + 1) rows (columns) space-to-depth reads.
    pad = [[1, 2 * t + 1 - n] for t, n in zip(tiles, (h, w))]
    out = _winograd(x, pad, kernels, bias, relu, 2, 2, tiles)
    return tf.nn.depth_to_space(out, 2)[:, 1:2 * h + 1, 1:2 * w + 1, :]
