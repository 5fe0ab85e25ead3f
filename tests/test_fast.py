"""The fast (exported) graphs: each rewrite against torch, op by op, and the fast models
against the reference-structured ones they are derived from.

Rewrites (converter/algebra.py): BatchNorm folding, nearest-upsample + 3x3 conv
as a phase conv + depth-to-space (and that by Winograd F(2x2, 2x2)), Winograd F(2x2, 3x3)
and F(4x4, 3x3), and the space-to-depth form of a conv with few output channels. Models: converter/tf_model/fast.py (TFLite/SavedModel) and
its torch twin converter/torch_model/fast.py (ONNX). Tolerances: keypoints 1e-5, every
other output 1e-4 (max abs), the numbers the release gates hold.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.spec import load_spec
from fomm_convert import algebra, architecture
from fomm_convert.signatures import signatures
from fomm_convert.tf_model import fast, winograd
from fomm_convert.tf_model.functions import generate_function
from fomm_convert.tf_model.weights import build_tf_models

from conftest import FIXTURES, fast_first
from test_tf_model import nchw, nhwc, random_state, smooth_images

VALUE_TOL = 1e-5
TOL = 1e-4
OP_TOL = 1e-5  # a single op on O(1) values


def rng_array(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def torch_conv(x_nhwc, kernel_hwio, bias, padding):
    out = F.conv2d(torch.from_numpy(nchw(x_nhwc)),
                   torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose(3, 2, 0, 1))),
                   torch.from_numpy(bias), padding=padding)
    return nhwc(out.numpy())


def conv_case(rng, cin, cout, k, h, w):
    x = rng_array(rng, 2, h, w, cin)
    kernel = rng_array(rng, k, k, cin, cout, scale=np.sqrt(2 / (k * k * cin)))
    bias = rng_array(rng, cout, scale=0.1)
    return x, kernel, bias


# ---------------------------------------------------------------- rewrites vs torch
def test_fold_bn_matches_torch_conv_then_batchnorm():
    rng = np.random.default_rng(0)
    x, kernel, bias = conv_case(rng, 6, 5, 3, 9, 7)
    gamma, beta = 1 + rng_array(rng, 5, scale=0.3), rng_array(rng, 5, scale=0.3)
    mean, var = rng_array(rng, 5, scale=0.3), rng.uniform(0.2, 2.0, 5).astype(np.float32)
    bn = torch.nn.BatchNorm2d(5).eval()
    bn.load_state_dict({"weight": torch.from_numpy(gamma), "bias": torch.from_numpy(beta),
                        "running_mean": torch.from_numpy(mean),
                        "running_var": torch.from_numpy(var),
                        "num_batches_tracked": torch.tensor(0)})
    with torch.no_grad():
        expected = nhwc(bn(torch.from_numpy(nchw(torch_conv(x, kernel, bias, 1)))).numpy())
    folded_kernel, folded_bias = algebra.fold_bn(kernel, bias, gamma, beta, mean, var)
    assert folded_kernel.dtype == folded_bias.dtype == np.float32
    ours_torch = torch_conv(x, folded_kernel, folded_bias, 1)
    ours_tf = fast.FusedConv(folded_kernel, folded_bias, 1, relu=False)(x).numpy()
    even = x[:, :8, :6]  # Winograd F(2x2, 3x3) takes even sizes
    with torch.no_grad():
        expected_even = nhwc(bn(torch.from_numpy(nchw(torch_conv(even, kernel, bias, 1))))
                             .numpy())
    by_winograd = fast.FusedConv(folded_kernel, folded_bias, 1, False, tile=2)
    assert np.abs(by_winograd(even).numpy() - expected_even).max() <= OP_TOL
    assert np.abs(ours_torch - expected).max() <= OP_TOL
    assert np.abs(ours_tf - expected).max() <= OP_TOL


@pytest.mark.parametrize("h,w", [(8, 8), (5, 7), (6, 10)])
def test_phase_conv_matches_torch_upsample_then_conv(h, w):
    rng = np.random.default_rng(1)
    x, kernel, bias = conv_case(rng, 7, 5, 3, h, w)
    up = F.interpolate(torch.from_numpy(nchw(x)), scale_factor=2)  # nearest
    expected = torch_conv(nhwc(up.numpy()), kernel, bias, 1)
    ours = winograd.phase_upsample_conv(x, algebra.phase_kernels(kernel), np.tile(bias, 4),
                                    relu=False).numpy()
    assert ours.shape == expected.shape == (2, 2 * h, 2 * w, 5)
    assert np.abs(ours - expected).max() <= OP_TOL
    relu = winograd.phase_upsample_conv(x, algebra.phase_kernels(kernel), np.tile(bias, 4)).numpy()
    assert np.abs(relu - np.maximum(expected, 0)).max() <= OP_TOL


@pytest.mark.parametrize("h,w", [(8, 8), (5, 7), (6, 10)])
def test_winograd_phase_conv_matches_torch_upsample_then_conv(h, w):
    rng = np.random.default_rng(1)
    x, kernel, bias = conv_case(rng, 7, 5, 3, h, w)
    up = F.interpolate(torch.from_numpy(nchw(x)), scale_factor=2)  # nearest
    expected = np.maximum(torch_conv(nhwc(up.numpy()), kernel, bias, 1), 0)
    ours = winograd.winograd_phase_conv(x, algebra.phase_winograd_kernels(kernel),
                                    np.tile(bias, 4)).numpy()
    assert ours.shape == expected.shape == (2, 2 * h, 2 * w, 5)
    assert np.abs(ours - expected).max() <= OP_TOL


def test_use_phase_winograd_from_128_input_channels_on_xnnpack():
    use = architecture.use_phase_winograd
    assert use(128, "xnnpack") and use(512, "xnnpack")
    assert not use(64, "xnnpack")
    assert not use(1024, "mlas") and not use(1024, None)
    assert use(4, "all") and use(4, "all-f4")
    with pytest.raises(ValueError):
        use(256, "gpu")


def test_small_up_blocks_keep_upsample_and_conv():
    """Below architecture.PHASE_MIN_PIXELS input pixels an up block keeps the 3x3 kernel (the
    phase kernel is 16/9 as large); every form equals the reference block."""
    from fomm_convert.tf_model.blocks import UpBlock2d
    rng = np.random.default_rng(7)
    ref = UpBlock2d(6, 5)
    for variable, value in ((ref.conv.kernel, rng_array(rng, 3, 3, 6, 5, scale=0.3)),
                            (ref.conv.bias, rng_array(rng, 5, scale=0.1)),
                            (ref.norm.gamma, 1 + rng_array(rng, 5, scale=0.2)),
                            (ref.norm.beta, rng_array(rng, 5, scale=0.2)),
                            (ref.norm.moving_mean, rng_array(rng, 5, scale=0.2)),
                            (ref.norm.moving_variance, rng.uniform(0.5, 2, 5).astype(np.float32))):
        variable.assign(value)
    side = int(np.sqrt(architecture.PHASE_MIN_PIXELS))
    for size, phase, target in (((side // 2, side // 2), False, "all"),
                                ((side, side), True, None), (None, True, None),
                                ((side, side), True, "all")):
        block = fast.FastUpBlock(ref, size, target)
        assert block.phase == phase and block.winograd == (phase and target == "all")
        assert tuple(block.kernel.shape) == ((3, 3, 6, 20) if block.winograd else
                                             (2, 2, 6, 20) if phase else (3, 3, 6, 5))
        x = rng_array(rng, 1, 5, 7, 6)
        assert np.abs(block(x).numpy() - ref(x).numpy()).max() <= OP_TOL


def test_phase_kernels_sum_the_taps_of_each_low_resolution_pixel():
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1)
    phases = algebra.phase_kernels(kernel).reshape(2, 2, 4)
    # Phase (1, 1): output (2r, 2c) reads low-res rows r-1 <- kernel row 0, r <- rows 1, 2.
    np.testing.assert_array_equal(phases[:, :, 3], [[0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]])
    # Every phase uses all nine taps once.
    np.testing.assert_array_equal(phases.sum(axis=(0, 1)), [36] * 4)


# F(4x4, 3x3) rounds more (transform entries up to 8): 1.1e-5 measured on these O(1) values.
@pytest.mark.parametrize("tile, h, w, cin, cout, tol",
                         [(2, 8, 8, 6, 5, OP_TOL), (2, 6, 10, 4, 7, OP_TOL),
                          (2, 2, 4, 3, 3, OP_TOL), (4, 8, 8, 6, 5, 5e-5),
                          (4, 4, 12, 12, 10, 5e-5), (4, 16, 8, 12, 10, 5e-5)])
@pytest.mark.parametrize("relu", [False, True])
def test_winograd_matches_torch_conv3x3(tile, h, w, cin, cout, tol, relu):
    rng = np.random.default_rng(2)
    x, kernel, bias = conv_case(rng, cin, cout, 3, h, w)
    expected = torch_conv(x, kernel, bias, 1)
    if relu:
        expected = np.maximum(expected, 0)
    ours = winograd.winograd_conv3x3(x, algebra.winograd_kernels(kernel, tile), bias, relu,
                                 tile).numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= tol


WINOGRAD_FORMS = {(2, 3): algebra.WINOGRAD[2], (4, 3): algebra.WINOGRAD[4],
                  (2, 2): algebra.WINOGRAD_2TAP}


@pytest.mark.parametrize("form", list(WINOGRAD_FORMS))
def test_winograd_transforms_of_the_tf_graph_are_the_algebra_matrices(form):
    """winograd.TRANSFORMS (shared sums for F(4x4, 3x3)) applied to unit vectors give the rows
    of B^T and A^T, exactly."""
    bt, _, at = WINOGRAD_FORMS[form]
    forward, backward = winograd.TRANSFORMS[form]
    for matrix, transform in ((bt, forward), (at, backward)):
        units = list(np.eye(matrix.shape[1]))
        np.testing.assert_array_equal(np.array(transform(units)), matrix)


class OpCount:
    """A stand-in tensor that counts the elementwise ops applied to it (shared)."""

    def __init__(self, counter):
        self.counter = counter

    def _op(self, *_):
        self.counter[0] += 1
        return OpCount(self.counter)

    __add__ = __sub__ = __mul__ = __neg__ = _op


@pytest.mark.parametrize("form", list(WINOGRAD_FORMS))
def test_flop_model_counts_the_transform_ops_of_the_tf_graph(form):
    from fomm_convert.bench.flops import TF_TRANSFORM_OPS
    counts = []
    for transform in winograd.TRANSFORMS[form]:
        counter = [0]
        transform([OpCount(counter) for _ in range(sum(form) - 1)])
        counts.append(counter[0])
    assert tuple(counts) == TF_TRANSFORM_OPS[form]


def test_winograd_f4_needs_sizes_divisible_by_4():
    x, kernel, bias = conv_case(np.random.default_rng(3), 3, 3, 3, 6, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        winograd.winograd_conv3x3(x, algebra.winograd_kernels(kernel, 4), bias, False, 4)


def test_winograd_needs_3x3_pad_1_and_an_even_size():
    def use(*conv):
        return architecture.winograd_tile(*conv) > 0
    assert use((3, 3, 256, 256), 1, (64, 64), "xnnpack")
    assert use((3, 3, 256, 256), 1, (64, 64), "mlas")
    assert not use((3, 3, 256, 256), 1, (63, 64), "all")
    assert not use((3, 3, 256, 256), 2, (64, 64), "all")
    assert not use((7, 7, 256, 256), 3, (64, 64), "all")
    assert not use((3, 3, 256, 256), 1, (64, 64), None)
    assert not use((3, 3, 256, 256), 1, None, "all")
    assert use((3, 3, 3, 8), 1, (8, 8), "all")
    # Where it does not pay: narrow layers on onnxruntime, 258x258 x 64 on XNNPACK (F(2x2,
    # 3x3) only: not divisible by 4), any layer below 8x8 pixels but in the tests' targets.
    assert not use((3, 3, 44, 128), 1, (64, 64), "mlas")
    assert not use((3, 3, 64, 128), 1, (258, 258), "xnnpack")
    assert not use((3, 3, 1024, 1024), 1, (4, 4), "xnnpack")
    assert use((3, 3, 1024, 1024), 1, (4, 4), "all")
    with pytest.raises(ValueError):
        use((3, 3, 8, 8), 1, (8, 8), "gpu")


def test_winograd_tile_f4_on_large_layers():
    tile = architecture.winograd_tile
    assert tile((3, 3, 256, 256), 1, (64, 64), "mlas") == 4
    assert tile((3, 3, 256, 256), 1, (64, 64), "xnnpack") == 4
    assert tile((3, 3, 44, 128), 1, (64, 64), "xnnpack") == 4
    assert tile((3, 3, 64, 128), 1, (256, 256), "xnnpack") == 4
    assert tile((3, 3, 256, 512), 1, (32, 32), "mlas") == 2  # below 64x64
    assert tile((3, 3, 128, 256), 1, (32, 32), "xnnpack") == 2
    assert tile((3, 3, 256, 256), 1, (66, 66), "mlas") == 2  # not divisible by 4
    assert tile((3, 3, 256, 256), 1, (66, 66), "xnnpack") == 2
    assert tile((3, 3, 44, 128), 1, (64, 64), "mlas") == 0
    assert tile((3, 3, 16, 128), 1, (64, 64), "xnnpack") == 0
    assert tile((3, 3, 256, 256), 1, (64, 64), None) == 0
    assert tile((3, 3, 8, 8), 1, (8, 8), "all-f4") == 4
    assert tile((3, 3, 8, 8), 1, (8, 8), "all") == 2


@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_transforms_are_exact_in_float64(tile):
    """Y = A^T [(G g G^T) * (B^T d B)] A is the (tile+2)^2 window's valid 3x3 correlation."""
    bt, g, at = algebra.WINOGRAD[tile]
    rng = np.random.default_rng(tile)
    d, kernel = rng.standard_normal((tile + 2, tile + 2)), rng.standard_normal((3, 3))
    y = at @ ((g @ kernel @ g.T) * (bt @ d @ bt.T)) @ at.T
    direct = np.array([[np.sum(d[r:r + 3, c:c + 3] * kernel) for c in range(tile)]
                       for r in range(tile)])
    assert np.abs(y - direct).max() <= 1e-12


# F(4x4, 3x3) rounds more (transform entries up to 8): 1.5e-5 measured on these O(1) values.
@pytest.mark.parametrize("tile, tol", [(2, OP_TOL), (4, 5e-5)])
@pytest.mark.parametrize("relu", [False, True])
def test_torch_winograd_conv_matches_torch_conv3x3(tile, tol, relu):
    from fomm_convert.torch_model import fast as torch_fast
    x, kernel, bias = conv_case(np.random.default_rng(tile), 12, 10, 3, 16, 8)
    expected = torch_conv(x, kernel, bias, 1)
    expected = np.maximum(expected, 0) if relu else expected
    conv = torch_fast.FusedConv(kernel, bias, 1, relu, tile)
    with torch.no_grad():
        ours = nhwc(conv(torch.from_numpy(nchw(x))).numpy())
    assert np.abs(ours - expected).max() <= tol


@pytest.mark.parametrize("k,h,w,cout", [(7, 12, 10, 3), (3, 6, 8, 2), (5, 4, 4, 1)])
def test_stride2_conv_matches_torch(k, h, w, cout):
    rng = np.random.default_rng(4)
    x, kernel, bias = conv_case(rng, 6, cout, k, h, w)
    expected = torch_conv(x, kernel, bias, k // 2)
    conv = fast.Stride2Conv(kernel, bias, k // 2)
    assert tuple(conv.kernel.shape) == (k + 1, k + 1, 6, 4 * cout)
    assert np.abs(conv(x).numpy() - expected).max() <= OP_TOL


# ---------------------------------------------------------------- torch (ONNX) twins
def test_torch_rewrites_match_torch_reference_ops():
    from fomm_convert.torch_model import fast as torch_fast
    from fomm_convert.torch_model.blocks import ResBlock2d, UpBlock2d
    torch.manual_seed(0)
    rng = np.random.default_rng(5)

    def randomise_bn(norm):
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.3)
            norm.running_mean.normal_(0, 0.3)
            norm.running_var.uniform_(0.3, 2.0)

    up = UpBlock2d(6, 5).eval()
    randomise_bn(up.norm)
    x = torch.from_numpy(rng_array(rng, 2, 6, 5, 7))
    with torch.no_grad():
        assert (torch_fast.FastUpBlock(up)(x) - up(x)).abs().max() <= OP_TOL
        small = torch_fast.FastUpBlock(up, (2, 2))
        assert not small.phase
        assert (small(x) - up(x)).abs().max() <= OP_TOL
    res = ResBlock2d(8, 3, 1).eval()
    randomise_bn(res.norm1)
    randomise_bn(res.norm2)
    x = torch.from_numpy(rng_array(rng, 2, 8, 6, 10))
    with torch.no_grad():
        for target in (None, "all"):
            fast_res = torch_fast.FastResBlock(res, (6, 10), target)
            assert fast_res.conv1.tile == (2 if target == "all" else 0)
            assert (fast_res(x) - res(x)).abs().max() <= OP_TOL
    final = torch.nn.Conv2d(8, 3, 7, padding=3)
    x = torch.from_numpy(rng_array(rng, 2, 8, 12, 10))
    with torch.no_grad():
        assert (torch_fast.Stride2Conv(final)(x) - final(x)).abs().max() <= OP_TOL


# ---------------------------------------------------------------- fast vs reference models
def _models(config: str, seed: int = 11):
    spec = load_spec(FIXTURES / "configs" / f"{config}.yaml")
    if config == "tiny":
        checkpoint = load_checkpoint(FIXTURES / "tiny-seed7.pth.tar")
    else:
        from fomm_convert.torch_model import build_models
        torch_kp, torch_gen = build_models(spec)
        checkpoint = {"kp_detector": random_state(torch_kp, seed),
                      "generator": random_state(torch_gen, seed + 1)}
    return spec, build_tf_models(spec, checkpoint)


def _keypoints(spec, kp_detector, source, driving):
    kp_source = {k: v.numpy() for k, v in kp_detector(source).items()}
    kp_driving = {k: v.numpy() for k, v in kp_detector(driving).items()}
    args = [kp_driving["value"], kp_source["value"]]
    if spec.estimate_jacobian:
        args = [kp_driving["value"], kp_driving["jacobian"], kp_source["value"],
                kp_source["jacobian"]]
    return args


def _max_diffs(ours: dict, reference: dict) -> dict:
    assert set(ours) == set(reference)
    return {k: float(np.abs(np.asarray(ours[k]) - np.asarray(reference[k])).max())
            for k in ours}


def _check(diffs: dict):
    bad = {k: d for k, d in diffs.items()
           if not d <= (VALUE_TOL if k.endswith("value") else TOL)}
    assert not bad, f"above tolerance: {bad}"


# winograd "all": every eligible 3x3 conv of the tiny models takes Winograd F(2x2, 3x3),
# "all-f4" F(4x4, 3x3) where the size is divisible by 4, as the wide ones of the full-size
# models do (None: none does).
# The fast tier runs the non-square case of each matrix (it catches a height/width swap).
@pytest.mark.parametrize("config", fast_first("tiny-nonsquare", "tiny", "tiny-512like",
                                              "tiny-nojac", "tiny-noocc", "tiny-pad"))
@pytest.mark.parametrize("winograd", ["all", "all-f4", None])
def test_fast_models_equal_reference_structured(config, winograd):
    spec, (kp_detector, generator) = _models(config)
    fast_kp, fast_gen = fast.fast_models(kp_detector, generator, winograd, winograd)
    tiles = {m.tile for m in fast_gen.submodules if isinstance(m, fast.FusedConv)}
    assert {"all": tiles == {0, 2}, "all-f4": 4 in tiles and 0 in tiles,
            None: tiles == {0}}[winograd], tiles
    ups = [m.winograd for m in fast_gen.submodules if isinstance(m, fast.FastUpBlock)]
    assert any(ups) == (winograd is not None)
    source = smooth_images(1, spec.frame_shape, 1)
    driving = smooth_images(3, spec.frame_shape, 2)
    diffs = {}
    for name, image in (("source", source), ("driving", driving)):
        ref, ours = kp_detector(image), fast_kp(image)
        diffs.update({f"kp_{name}_{k}": v for k, v in _max_diffs(
            {k: v.numpy() for k, v in ours.items()},
            {k: v.numpy() for k, v in ref.items()}).items()})
    args = _keypoints(spec, kp_detector, source, driving)
    ref = {k: v.numpy() for k, v in generator(source, *args).items()}
    ours = {k: v.numpy() for k, v in fast_gen(source, *args).items()}
    diffs.update({f"gen_{k}": v for k, v in _max_diffs(ours, ref).items()})
    encoded = fast_gen.encode_source(source)
    frames = fast_gen.generate(encoded["source_features"], encoded["source_down"], *args)
    diffs["generate_prediction"] = float(np.abs(frames["prediction"].numpy()
                                                - ref["prediction"]).max())
    _check(diffs)


def test_fast_blocks_record_the_reference_block_outputs():
    spec, (kp_detector, generator) = _models("tiny-nonsquare")
    fast_kp, fast_gen = fast.fast_models(kp_detector, generator, "all", "all")
    source = smooth_images(1, spec.frame_shape, 3)
    args = _keypoints(spec, kp_detector, source, smooth_images(1, spec.frame_shape, 4))
    for ref_model, fast_model, call in (
            (kp_detector, fast_kp, lambda m, taps: m(source, taps=taps)),
            (generator, fast_gen, lambda m, taps: m(source, *args, taps=taps))):
        ref_taps, fast_taps = {}, {}
        call(ref_model, ref_taps)
        call(fast_model, fast_taps)
        # Every fast tap is a reference tap; the block outputs are all there.
        assert set(fast_taps) <= set(ref_taps)
        blocks = [n for n in ref_taps if "_blocks." in n and n.count(".") <= 4
                  and not n.endswith((".conv", ".norm", ".pool"))]
        assert set(blocks) <= set(fast_taps)
        _check({n: float(np.abs(fast_taps[n] - ref_taps[n]).max()) for n in fast_taps})


def test_fast_generator_has_no_batchnorm_or_nearest_resize():
    spec, (kp_detector, generator) = _models("tiny")
    _, fast_gen = fast.fast_models(kp_detector, generator, "all")
    fn = generate_function(fast_gen, signatures(spec)["generator"]["generate"])
    graph = fn.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert "ResizeNearestNeighbor" not in ops
    assert "DepthToSpace" in ops
    # Every remaining multiply is small: no per-pixel BN scale at conv outputs beyond
    # ResBlock's norm1 (one per residual block).
    names = [v.name for v in fast_gen.variables]
    assert not any("gamma" in n or "moving" in n for n in names)


def test_fast_models_are_independent_copies_of_the_weights():
    spec, (kp_detector, generator) = _models("tiny")
    _, fast_gen = fast.fast_models(kp_detector, generator)
    source = smooth_images(1, spec.frame_shape, 5)
    args = _keypoints(spec, kp_detector, source, source)
    before = fast_gen(source, *args)["prediction"].numpy()
    generator.bottleneck.r0.norm1.gamma.assign(generator.bottleneck.r0.norm1.gamma * 2)
    assert np.array_equal(fast_gen(source, *args)["prediction"].numpy(), before)


@pytest.mark.parametrize("config", fast_first("tiny-nonsquare", "tiny", "tiny-512like",
                                              "tiny-nojac"))
@pytest.mark.parametrize("winograd", ["all", "all-f4", "mlas"])
def test_fast_torch_models_equal_the_torch_reference(config, winograd):
    """The ONNX route's modules: the reference's entry points on swapped-in fast blocks."""
    from fomm_convert.torch_model.fast import FusedConv, Stride2Conv, fast_torch_models
    from fomm_convert.torch_model import build_models, load_weights
    spec = load_spec(FIXTURES / "configs" / f"{config}.yaml")
    kp_detector, generator = build_models(spec)
    load_weights(kp_detector, random_state(kp_detector, 21), "kp_detector")
    load_weights(generator, random_state(generator, 22), "generator")
    fast_kp, fast_gen = fast_torch_models(spec, kp_detector, generator, winograd, winograd)
    convs = [m for m in fast_gen.modules() if isinstance(m, FusedConv)]
    tiles = {m.tile for m in convs}
    assert {"all": tiles == {0, 2}, "all-f4": 4 in tiles and 0 in tiles,
            "mlas": tiles == {0}}[winograd], tiles
    assert isinstance(fast_gen.final, Stride2Conv)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast_gen.modules())
    source = torch.from_numpy(nchw(smooth_images(1, spec.frame_shape, 1)))
    driving = torch.from_numpy(nchw(smooth_images(2, spec.frame_shape, 2)))
    diffs = {}
    with torch.no_grad():
        for name, image in (("source", source), ("driving", driving)):
            ref, ours = kp_detector(image), fast_kp(image)
            diffs.update({f"kp_{name}_{k}": float((ours[k] - ref[k]).abs().max()) for k in ref})
        kp_source = {k: v.expand(2, *v.shape[1:]) for k, v in kp_detector(source).items()}
        kp_driving = kp_detector(driving)
        ref = generator(source.expand(2, -1, -1, -1), kp_driving, kp_source)
        ours = fast_gen(source.expand(2, -1, -1, -1), kp_driving, kp_source)
        diffs.update({f"gen_{k}": float((ours[k] - ref[k]).abs().max()) for k in ref})
        features = fast_gen.encode(source).expand(2, -1, -1, -1)
        down = fast_gen.dense_motion_network.downsample(source).expand(2, -1, -1, -1)
        frames = fast_gen.generate(features, down, kp_driving, kp_source)
        diffs["generate_prediction"] = float((frames - ref["prediction"]).abs().max())
    _check(diffs)
