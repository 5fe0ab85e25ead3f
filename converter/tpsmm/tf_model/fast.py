"""TPSMM's exported (fast) TF graph: the reference-structured networks with FOMM's
convolution rewrites (converter/tf_model/fast.py and winograd.py) on the layers that run
per frame, where the layer's shape takes them (architecture.winograd_tile,
use_phase_conv, use_phase_winograd, use_stride2_final: the same decisions as FOMM's).

    fast = fast_models(models, model_params, frame_shape)   # build_tf_models' networks

Unlike FOMM's BatchNorm, TPSMM's InstanceNorm2d normalises by each frame's own statistics,
which no convolution can absorb: the norms stay as they are, and each block keeps its
reference class and call (a shallow twin, `_twin`) with only its convolutions swapped:
- 3x3 convs by Winograd F(2x2, 3x3) or F(4x4, 3x3) (FusedConv);
- up blocks' nearest x2 + 3x3 conv as the phase conv, by Winograd F(2x2, 2x2) where it
  pays (PhaseUpConv), then the norm and ReLU;
- the inpainting network's final 7x7 conv (3 output channels) as a stride-2 conv;
- the AVD network's linear layers over more than AVD_SLICE inputs as sums over
  AVD_SLICE-input slices (SlicedLinear: XNNPACK's float32 GEMM sums each output over all
  K inputs in one chain).
The swapped layers compute the same function in another order of float32 operations;
their error against the gates is measured in docs/performance.md ("TPSMM: rewrites").
The encoder (`encode_source`, once per video), the keypoint detector and the 7x7 heads keep
the reference graph. The weights are read now (as fast_models').
"""
from __future__ import annotations

import copy

import tensorflow as tf

from ...algebra import pairwise_sum
from ...architecture import halved, use_stride2_final
from ...tf_model.blocks import Block, Conv2d, UpBlock2d, named_variables
from ...tf_model.fast import PhaseUpConv, Stride2Conv, as_array, fused_conv
from ..architecture import AVD_SLICE, dense_motion_size
from .layers import Linear

# The Winograd target of the exported TPSMM graph (architecture.winograd_tile): TFLite's
# XNNPACK, whose graph the SavedModel shares, as FOMM's.
TARGET = "xnnpack"


def _twin(ref, **children):
    """A shallow copy of a reference block (its class, call, norms and taps) with some
    children replaced."""
    twin = copy.copy(ref)
    for name, value in children.items():
        setattr(twin, name, value)
    return twin


def _conv(conv: Conv2d, size, target):
    """A reference Conv2d (no activation: a norm follows) as FusedConv, by Winograd where
    winograd_tile says."""
    return fused_conv(as_array(conv.kernel), as_array(conv.bias), conv.padding, False, size,
                      target)


class FastUpBlock(Block):
    """UpBlock2d (upsample, conv, norm, ReLU) as a PhaseUpConv on the low-resolution
    input (no ReLU: the norm comes first), the reference's norm, ReLU."""

    def __init__(self, ref: UpBlock2d, size, target):
        super().__init__()
        self.conv = PhaseUpConv(as_array(ref.conv.kernel), as_array(ref.conv.bias), False, size,
                                target)
        self.norm = ref.norm
        self._path = ref._path

    def __call__(self, x, taps=None):
        return self._tap(taps, tf.nn.relu(self.norm(self.conv(x), taps)))


def _down_block(ref, size, target):
    return _twin(ref, conv=_conv(ref.conv, size, target))


def _res_block(ref, size, target):
    return _twin(ref, conv1=_conv(ref.conv1, size, target),
                 conv2=_conv(ref.conv2, size, target))


def fast_inpainting(ref, frame, target=TARGET):
    """The inpainting network's decoder rewritten: before up block i, two resblocks at
    H / 2**(3-i); up block i reads that size."""
    n = len(ref.up_blocks)
    sizes = [halved(frame, n - i) for i in range(n)]
    twin = _twin(ref, resblock=[_res_block(b, sizes[i // 2], target)
                                for i, b in enumerate(ref.resblock)],
                 up_blocks=[FastUpBlock(b, sizes[i], target)
                            for i, b in enumerate(ref.up_blocks)])
    final = ref.final
    if use_stride2_final(frame, int(final.kernel.shape[3])):
        twin.final = Stride2Conv(as_array(final.kernel), as_array(final.bias), final.padding)
    return twin


def fast_dense_motion(ref, frame, target=TARGET):
    """The dense motion network's hourglass and up blocks rewritten (as FOMM's
    FastHourglass places them: encoder block i at size >> i, decoder block j reading
    size >> (n - j)); the up blocks after it read the dense-motion size << i."""
    size = dense_motion_size(frame, ref.scale_factor)
    hourglass = ref.hourglass
    encoder, decoder = hourglass.encoder, hourglass.decoder
    n = len(decoder.up_blocks)
    hourglass = _twin(hourglass, encoder=_twin(encoder, down_blocks=[
        _down_block(b, halved(size, i), target) for i, b in enumerate(encoder.down_blocks)]),
        decoder=_twin(decoder, up_blocks=[
            FastUpBlock(b, halved(size, n - j), target)
            for j, b in enumerate(decoder.up_blocks)]))
    return _twin(ref, hourglass=hourglass, up=[
        FastUpBlock(b, (size[0] << i, size[1] << i), target) for i, b in enumerate(ref.up)])


class SlicedLinear(Block):
    """A reference Linear (its variables shared) as the pairwise sum of matmuls over
    consecutive `width`-input slices: FullyConnected, StridedSlice and Add in TFLite, as
    the GPU delegate takes them. Each slice adds bias / slices (exact for the AVD widths'
    2, 4 and 8 slices): the converter drops a zero bias, and the file check
    (bundle/models_check) requires every FullyConnected to have one."""

    def __init__(self, ref: Linear, width: int):
        super().__init__()
        self.kernel, self.bias, self.width = ref.kernel, ref.bias, width
        self._path = ref._path

    def __call__(self, x, taps=None):
        n = int(self.kernel.shape[0])
        starts = range(0, n, self.width)
        share = self.bias / len(starts)
        parts = [tf.matmul(x[:, i:min(i + self.width, n)], self.kernel[i:i + self.width])
                 + share for i in starts]
        return self._tap(taps, pairwise_sum(parts))


def fast_avd(ref, width=AVD_SLICE):
    """The AVD network with its linear layers over more than `width` inputs sliced."""
    def mlp(seq):
        wide = {name: getattr(seq, name) for name in seq._order}
        return _twin(seq, **{name: SlicedLinear(layer, width) for name, layer in wide.items()
                             if isinstance(layer, Linear) and int(layer.kernel.shape[0]) > width})
    return _twin(ref, id_encoder=mlp(ref.id_encoder), pose_encoder=mlp(ref.pose_encoder),
                 decoder=mlp(ref.decoder))


def fast_models(models: dict, frame_shape, target: str | None = TARGET) -> dict:
    """build_tf_models' networks with the dense motion and inpainting networks rewritten
    for a Winograd target (architecture.winograd_tile: "xnnpack", the tests' "all" and
    "all-f4", or None: phase convs and the stride-2 final conv only), the AVD network's
    wide linear layers sliced."""
    frame = tuple(frame_shape[:2])
    return {**models,
            "dense_motion_network": fast_dense_motion(models["dense_motion_network"], frame,
                                                      target),
            "inpainting_network": fast_inpainting(models["inpainting_network"], frame,
                                                  target),
            "avd_network": fast_avd(models["avd_network"])}


def exported_weights(models: dict) -> dict:
    """Each network's weights as the exported graph holds them (fast_models' rewritten
    kernels: the float16 and int8 files store these, export/tflite_reduced.py), by dotted
    path: the variables themselves, read (np.asarray) only by a reduced variant that needs
    them."""
    return {name: dict(named_variables(model)) for name, model in models.items()}
