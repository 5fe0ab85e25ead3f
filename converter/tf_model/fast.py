"""The exported (fast) TF graph: the reference-structured models with the same function
and less work, derived from their loaded weights.

    fast_kp_detector, fast_generator = fast_models(kp_detector, generator)

The reference-structured models (blocks.py, ...) mirror torch layer for layer, which is
what per-layer parity compares; these are what gets exported. They compute the same
function (equal up to float32 rounding; tests/test_fast.py holds them to 1e-5 on
keypoints and 1e-4 on images) with exact rewrites (algebra.py has the weight algebra):

- BatchNorm folded into the convolution before it (Down/Up/SameBlock2d: conv -> BN;
  ResBlock2d: conv1 -> norm2). ResBlock2d's norm1 acts on the residual stream before a
  ReLU and cannot be folded exactly: it stays a per-channel affine (x * alpha + shift).
- Nearest upsample x2 followed by a 3x3 conv (pad 1) as four 2x2 convs on the
  low-resolution input, one per output phase, evaluated as ONE 2x2 convolution with
  4*C_out channels over the input padded by 1, then DEPTH_TO_SPACE and a one-pixel crop.
  2.25x fewer multiply-adds in every UpBlock2d, and no RESIZE_NEAREST_NEIGHBOR (which
  XNNPACK does not run). Exact: the upsampled image's zero padding is the
  low-resolution image's zero padding. Where it pays on the target runtime
  (architecture.use_phase_winograd: XNNPACK, 128+ input channels), that 2x2 conv by
  Winograd F(2x2, 2x2): 1.78x fewer again, with transforms of adds and subs only.
- Winograd F(2x2, 3x3) or F(4x4, 3x3) for the 3x3 convs where it pays on the target
  runtime (architecture.winograd_tile; on vox-256 for XNNPACK: F(4x4, 3x3) on the
  residual bottleneck, the generator's down blocks and the dense-motion encoder's 64x64
  block, F(2x2, 3x3) on its smaller ones): 2.25x or 4x fewer multiply-adds, as
  space-to-depth, strided slices, adds (and, for F(4x4, 3x3), multiplies by powers of 2),
  16 or 36 1x1 convolutions and DEPTH_TO_SPACE, every op one XNNPACK runs. Same
  function, another order of float32 operations (F(2x2, 3x3): errors within 2x of the
  direct conv's; F(4x4, 3x3): about 10x, still well inside the tolerances).
- The generator's final 7x7 conv (3 output channels, which waste most of a GEMM
  micro-kernel) as a stride-2 8x8 conv with 12 channels and DEPTH_TO_SPACE.
- ReLU fused into the convolution (the TFLite converter emits CONV_2D with a fused
  activation).

Everything else (keypoint heatmaps, dense motion, grid_sample, the signatures) is the
reference models' own code: the fast classes subclass them and only swap the conv blocks.
Each fast block records its output under the reference block's tap name, so the two
graphs can be compared block by block (not inside a block: the folded BN has no output
of its own).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import ops
from ..algebra import (WINOGRAD_2TAP, WINOGRAD_AT, WINOGRAD_BT, bn_factors, fold_bn,
                       phase_kernels, phase_winograd_kernels, stride2_kernel, winograd_kernels)
from ..architecture import (downsampled_size, halved, use_phase_conv, use_phase_winograd,
                            use_stride2_final, winograd_tile)
from .blocks import (Block, Conv2d, DownBlock2d, Encoder, Decoder, Hourglass, ResBlock2d,
                     SameBlock2d, Sequential, UpBlock2d, assign_paths)
from .dense_motion import DenseMotionNetwork
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KPDetector

def _np(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def _folded(conv: Conv2d, norm) -> tuple[np.ndarray, np.ndarray]:
    return fold_bn(_np(conv.kernel), _np(conv.bias), _np(norm.gamma), _np(norm.beta),
                   _np(norm.moving_mean), _np(norm.moving_variance))


def _const(value) -> tf.Variable:
    return tf.Variable(np.asarray(value, np.float32), trainable=False)


# ---------------------------------------------------------------- blocks
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


class FusedConv(Block):
    """Stride-1 conv (torch padding) + bias, optionally followed by ReLU; by Winograd
    F(m x m, 3x3) (`winograd_conv3x3`) when `tile` m is 2 or 4 (architecture.winograd_tile)."""

    def __init__(self, kernel, bias, padding: int, relu: bool, tile: int = 0):
        super().__init__()
        kernel = np.asarray(kernel, np.float32)
        self.tile = int(tile)
        self.kernel = _const(winograd_kernels(kernel, self.tile) if self.tile else kernel)
        self.bias = _const(bias)
        self.padding = int(padding)
        self.relu = bool(relu)

    def __call__(self, x, taps=None):
        if self.tile:
            return winograd_conv3x3(x, self.kernel, self.bias, self.relu, self.tile)
        out = ops.conv2d(x, self.kernel, self.bias, self.padding)
        return tf.nn.relu(out) if self.relu else out


def _fused(kernel, bias, padding, relu, size, target) -> FusedConv:
    return FusedConv(kernel, bias, padding, relu,
                     winograd_tile(np.shape(kernel), padding, size, target))


class Stride2Conv(Block):
    """A KxK 'same' conv with few output channels as a stride-2 conv with 4x the output
    channels and depth-to-space (`algebra.stride2_kernel`); needs an even size."""

    def __init__(self, kernel, bias, padding: int):
        super().__init__()
        kernel = np.asarray(kernel, np.float32)
        if kernel.shape[0] - 1 != 2 * padding:
            raise ValueError("Stride2Conv needs 'same' padding")
        self.kernel = _const(stride2_kernel(kernel))
        self.bias = _const(np.tile(bias, 4))
        self.padding = int(padding)

    def __call__(self, x, taps=None):
        p = self.padding
        padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        out = tf.nn.bias_add(tf.nn.conv2d(padded, self.kernel, strides=2, padding="VALID"),
                             self.bias)
        return self._tap(taps, tf.nn.depth_to_space(out, 2))


class FastSameBlock(Block):
    """SameBlock2d: conv with BN folded, ReLU."""

    def __init__(self, ref: SameBlock2d | DownBlock2d, size=None, target=None):
        super().__init__()
        self.conv = _fused(*_folded(ref.conv, ref.norm), ref.conv.padding, True, size, target)

    def __call__(self, x, taps=None):
        return self._tap(taps, self.conv(x))


class FastDownBlock(FastSameBlock):
    """DownBlock2d: FastSameBlock's conv (BN folded, ReLU), then average pool 2x2."""

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.avg_pool2x2(self.conv(x)))


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


class FastUpBlock(Block):
    """UpBlock2d: upsample + conv + BN + ReLU as a phase conv (BN folded) and ReLU, by
    Winograd F(2x2, 2x2) where it pays on the target runtime
    (architecture.use_phase_winograd); on small inputs (architecture.use_phase_conv)
    nearest upsample + the folded 3x3 conv, whose weights are 9/16 the size (weight
    bandwidth, not multiply-adds, bounds them there)."""

    def __init__(self, ref: UpBlock2d, size=None, target=None):
        super().__init__()
        if int(ref.conv.kernel.shape[0]) != 3 or ref.conv.padding != 1:
            raise ValueError("the phase rewrite needs a 3x3 conv with padding 1")
        kernel, bias = _folded(ref.conv, ref.norm)
        self.phase = use_phase_conv(size)
        self.winograd = self.phase and use_phase_winograd(kernel.shape[2], target)
        self.kernel = _const(phase_winograd_kernels(kernel) if self.winograd else
                             phase_kernels(kernel) if self.phase else kernel)
        self.bias = _const(np.tile(bias, 4) if self.phase else bias)

    def __call__(self, x, taps=None):
        if self.winograd:
            return self._tap(taps, winograd_phase_conv(x, self.kernel, self.bias))
        if self.phase:
            return self._tap(taps, phase_upsample_conv(x, self.kernel, self.bias))
        out = ops.conv2d(ops.upsample_nearest2x(x), self.kernel, self.bias, 1)
        return self._tap(taps, tf.nn.relu(out))


class FastResBlock(Block):
    """ResBlock2d: relu(x * alpha1 + shift1) -> conv1 with norm2 folded, ReLU -> conv2,
    plus x."""

    def __init__(self, ref: ResBlock2d, size=None, target=None):
        super().__init__()
        alpha, shift = bn_factors(_np(ref.norm1.gamma), _np(ref.norm1.beta),
                                  _np(ref.norm1.moving_mean), _np(ref.norm1.moving_variance))
        self.scale = _const(alpha.reshape(1, 1, 1, -1))
        self.shift = _const(shift.reshape(1, 1, 1, -1))
        self.conv1 = _fused(*_folded(ref.conv1, ref.norm2), ref.conv1.padding, True, size,
                            target)
        self.conv2 = _fused(_np(ref.conv2.kernel), _np(ref.conv2.bias), ref.conv2.padding,
                            False, size, target)

    def __call__(self, x, taps=None):
        out = self.conv2(self.conv1(tf.nn.relu(x * self.scale + self.shift)))
        return self._tap(taps, out + x)


class FastEncoder(Encoder):
    def __init__(self, ref: Encoder, size=None, target=None):
        Block.__init__(self)
        self.down_blocks = [FastDownBlock(b, halved(size, i), target)
                            for i, b in enumerate(ref.down_blocks)]


class FastDecoder(Decoder):
    def __init__(self, ref: Decoder, size=None, target=None):
        """size: the hourglass input's; up block j (from the deepest) gets size >> (n - j)."""
        Block.__init__(self)
        n = len(ref.up_blocks)
        self.up_blocks = [FastUpBlock(b, halved(size, n - j), target)
                          for j, b in enumerate(ref.up_blocks)]


class FastHourglass(Hourglass):
    def __init__(self, ref: Hourglass, size=None, target=None):
        Block.__init__(self)
        self.encoder = FastEncoder(ref.encoder, size, target)
        self.decoder = FastDecoder(ref.decoder, size, target)
        self.out_filters = ref.out_filters


# ---------------------------------------------------------------- models
_KP_ATTRIBUTES = ("kp", "jacobian", "num_kp", "num_channels", "temperature", "scale_factor",
                  "num_jacobian_maps", "down", "_frame_shape")
_DENSE_ATTRIBUTES = ("mask", "occlusion", "num_kp", "num_channels", "scale_factor",
                     "kp_variance", "align_corners", "down")
_GENERATOR_ATTRIBUTES = ("final", "num_kp", "num_channels", "estimate_jacobian",
                         "estimate_occlusion_map", "align_corners", "_frame_shape")


def _copy_attributes(target, source, names):
    """Share `source`'s attributes (numbers, or modules that need no rewrite)."""
    for name in names:
        if name in vars(source):
            setattr(target, name, getattr(source, name))


def _downsampled(frame_shape, scale):
    return None if frame_shape is None else downsampled_size(frame_shape, scale)


class FastKPDetector(KPDetector):
    """The keypoint detector with a fast hourglass; kp and jacobian heads shared."""

    def __init__(self, ref: KPDetector, target=None):
        Block.__init__(self)
        size = _downsampled(ref.frame_shape, ref.scale_factor)
        self.predictor = FastHourglass(ref.predictor, size, target)
        _copy_attributes(self, ref, _KP_ATTRIBUTES)
        assign_paths(self)


class FastDenseMotionNetwork(DenseMotionNetwork):
    def __init__(self, ref: DenseMotionNetwork, size=None, target=None):
        Block.__init__(self)
        self.hourglass = FastHourglass(ref.hourglass, size, target)
        _copy_attributes(self, ref, _DENSE_ATTRIBUTES)


class FastGenerator(OcclusionAwareGenerator):
    """The generator with fast blocks; same entry points and signatures."""

    def __init__(self, ref: OcclusionAwareGenerator, target=None):
        Block.__init__(self)
        frame = ref.frame_shape
        size = None if frame is None else tuple(frame[:2])
        dense = ref.dense_motion_network
        self.dense_motion_network = FastDenseMotionNetwork(
            dense, _downsampled(frame, dense.scale_factor), target)
        self.first = FastSameBlock(ref.first, size, target)
        self.down_blocks = [FastDownBlock(b, halved(size, i), target)
                            for i, b in enumerate(ref.down_blocks)]
        bottleneck = halved(size, len(ref.down_blocks))
        self.up_blocks = [FastUpBlock(b, None if bottleneck is None else
                                      (bottleneck[0] << i, bottleneck[1] << i), target)
                          for i, b in enumerate(ref.up_blocks)]
        self.bottleneck = Sequential({
            name: FastResBlock(getattr(ref.bottleneck, name), bottleneck, target)
            for name in ref.bottleneck._order})
        _copy_attributes(self, ref, _GENERATOR_ATTRIBUTES)
        # The final conv (3 output channels) as a stride-2 conv with 12, when the frame
        # is even (the last up block doubles the size, so it is unless the frame is odd).
        final = ref.final
        if use_stride2_final(frame, int(final.kernel.shape[3])):
            self.final = Stride2Conv(_np(final.kernel), _np(final.bias), final.padding)
        assign_paths(self)


def fast_models(kp_detector: KPDetector, generator: OcclusionAwareGenerator,
                winograd: str | None = "xnnpack", kp_winograd: str | None = None
                ) -> tuple[FastKPDetector, FastGenerator]:
    """The exported graphs of two reference-structured models whose weights are loaded.

    winograd: which 3x3 convs (and phase convs) of the generator take Winograd, and which
    tile, by runtime target (see architecture.winograd_tile and use_phase_winograd:
    "xnnpack" for TFLite and the SavedModel, "all", "all-f4" or None); kp_winograd: the same for the keypoint detector, None by default: its
    temperature-0.1 softmax turns conv rounding into keypoint error ten times over, and
    on XNNPACK the Winograd detector missed the 1e-5 keypoint gate (1.8e-5 on vox-256;
    1e-5 needs every digit), for 2 ms per frame. The models need their frame_shape for
    Winograd (else no conv takes it).

    The weights are read now: a later change to the reference models' variables does not
    reach the fast ones (except the heads they share: kp, jacobian, mask, occlusion and
    the anti-alias kernels)."""
    return FastKPDetector(kp_detector, kp_winograd), FastGenerator(generator, winograd)
