"""Every size and structural decision of the TPSMM networks, framework-free.

The Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022; upstream
yoyo-nb/Thin-Plate-Spline-Motion-Model, MIT) as its demo runs it: a resnet18 keypoint
detector, a dense motion network, an inpainting network and an AVD network. Shared by
the torch reference and, later, the TF graph and the signatures. What FOMM shares with it
(the hourglass channel plan, the anti-alias kernel and downsampled size) stays in
converter/architecture.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..architecture import downsampled_size, hourglass_channels

# The checkpoint entries the demo loads (demo.load_checkpoints), in the order it builds
# them. A `bg_predictor` entry (configs with common_params.bg) is never used in inference
# (the demo passes bg_param=None; only reconstruction.py runs it): a reader skips it, as it
# skips the optimizer state and the epoch.
NETWORKS = ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network")
UNUSED_NETWORKS = ("bg_predictor",)

# The original demo's animation modes (--mode), its default first.
MODES = ("relative", "standard", "avd")
# Each thin-plate spline has this many control points; the detector gives 5 * num_tps
# keypoints, consecutive groups of 5 forming one TPS.
POINTS_PER_TPS = 5
# The TPS system L = [[U(r^2) + REG * I5, P], [P^T, REG * I3]], U(r^2) = r^2 log(r^2 + EPS).
TPS_REGULARIZATION = 0.01
TPS_LOG_EPSILON = 1e-9
# The heatmaps' gaussian variance (dense motion's kp_variance).
KP_VARIANCE = 0.01
# With multi_mask (every published config) the dense motion network gives this many
# occlusion maps, at H/8, H/4, H/2 and H whatever its scale factor.
OCCLUSION_MAPS = 4
# InstanceNorm2d's and BatchNorm's epsilon everywhere (torch's default).
NORM_EPSILON = 1e-5

# torchvision's resnet18 (the keypoint detector's backbone; no size knob in the original):
# a 7x7 stride-2 stem of STEM_WIDTH channels, a 3x3 stride-2 max pool, then stages of
# BLOCKS_PER_STAGE basic blocks of these (width, stride), global average pool, fc.
RESNET18_STEM_WIDTH = 64
RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))
RESNET18_BLOCKS_PER_STAGE = 2
# The background predictor of `bg` configs (never run at inference): a resnet18 named
# bg_encoder reading source and driving stacked, giving a 2x3 affine transform.
BG_PREDICTOR = {"prefix": "bg_encoder.", "in_channels": 6, "outputs": 6}
# The AVD network's fixed hidden widths (encoders widen through them, the decoder narrows).
AVD_WIDTHS = (256, 512, 1024)
# The exported graph's widest sum in one of its linear layers (tf_model/fast.py AVD slices).
AVD_SLICE = 128


def num_keypoints(num_tps: int) -> int:
    return POINTS_PER_TPS * num_tps


def network_arguments(model_params: dict) -> dict[str, dict]:
    """The constructor arguments of each network (NETWORKS) from an original config's
    model_params, as demo.load_checkpoints passes them, for the torch and the TF models;
    what no published checkpoint uses is refused."""
    common = model_params["common_params"]
    num_tps, num_channels = common["num_tps"], common["num_channels"]
    if num_channels != 3:
        raise ValueError(f"num_channels {num_channels}: the keypoint detector's resnet18 "
                         "takes 3 (RGB)")
    if not common.get("multi_mask", True):
        raise ValueError("multi_mask False is not supported (no published checkpoint uses "
                         "it)")
    return {"kp_detector": {"num_tps": num_tps},
            "dense_motion_network": {"num_tps": num_tps, "num_channels": num_channels,
                                     **model_params["dense_motion_params"]},
            "inpainting_network": {"num_channels": num_channels,
                                   **model_params["generator_params"]},
            "avd_network": {"num_tps": num_tps, **model_params["avd_network_params"]}}


@dataclass(frozen=True)
class DenseMotionPlan:
    """The dense motion network's channels, in module order.

    hourglass: (encoder, decoder) (in, out) pairs (converter/architecture.py); outputs:
    channels of each decoder output after its skip concatenation (the last one at the
    dense-motion size); up: (in, out) of the up blocks after the hourglass; occlusion:
    (in channels, source) of each occlusion conv, source ("hourglass", i) or ("up", i),
    indices into the outputs / up blocks, from the coarsest map (H/8) to the finest (H).
    """
    in_features: int
    hourglass: tuple
    outputs: tuple
    up: tuple
    occlusion: tuple


def dense_motion_plan(block_expansion, num_blocks, max_features, num_tps, num_channels,
                      scale_factor) -> DenseMotionPlan:
    """The original's rules: the hourglass reads the K+1 deformed sources and the 5K+1
    heatmap channels; log2(1/scale) up blocks halve the last output's channels each; the
    first OCCLUSION_MAPS - log2(1/scale) occlusion maps come from the last hourglass
    outputs, the rest from the up blocks."""
    in_features = num_channels * (num_tps + 1) + num_keypoints(num_tps) + 1
    encoder, decoder = hourglass_channels(block_expansion, in_features, num_blocks,
                                          max_features)
    skips = [in_features] + [out for _, out in encoder[:-1]]
    outputs = tuple(out + skip for (_, out), skip in zip(decoder, reversed(skips)))
    up_count = upsamplings(scale_factor)
    from_hourglass = OCCLUSION_MAPS - up_count
    if from_hourglass > num_blocks:
        raise ValueError(f"dense motion: num_blocks {num_blocks} gives {num_blocks} hourglass "
                         f"outputs; scale_factor {scale_factor} needs {from_hourglass}")
    last = outputs[-1]
    up = tuple((last >> i, last >> (i + 1)) for i in range(up_count))
    occlusion = tuple((outputs[i], ("hourglass", i))
                      for i in range(num_blocks - from_hourglass, num_blocks))
    occlusion += tuple((out, ("up", i)) for i, (_, out) in enumerate(up))
    return DenseMotionPlan(in_features, (tuple(encoder), tuple(decoder)), outputs, up,
                           occlusion)


def upsamplings(scale_factor: float) -> int:
    """log2(1 / scale_factor): the up blocks from the dense-motion size to the frame's."""
    count = round(math.log2(1 / scale_factor))
    if not 0 <= count <= OCCLUSION_MAPS or 2.0 ** -count != scale_factor:
        raise ValueError(f"dense motion: scale_factor {scale_factor} is not 1/2**k for k "
                         f"in 0..{OCCLUSION_MAPS}")
    return count


@dataclass(frozen=True)
class InpaintingPlan:
    """The inpainting network's channels, in module order: down (in, out) pairs; up
    (in, out) pairs from the coarsest; resblock widths (two per up block, coarsest
    first)."""
    down: tuple
    up: tuple
    resblock: tuple


def inpainting_plan(block_expansion, max_features, num_down_blocks) -> InpaintingPlan:
    """Down block i: width(i) -> width(i+1); the decoder mirrors it, each up block reading
    its input concatenated with the warped encoder features of the same size (twice the
    width) except the innermost; two residual blocks precede each up block."""
    if num_down_blocks != OCCLUSION_MAPS - 1:
        raise ValueError(f"inpainting: num_down_blocks must be {OCCLUSION_MAPS - 1} (one "
                         f"occlusion map per resolution), got {num_down_blocks}")

    def width(i):
        return min(max_features, block_expansion * 2 ** i)
    down = tuple((width(i), width(i + 1)) for i in range(num_down_blocks))
    decoder_in = [out * (1 if i == num_down_blocks - 1 else 2)
                  for i, (_, out) in enumerate(down)]
    up = tuple((decoder_in[i], width(i)) for i in reversed(range(num_down_blocks)))
    resblock = tuple(c for c, _ in up for _ in range(2))
    return InpaintingPlan(down, up, resblock)


def dense_motion_size(frame, scale_factor: float) -> tuple[int, int]:
    """(h, w) the dense motion network works at: the anti-aliased downsample's."""
    return downsampled_size(frame, scale_factor)


def occlusion_sizes(frame) -> list[tuple[int, int]]:
    """(height, width) of the occlusion maps, coarsest first: H/8, H/4, H/2, H."""
    return [(frame[0] >> (OCCLUSION_MAPS - 1 - i), frame[1] >> (OCCLUSION_MAPS - 1 - i))
            for i in range(OCCLUSION_MAPS)]


def check_frame(frame, scale_factor: float, num_blocks: int) -> None:
    """The sizes the original runs at: H and W divisible by 8 (the inpainting network
    multiplies features by occlusion maps without resizing) and the dense-motion size by
    2**num_blocks (its hourglass concatenates skips of halved sizes)."""
    step = 2 ** (OCCLUSION_MAPS - 1)
    if frame[0] % step or frame[1] % step:
        raise ValueError(f"frame {frame[0]}x{frame[1]}: height and width must be "
                         f"multiples of {step}")
    h, w = dense_motion_size(frame, scale_factor)
    if h % 2 ** num_blocks or w % 2 ** num_blocks:
        raise ValueError(f"frame {frame[0]}x{frame[1]}: the dense motion size {h}x{w} must "
                         f"be a multiple of 2**num_blocks = {2 ** num_blocks}")
