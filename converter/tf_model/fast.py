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

The conv rewrites' TF ops are winograd.py's. Everything else (keypoint heatmaps, dense
motion, grid_sample, the signatures) is the reference models' own code: the fast classes
subclass them and only swap the conv blocks.
Each fast block records its output under the reference block's tap name, so the two
graphs can be compared block by block (not inside a block: the folded BN has no output
of its own).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import ops
from ..algebra import (bn_factors, fold_bn, phase_kernels, phase_winograd_kernels,
                       stride2_kernel, winograd_kernels)
from ..architecture import (downsampled_size, halved, use_phase_conv, use_phase_winograd,
                            use_stride2_final, winograd_tile)
from .blocks import (Block, Conv2d, DownBlock2d, Encoder, Decoder, Hourglass, ResBlock2d,
                     SameBlock2d, Sequential, UpBlock2d, assign_paths)
from .dense_motion import DenseMotionNetwork
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KPDetector
from .winograd import phase_upsample_conv, winograd_conv3x3, winograd_phase_conv

def as_array(variable) -> np.ndarray:
    """A loaded weight (a tf.Variable, or an array) as numpy."""
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def _folded(conv: Conv2d, norm) -> tuple[np.ndarray, np.ndarray]:
    return fold_bn(as_array(conv.kernel), as_array(conv.bias), as_array(norm.gamma),
                   as_array(norm.beta),
                   as_array(norm.moving_mean), as_array(norm.moving_variance))


def _const(value) -> tf.Variable:
    return tf.Variable(np.asarray(value, np.float32), trainable=False)


# ---------------------------------------------------------------- blocks
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


def fused_conv(kernel, bias, padding, relu, size, target) -> FusedConv:
    """A conv of an input of `size` as FusedConv, by the Winograd tile winograd_tile gives
    its shape for `target`."""
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
        self.conv = fused_conv(*_folded(ref.conv, ref.norm), ref.conv.padding, True, size, target)

    def __call__(self, x, taps=None):
        return self._tap(taps, self.conv(x))


class FastDownBlock(FastSameBlock):
    """DownBlock2d: FastSameBlock's conv (BN folded, ReLU), then average pool 2x2."""

    def __call__(self, x, taps=None):
        return self._tap(taps, ops.avg_pool2x2(self.conv(x)))


class PhaseUpConv(Block):
    """Nearest upsample x2 + 3x3 conv (pad 1) + bias (+ ReLU) as a phase conv, by Winograd
    F(2x2, 2x2) where it pays on the target runtime (architecture.use_phase_winograd); on
    small inputs (architecture.use_phase_conv) nearest upsample + the 3x3 conv, whose
    weights are 9/16 the size (weight bandwidth, not multiply-adds, bounds them there)."""

    def __init__(self, kernel, bias, relu: bool, size=None, target=None):
        super().__init__()
        kernel = np.asarray(kernel, np.float32)
        if kernel.shape[:2] != (3, 3):
            raise ValueError("the phase rewrite needs a 3x3 conv with padding 1")
        self.phase = use_phase_conv(size)
        self.winograd = self.phase and use_phase_winograd(kernel.shape[2], target)
        self.kernel = _const(phase_winograd_kernels(kernel) if self.winograd else
                             phase_kernels(kernel) if self.phase else kernel)
        self.bias = _const(np.tile(bias, 4) if self.phase else bias)
        self.relu = bool(relu)

    def __call__(self, x, taps=None):
        if self.winograd:
            return winograd_phase_conv(x, self.kernel, self.bias, self.relu)
        if self.phase:
            return phase_upsample_conv(x, self.kernel, self.bias, self.relu)
        out = ops.conv2d(ops.upsample_nearest2x(x), self.kernel, self.bias, 1)
        return tf.nn.relu(out) if self.relu else out


class FastUpBlock(PhaseUpConv):
    """UpBlock2d: upsample + conv + BN + ReLU as a PhaseUpConv with the BN folded."""

    def __init__(self, ref: UpBlock2d, size=None, target=None):
        if ref.conv.padding != 1:
            raise ValueError("the phase rewrite needs a 3x3 conv with padding 1")
        super().__init__(*_folded(ref.conv, ref.norm), True, size, target)

    def __call__(self, x, taps=None):
        return self._tap(taps, super().__call__(x))


class FastResBlock(Block):
    """ResBlock2d: relu(x * alpha1 + shift1) -> conv1 with norm2 folded, ReLU -> conv2,
    plus x."""

    def __init__(self, ref: ResBlock2d, size=None, target=None):
        super().__init__()
        norm1 = ref.norm1
        alpha, shift = bn_factors(as_array(norm1.gamma), as_array(norm1.beta),
                                  as_array(norm1.moving_mean), as_array(norm1.moving_variance))
        self.scale = _const(alpha.reshape(1, 1, 1, -1))
        self.shift = _const(shift.reshape(1, 1, 1, -1))
        self.conv1 = fused_conv(*_folded(ref.conv1, ref.norm2), ref.conv1.padding, True, size,
                            target)
        self.conv2 = fused_conv(as_array(ref.conv2.kernel), as_array(ref.conv2.bias),
                                ref.conv2.padding,
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
            self.final = Stride2Conv(as_array(final.kernel), as_array(final.bias), final.padding)
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
