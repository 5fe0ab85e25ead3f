"""FLOPs per call of each model of a spec, counted analytically: 2 x the multiply-adds of
every convolution and matrix product, plus the elementwise work of BatchNorm, activations,
pooling and grid_sample. The floor of a benchmark is these FLOPs over the machine's matmul
throughput (run.py)."""
from __future__ import annotations

from ..architecture import (anti_alias_kernel_size, downsampled_size, generator_channels,
                            halved, hourglass_channels, use_phase_conv, use_phase_winograd,
                            use_stride2_final, winograd_tile)

# The Winograd target (architecture.winograd_tile) of each graph flop_counts counts.
WINOGRAD_TARGET = {"reference": None, "xnnpack": "xnnpack", "mlas": "mlas"}
GRAPHS = tuple(WINOGRAD_TARGET)


def _conv(h, w, k, cin, cout, pad):
    """(FLOPs, output size) of a stride-1 conv: 2 x multiply-adds, plus the bias."""
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    return 2 * oh * ow * k * k * cin * cout + oh * ow * cout, (oh, ow)


# (tile m, taps r) -> the elementwise ops of one 1-D input and one 1-D output transform of
# the TF graph's Winograd F(m x m, r x r) (tf_model/winograd.py TRANSFORMS; tests/test_fast.py
# counts them).
TF_TRANSFORM_OPS = {(2, 3): (4, 4), (4, 3): (17, 13), (2, 2): (2, 2)}


def _tf_transforms(tile, taps, cin, cout):
    """Elementwise ops of the TF graph's transforms per tile: over the rows (m channel
    blocks wide per tile), then the a = m + r - 1 columns, and back."""
    forward, backward = TF_TRANSFORM_OPS[tile, taps]
    return (2 * tile + taps - 1) * (forward * cin + backward * cout)


def _conv3x3(h, w, cin, cout, tile: int, graph: str):
    """FLOPs of a 3x3 pad-1 conv, directly (tile 0) or by Winograd F(m x m, 3x3) (tile m):
    (m+2)^2 products of (cin x cout) per m x m output tile, plus the transforms: the TF
    graph's elementwise ops (_tf_transforms), dense products in the ONNX graph ((m+2)^4
    per input tile and channel, m^2 (m+2)^2 per output tile and channel)."""
    if not tile:
        return _conv(h, w, 3, cin, cout, 1)[0]
    a, tiles = tile + 2, (h // tile) * (w // tile)
    if graph == "mlas":
        transforms = 2 * a ** 4 * cin + 2 * tile ** 2 * a ** 2 * cout
    else:
        transforms = _tf_transforms(tile, 3, cin, cout)
    return tiles * (2 * a * a * cin * cout + transforms) + h * w * cout


def _down(size, cin, cout, graph):
    """A DownBlock2d at input `size`: 3x3 conv (Winograd where the target takes it),
    BN + ReLU (folded into the conv in the fast graphs: ReLU only), 2x2 average pool."""
    tile = winograd_tile((3, 3, cin, cout), 1, size, WINOGRAD_TARGET[graph])
    flops = _conv3x3(*size, cin, cout, tile, graph)
    flops += size[0] * size[1] * cout * (1 if graph != "reference" else 3)
    pooled = halved(size)
    return flops + pooled[0] * pooled[1] * cout * 4, pooled


def _up(h, w, cin, cout, graph):
    """An UpBlock2d at input (h, w): nearest x2 + 3x3 conv (+ BN + ReLU); in the fast
    graphs the phase conv where it is used, a 2x2 conv with 4*cout channels over (h+1) x
    (w+1) positions, in the TF graph by Winograd F(2x2, 2x2) where it takes it: 9
    products per 2x2 block of (h+2) x (w+2) positions, plus the transforms."""
    if graph == "reference" or not use_phase_conv((h, w)):
        return _conv(2 * h, 2 * w, 3, cin, cout, 1)[0] + 3 * 4 * h * w * cout
    relu = 2 * 4 * h * w * cout
    if use_phase_winograd(cin, WINOGRAD_TARGET[graph]):
        tiles = ((h + 2) // 2) * ((w + 2) // 2)
        return tiles * (2 * 9 * cin * 4 * cout + _tf_transforms(2, 2, cin, 4 * cout)) + relu
    return 2 * (h + 1) * (w + 1) * 4 * cin * 4 * cout + relu


def _hourglass(h, w, block_expansion, in_features, num_blocks, max_features, graph):
    encoder, decoder = hourglass_channels(block_expansion, in_features, num_blocks,
                                          max_features)
    flops, sizes, size = 0, [], (h, w)
    for cin, cout in encoder:
        sizes.append(size)
        down, size = _down(size, cin, cout, graph)
        flops += down
    for (cin, cout), skip in zip(decoder, reversed(sizes)):
        flops += _up(*size, cin, cout, graph)
        size = skip
    return flops


def _anti_alias(h, w, channels, scale):
    """Depthwise blur at the strided outputs: 2 * k^2 per output value."""
    if scale == 1:
        return 0
    k = anti_alias_kernel_size(scale)
    return 2 * k * k * h * w * channels


def counted(spec) -> bool:
    """Whether flop_counts knows a spec's architecture: the sections it reads are FOMM's
    (a keypoint detector hourglass); TPSMM's resnet18 detector and TPS dense motion are
    not counted yet, so its benchmark has no floor."""
    return {"kp_detector_params", "generator_params", "dense_motion_params"} <= set(spec.params)


def flop_counts(spec, graph: str = "reference") -> dict:
    """FLOPs per call of each model of a spec at batch 1, for the reference function
    ("reference") or a fast graph ("xnnpack": TFLite/SavedModel, "mlas": ONNX).

    Keys: kp_detector, process_kp_driving, encode_source, generator_encoded (generate
    from encoded features), generator (the full generator, which also computes the
    diagnostic `deformed`), frame (kp_detector + process_kp_driving + generator_encoded).
    """
    if graph not in WINOGRAD_TARGET:
        raise ValueError(f"unknown graph {graph!r}")
    fast = graph != "reference"
    height, width, channels = spec.frame_shape
    k = spec.num_kp
    jac = spec.estimate_jacobian
    kpp, gp, dp = spec.kp_detector, spec.generator, spec.dense_motion

    # Keypoint detector.
    kh, kw = downsampled_size((height, width), kpp["scale_factor"])
    kp = _anti_alias(kh, kw, channels, kpp["scale_factor"])
    # Every exported graph keeps the detector's reference structure (docs/design.md, "Rewrites").
    kp += _hourglass(kh, kw, kpp["block_expansion"], channels, kpp["num_blocks"],
                     kpp["max_features"], "reference")
    features = kpp["block_expansion"] + channels
    pad = kpp["pad"]
    head, (hh, hw) = _conv(kh, kw, 7, features, k, pad)
    kp += head + 4 * hh * hw * k  # softmax (exp, sum, divide) + expected coordinates
    if jac:
        maps = 1 if kpp["single_jacobian_map"] else k
        kp += _conv(kh, kw, 7, features, 4 * maps, pad)[0] + 2 * hh * hw * 4 * k
    process = 200 * k  # hull area and the 2x2 algebra: negligible

    # Generator: source encoder.
    be, n_down = gp["block_expansion"], gp["num_down_blocks"]
    down_blocks, up_blocks, bottleneck = generator_channels(be, gp["max_features"], n_down)
    encode = _conv(height, width, 7, channels, be, 3)[0] \
        + height * width * be * (1 if fast else 3)
    size = (height, width)
    for cin, cout in down_blocks:
        down, size = _down(size, cin, cout, graph)
        encode += down
    dh, dw = downsampled_size((height, width), dp["scale_factor"])
    encode += _anti_alias(dh, dw, channels, dp["scale_factor"])

    # Dense motion (per frame).
    n = k + 1
    dense = 2 * dh * dw * k * 12  # two gaussians per keypoint
    dense += dh * dw * k * (12 if jac else 4)  # sparse motions
    dense += dh * dw * n * (channels * 8 + 20)  # grid_sample of the K+1 motions
    dense += _hourglass(dh, dw, dp["block_expansion"], n * (channels + 1), dp["num_blocks"],
                        dp["max_features"], graph)
    dfeatures = dp["block_expansion"] + n * (channels + 1)
    dense += _conv(dh, dw, 7, dfeatures, n, 3)[0] + 4 * dh * dw * n  # mask + softmax
    dense += 4 * dh * dw * n  # deformation = sum of mask * motions
    if gp["estimate_occlusion_map"]:
        dense += _conv(dh, dw, 7, dfeatures, 1, 3)[0] + 4 * dh * dw

    # Decoder (per frame).
    fh, fw = size
    decode = fh * fw * (bottleneck * 8 + 20)  # warp the features
    decode += fh * fw * bottleneck if gp["estimate_occlusion_map"] else 0
    tile = winograd_tile((3, 3, bottleneck, bottleneck), 1, size, WINOGRAD_TARGET[graph])
    for _ in range(gp["num_bottleneck_blocks"]):
        decode += 2 * _conv3x3(fh, fw, bottleneck, bottleneck, tile, graph)
        decode += fh * fw * bottleneck * (4 if fast else 6)  # norm1 (+ norm2), ReLUs, add
    for cin, cout in up_blocks:
        decode += _up(fh, fw, cin, cout, graph)
        fh, fw = 2 * fh, 2 * fw
    if fast and use_stride2_final((fh, fw), channels):  # 8x8 conv to 4 * channels
        decode += 2 * (fh // 2) * (fw // 2) * 64 * be * 4 * channels
    else:
        decode += _conv(fh, fw, 7, be, channels, 3)[0]
    decode += 4 * fh * fw * channels  # sigmoid

    deformed = height * width * (channels * 8 + 20)
    generate = dense + decode
    return {"kp_detector": kp, "process_kp_driving": process, "encode_source": encode,
            "generator_encoded": generate, "generator": encode + generate + deformed,
            "frame": kp + process + generate}
