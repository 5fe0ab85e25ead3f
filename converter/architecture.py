"""Every size and structural decision of the FOMM graphs, framework-free.

Shared by the torch reference and its fast twin, the TF graph and its fast graph, the
signatures, and bench's FLOP model: channel plans, downsampled sizes, the anti-alias
kernel, the constants of BatchNorm and of the exact hull area, and which convolution
takes which inference rewrite (phase conv, Winograd tile, stride-2 final conv), measured
per layer shape on this project's machine.
"""
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


def halved(size, times: int = 1):
    """The size after `times` 2x2 average pools (floored), or None when unknown."""
    return None if size is None else (size[0] >> times, size[1] >> times)


def downsample_step(scale: float) -> int:
    """The stride of an AntiAliasInterpolation2d of `scale`: int(1 / scale), as the original
    truncates it."""
    return 1 if scale == 1 else int(1 / scale)


def downsampled_size(frame, scale: float) -> tuple[int, int]:
    """(height, width) of a frame after AntiAliasInterpolation2d(scale): every step-th pixel
    from the first, so the size rounds up."""
    step = downsample_step(scale)
    return -(-frame[0] // step), -(-frame[1] // step)


def anti_alias_sigma(scale: float) -> float:
    return (1 / scale - 1) / 2


def anti_alias_kernel_size(scale: float) -> int:
    """2 * round(4 * sigma) + 1 with sigma = (1/scale - 1) / 2 (Python's round, half to even)."""
    return 2 * round(anti_alias_sigma(scale) * 4) + 1


# BatchNorm2d's epsilon in every block of the original (torch's default).
BN_EPSILON = 1e-5

# The hull area's exact predicates and sum, in int32 only (converter/exact.py: runtimes
# that emulate int64 as int32 - OpenVINO's CPU plugin, tfjs, GPU delegates - overflow
# anything wider): points are clipped to [-HULL_BOUND, HULL_BOUND] and rounded to
# multiples of HULL_BOUND * 2**-HULL_GRID_BITS = 2**-27 (float32 holds every coordinate
# of magnitude >= 2**-4 on that grid), so grid coordinates have |q| <= 2**28 and their
# differences |d| <= 2**29; products of differences are computed in HULL_LIMBS limbs of
# HULL_LIMB_BITS bits.
HULL_BOUND = 2.0
HULL_GRID_BITS = 28
HULL_LIMB_BITS = 11
HULL_LIMBS = 3


# The generator's final 7x7 conv becomes a stride-2 conv + depth-to-space below this many
# output channels (3 channels waste most of a GEMM), on frames of even size.
STRIDE2_MAX_CHANNELS = 16


def use_stride2_final(frame, out_channels: int) -> bool:
    """Whether the final conv of a generator on (height, width) frames takes stride 2."""
    return frame is not None and frame[0] % 2 == 0 and frame[1] % 2 == 0 \
        and out_channels < STRIDE2_MAX_CHANNELS


# Where Winograd pays, measured per layer shape on this project's machine (AVX-512, batch
# 1; XNNPACK by scripts/measure_xnnpack.py, onnxruntime with converter/bench/).
# XNNPACK (TFLite): F(2x2, 3x3) gains 1.4-2x on every 3x3 conv with 32+ channels on both
# sides up to 128x128 and loses at 256x256 with 64 channels (the transforms are
# memory-bound there); F(4x4, 3x3) gains more from 64x64 on (best ms at 1 thread, direct /
# F2 / F4: 64x64 256->256 48 / 27 / 17; 128x128 128->256 99 / 77 / 49; 64x64 44->128
# 4.2 / 2.8 / 2.1; 256x256 64->128 112 / 127 / 102; 2 threads gave the same order, on a
# machine too loaded for threads to scale), and less below, where its weights are 2.3x
# F2's (F2 / F4: 32x32 128->256 3.3 / 2.5 ms; 16x16 256->512 3.1 / 2.5 ms for 10 MB
# more; 8x8 512->1024 3.8 / 3.5 ms for 42 MB more).
# onnxruntime: its direct conv is faster, and F(2x2, 3x3) gains 1.1-1.5x only with 128+
# channels on both sides; F(4x4, 3x3) from 64x64 on: vox-256 `generate` at 1 / 2
# threads took 724 / 381 ms direct, 573 / 396 with F(2x2, 3x3) on every layer with 128+
# channels, 499 / 263 with F(4x4, 3x3) on the 64x64 bottleneck instead (505 / 274 with
# F(4x4, 3x3) on the smaller layers too).
# F(4x4, 3x3)'s larger rounding stays far inside the image tolerance (ONNX frames 3.2e-6
# from the direct graph's; TFLite's 1.6e-6 from torch's, where F(2x2, 3x3) gave 1.4e-6).
# TPSMM's exported graph (tpsmm/tf_model/fast.py) takes these rules too, on its dense
# motion and inpainting decoders (tpsmm-vox TFLite: the 64x64 and 128x128 resblocks and the
# hourglass's 64x64 block by F(4x4, 3x3), the 32x32 resblocks and 8x8..32x32 hourglass
# blocks by F(2x2, 3x3)): the static file's frame 6.06 -> 2.54 s at 1 thread (interleaved,
# load 5-6), every gate passing with margins no thinner (docs/performance.md, "TPSMM:
# rewrites").
WINOGRAD_TARGETS = ("xnnpack", "mlas", "all", "all-f4")
# Below this many pixels a conv stays direct: Winograd's weights are 16/9 as large, and on
# vox-256 the 4x4 layer (1024 -> 1024 channels) gave 2 ms per frame for 30 MB of file.
WINOGRAD_MIN_PIXELS = 64
# Both runtimes take F(4x4, 3x3) from this many pixels on (sizes divisible by 4).
WINOGRAD_F4_MIN_PIXELS = 64 * 64


def winograd_tile(kernel_shape, padding: int, size, target: str | None) -> int:
    """The output tile m of the Winograd F(m x m, 3x3) a conv ([kh, kw, I, O], padding,
    input (height, width)) takes for a runtime target: 0 (a direct conv), 2 or 4.

    Targets: "xnnpack" (TFLite, and the SavedModel, which shares its graph), "mlas"
    (onnxruntime), "all" and "all-f4" (every eligible conv, F(2x2, 3x3) or, where the size
    allows, F(4x4, 3x3): tests), None (none)."""
    if target is None or size is None:
        return 0
    if target not in WINOGRAD_TARGETS:
        raise ValueError(f"unknown Winograd target {target!r} (known: {WINOGRAD_TARGETS})")
    (kh, kw, cin, cout), (height, width) = kernel_shape, size
    if (kh, kw) != (3, 3) or padding != 1 or height % 2 or width % 2:
        return 0
    narrow, pixels = min(cin, cout), height * width
    if target.startswith("all"):
        f4 = target == "all-f4"
    elif pixels < WINOGRAD_MIN_PIXELS or narrow < {"xnnpack": 32, "mlas": 128}[target]:
        return 0
    else:
        f4 = pixels >= WINOGRAD_F4_MIN_PIXELS
    if f4 and height % 4 == 0 and width % 4 == 0:
        return 4
    if target == "xnnpack" and pixels > 128 * 128 and narrow < 128:
        return 0
    return 2


# Below this many input pixels an UpBlock2d keeps upsample + 3x3 conv: the phase conv's
# weights are 16/9 as large, and on inputs this small reading them bounds the time (the
# dense-motion decoder's 2x2, 4x4 and 8x8 blocks hold most of the generator's weights: on
# vox-256 the phase conv there gave no measurable time for 63 MB of TFLite file).
PHASE_MIN_PIXELS = 16 * 16


def use_phase_conv(size) -> bool:
    """Whether an UpBlock2d with a low-resolution input of (height, width) takes the phase
    conv (always when the size is unknown)."""
    return size is None or size[0] * size[1] >= PHASE_MIN_PIXELS


# XNNPACK runs the phase conv (4*O outputs) by Winograd F(2x2, 2x2) faster from this many
# input channels on, the fewest measured (scripts/measure_xnnpack.py on a loaded machine,
# best ms at 1 / 2 threads, phase conv then F(2x2, 2x2), input size, I -> O: 64x64
# 256 -> 128 60 / 44, 29 / 29; 16x16 512 -> 128 5.8 / 5.9, 3.7 / 4.1; 32x32 256 -> 64
# 5.5 / 2.8, 3.5 / 4.0 (medians 5.6 / 5.5, 3.7 / 4.2); 128x128 128 -> 64 50 / 46,
# 46 / 43, memory-bound: one run of four gave 55 / 53, 68 / 57). onnxruntime's graph
# keeps the phase conv.
PHASE_WINOGRAD_MIN_CHANNELS = 128


def use_phase_winograd(in_channels: int, target: str | None) -> bool:
    """Whether the phase conv of an UpBlock2d (use_phase_conv) with in_channels takes
    Winograd F(2x2, 2x2) for a runtime target (see winograd_tile; only "xnnpack" and the
    tests' "all" and "all-f4" do)."""
    if target is None:
        return False
    if target not in WINOGRAD_TARGETS:
        raise ValueError(f"unknown Winograd target {target!r} (known: {WINOGRAD_TARGETS})")
    return target.startswith("all") or (target == "xnnpack"
                                        and in_channels >= PHASE_WINOGRAD_MIN_CHANNELS)
