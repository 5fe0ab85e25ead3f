"""The TF graph: its ops against torch, every layer against the original (oracle), every
config without an oracle against our torch reference, the encode-once path against the
full generator, and the TFLite conversion (builtin ops only) against TF."""
from __future__ import annotations

import contextlib
import io
import re
from collections import OrderedDict

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.signatures import signatures
from fomm_convert.spec import load_spec
from fomm_convert.tf_model import ops
from fomm_convert.tf_model.blocks import AntiAliasInterpolation2d as TFAntiAlias
from fomm_convert.torch_model import build_models as build_torch_models
from fomm_convert.torch_model import load_weights
from fomm_convert.torch_model.blocks import AntiAliasInterpolation2d, make_coordinate_grid
from fomm_convert.tf_model.functions import kp_detector_function, model_functions
from fomm_convert.tf_model.weights import build_tf_models

from conftest import FIXTURES, ORACLE, builds, config_path, require_oracle

# Max abs, as in the design: keypoint values 1e-5, everything else 1e-4.
VALUE_TOL = 1e-5
TOL = 1e-4
NETS = ("kp_detector", "generator")


def nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))


def nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))


def tol(name: str) -> float:
    return VALUE_TOL if name.endswith("value") else TOL


def max_diffs(ours: dict, reference: dict, names) -> dict:
    """{name: max abs diff} (inf for a shape mismatch) over `names`."""
    out = {}
    for name in names:
        a, b = np.asarray(ours[name]), np.asarray(reference[name])
        out[name] = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
    return out


def assert_close(diffs: dict):
    """Fail listing every output above its tolerance, worst first."""
    bad = {n: d for n, d in diffs.items() if not d <= tol(n)}
    assert not bad, "above tolerance: " + ", ".join(
        f"{n}={d:.3g}" for n, d in sorted(bad.items(), key=lambda kv: -kv[1]))


def read_checkpoint(path) -> dict:
    checkpoint = load_checkpoint(path)
    return {net: OrderedDict(getattr(checkpoint, net)) for net in NETS}


def np_kp(out: dict) -> dict:
    return {k: v.numpy() for k, v in out.items()}


# ---------------------------------------------------------------- ops against torch
def test_coordinate_grid_matches_torch():
    np.testing.assert_array_equal(ops.coordinate_grid(5, 7), make_coordinate_grid(5, 7).numpy())


@pytest.mark.parametrize("size_in,size_out", [
    ((32, 32), (64, 64)), ((64, 64), (128, 128)), ((32, 32), (16, 16)),
    ((24, 32), (12, 16)), ((8, 16), (64, 128)), ((24, 32), (48, 64)), ((5, 7), (9, 11))])
def test_resize_bilinear_matches_torch(size_in, size_out):
    x = np.random.default_rng(0).standard_normal((2, 2, *size_in)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(x), size=size_out, mode="bilinear",
                             align_corners=False).numpy()
    ours = nchw(ops.resize_bilinear(tf.constant(nhwc(x)), *size_out).numpy())
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel_size,padding", [(7, 0), (7, 1), (7, 3), (3, 1), (3, 2)])
def test_conv2d_padding_matches_torch(kernel_size, padding):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 11, 14)).astype(np.float32)
    weight = rng.standard_normal((4, 3, kernel_size, kernel_size)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias),
                        padding=padding).numpy()
    ours = ops.conv2d(tf.constant(nhwc(x)), tf.constant(weight.transpose(2, 3, 1, 0)),
                      tf.constant(bias), padding)
    # Outputs reach ~15 here (unit-variance weights): float32 sums agree to ~1e-6 relative.
    np.testing.assert_allclose(nchw(ours.numpy()), expected, rtol=0,
                               atol=1e-6 * np.abs(expected).max())


def test_upsample_nearest_matches_torch():
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 7)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(x), scale_factor=2).numpy()
    np.testing.assert_array_equal(nchw(ops.upsample_nearest2x(tf.constant(nhwc(x))).numpy()),
                                  expected)


@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch(align_corners):
    rng = np.random.default_rng(2)
    image = rng.standard_normal((2, 3, 9, 13)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, (2, 6, 11, 2)).astype(np.float32)
    grid[0, 0, :4] = [[-1, -1], [1, 1], [-1, 1], [1, -1]]  # exact corners
    grid[1, 0, :3] = [[5, 0], [0, -7], [1e6, -1e6]]  # far outside
    expected = F.grid_sample(torch.from_numpy(image), torch.from_numpy(grid), mode="bilinear",
                             padding_mode="zeros", align_corners=align_corners).numpy()
    ours = ops.grid_sample(tf.constant(nhwc(image)), tf.constant(grid[..., 0:1]),
                           tf.constant(grid[..., 1:2]), align_corners).numpy()
    np.testing.assert_allclose(nchw(ours), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale,shape", [(0.25, (30, 45)), (0.5, (17, 24)), (0.125, (64, 40))])
def test_anti_alias_matches_torch(scale, shape):
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, *shape)).astype(np.float32)
    reference = AntiAliasInterpolation2d(3, scale)
    ours = TFAntiAlias(3, scale)
    ours.kernel.assign(reference.weight.numpy().transpose(2, 3, 0, 1))
    expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(nchw(ours(tf.constant(nhwc(x))).numpy()), expected, atol=1e-6)


def test_kernel_comes_from_the_checkpoint_not_recomputed():
    _, generator = build_tf_models(
        load_spec(config_path("tiny")),
        _perturbed_down(read_checkpoint(FIXTURES / "tiny-seed7.pth.tar")))
    kernel = generator.dense_motion_network.down.kernel.numpy()
    assert kernel[2, 2, 0, 0] == pytest.approx(0.5)


def _perturbed_down(checkpoint):
    weight = checkpoint["generator"]["dense_motion_network.down.weight"].copy()
    weight[0, 0, 2, 2] = 0.5
    checkpoint["generator"]["dense_motion_network.down.weight"] = weight
    return checkpoint


# ---------------------------------------------------------------- oracle parity
@pytest.fixture(scope="module")
def tiny_case():
    spec = load_spec(config_path("tiny"))
    checkpoint = load_checkpoint(FIXTURES / "tiny-seed7.pth.tar")
    kp_detector, generator = build_tf_models(spec, checkpoint)
    return spec, checkpoint, kp_detector, generator, dict(np.load(FIXTURES / "tiny.npz"))


@pytest.fixture(scope="module")
def intermediates():
    require_oracle("tiny_intermediates.npz")
    return dict(np.load(ORACLE / "tiny_intermediates.npz"))


def _compare_taps(prefix: str, taps: dict, recorded: dict):
    names = [n[len(prefix):] for n in recorded if n.startswith(prefix)]
    missing = sorted(set(names) - set(taps))
    assert not missing, f"no TF tap for {missing}"
    assert_close(max_diffs(taps, {n: recorded[prefix + n] for n in names}, names))


@pytest.mark.parametrize("prefix,image", [("kp_source/", "source"),
                                          ("kp_driving0/", "driving")])
def test_kp_detector_layers_match_oracle(tiny_case, intermediates, prefix, image):
    _, _, kp_detector, _, case = tiny_case
    taps = {}
    kp_detector(nhwc(case[image][:1]), taps=taps)
    _compare_taps(prefix, taps, intermediates)


@pytest.mark.parametrize("prefix,norm", [("generator/", "norm_rel1_adapt1"),
                                         ("generator_abs/", "norm_rel0_adapt0")])
def test_generator_layers_match_oracle(tiny_case, intermediates, prefix, norm):
    _, _, _, generator, case = tiny_case
    taps = {}
    generator(nhwc(case["source"]), case[f"{norm}_value"][:1], case[f"{norm}_jacobian"][:1],
              case["kp_source_value"], case["kp_source_jacobian"], taps=taps)
    _compare_taps(prefix, taps, intermediates)


GEN_LAYOUT = {"prediction": nchw, "mask": nchw, "occlusion_map": nchw, "deformed": nchw,
              "deformation": lambda a: a,
              "sparse_deformed": lambda a: np.transpose(a, (0, 1, 4, 2, 3))}


def _oracle_end_to_end(config, checkpoint_file, npz):
    spec = load_spec(config_path(config))
    checkpoint = read_checkpoint(FIXTURES / checkpoint_file)
    kp_detector, generator = build_tf_models(spec, checkpoint)
    _, generator_ac = build_tf_models(spec.with_align_corners(True), checkpoint)
    case = dict(np.load(FIXTURES / npz))
    ours = {}
    for name, image in (("kp_source", case["source"]), ("kp_driving", case["driving"])):
        for key, value in kp_detector(nhwc(image)).items():
            ours[f"{name}_{key}"] = value.numpy()

    rows = case["gen_frame_positions"]

    def run(model, norm):  # source batch 1, driving batch G: tiled in-graph
        return model(nhwc(case["source"]), case[f"{norm}_value"][rows],
                     case[f"{norm}_jacobian"][rows], case["kp_source_value"],
                     case["kp_source_jacobian"])
    for key, value in run(generator, "norm_rel1_adapt1").items():
        if f"gen_{key}" in case:
            ours[f"gen_{key}"] = GEN_LAYOUT[key](value.numpy())
    ours["gen_abs_prediction"] = nchw(run(generator, "norm_rel0_adapt0")["prediction"].numpy())
    ours["gen_ac_prediction"] = nchw(run(generator_ac, "norm_rel1_adapt1")["prediction"].numpy())
    return ours, case


@pytest.mark.parametrize("config,checkpoint,npz", [
    ("tiny", "tiny-seed7.pth.tar", "tiny.npz"),
    ("tiny-single-jac", "tiny-single-jac-seed7.pth.tar", "tiny-single-jac.npz")])
def test_end_outputs_match_oracle(config, checkpoint, npz):
    ours, case = _oracle_end_to_end(config, checkpoint, npz)
    expected = {"kp_source_value", "kp_source_jacobian", "kp_driving_value",
                "kp_driving_jacobian", "gen_prediction", "gen_mask", "gen_occlusion_map",
                "gen_deformation", "gen_sparse_deformed", "gen_deformed", "gen_abs_prediction",
                "gen_ac_prediction"}
    assert set(ours) == expected
    assert_close(max_diffs(ours, case, sorted(expected)))


# ---------------------------------------------------------------- torch-reference parity
def random_state(module: torch.nn.Module, seed: int) -> OrderedDict:
    """Every state_dict tensor from a seeded rng, with sensible magnitudes: He-normal convs,
    BN near identity with positive running_var, near-identity jacobians, a normalised
    positive (but not Gaussian) anti-aliasing kernel."""
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for key, tensor in module.state_dict().items():
        shape = tuple(tensor.shape)
        leaf = key.rsplit(".", 1)[-1]
        parent = key.rsplit(".", 2)[-2] if key.count(".") else ""
        if leaf == "num_batches_tracked":
            value = np.zeros(shape, np.int64)
        elif key.endswith("down.weight"):
            value = rng.uniform(0.5, 1.5, shape)
            value /= value.sum(axis=(2, 3), keepdims=True)
        elif parent.startswith("norm"):
            value = {"weight": lambda: 1 + rng.normal(0, 0.1, shape),
                     "bias": lambda: rng.normal(0, 0.1, shape),
                     "running_mean": lambda: rng.normal(0, 0.1, shape),
                     "running_var": lambda: rng.uniform(0.5, 1.5, shape)}[leaf]()
        elif parent == "jacobian":
            fan_in = int(np.prod(shape[1:])) if leaf == "weight" else 0
            value = (rng.normal(0, 0.15 / np.sqrt(fan_in), shape) if leaf == "weight" else
                     np.tile([1.0, 0.0, 0.0, 1.0], shape[0] // 4) + rng.normal(0, 0.1, shape))
        elif leaf == "weight":
            value = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
        else:
            value = rng.normal(0, 0.05, shape)
        out[key] = np.asarray(value, dtype=tensor.numpy().dtype)
    return out


def smooth_images(n: int, frame_shape, seed: int) -> np.ndarray:
    """(n, H, W, C) smooth random images in [0, 1]."""
    h, w, c = frame_shape
    coarse = np.random.default_rng(seed).uniform(0, 1, (n, c, 6, 8)).astype(np.float32)
    fine = F.interpolate(torch.from_numpy(coarse), size=(h, w), mode="bicubic",
                         align_corners=False).clamp(0, 1).numpy()
    return nhwc(fine)


class TorchTaps:
    """Forward hooks recording every module's output by its path, like the oracle's."""

    def __init__(self, module):
        self.taps = {}
        self.handles = [m.register_forward_hook(self._hook(name or "<root>"))
                        for name, m in module.named_modules()]

    def _hook(self, name):
        def hook(_module, _inputs, output):
            if isinstance(output, dict):
                for key, value in output.items():
                    self.taps[f"{name}:{key}"] = value.detach().numpy().copy()
            elif isinstance(output, (list, tuple)):
                for i, value in enumerate(output):
                    self.taps[f"{name}:{i}"] = value.detach().numpy().copy()
            else:
                self.taps[name] = output.detach().numpy().copy()
        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()


# Configs without an oracle. tiny-nonsquare: 48x64 frames (a height/width swap anywhere
# breaks it). tiny-512like: dense motion at 1/8 against features at 1/4 (the deformation
# is resized up to the features, like vox-512), also non-square.
REFERENCE_CONFIGS = ["tiny-pad", "tiny-nojac", "tiny-noocc", "tiny-nonsquare", "tiny-512like"]


def _reference_case(config: str, seed: int = 11):
    spec = load_spec(FIXTURES / "configs" / f"{config}.yaml")
    torch_kp, torch_gen = build_torch_models(spec)
    checkpoint = {"kp_detector": random_state(torch_kp, seed),
                  "generator": random_state(torch_gen, seed + 1)}
    load_weights(torch_kp, checkpoint["kp_detector"], "kp_detector")
    load_weights(torch_gen, checkpoint["generator"], "generator")
    kp_detector, generator = build_tf_models(spec, checkpoint)
    return spec, (torch_kp, torch_gen), (kp_detector, generator), checkpoint


@pytest.mark.parametrize("config", REFERENCE_CONFIGS)
def test_matches_torch_reference(config):
    spec, (torch_kp, torch_gen), (kp_detector, generator), _ = _reference_case(config)
    source = smooth_images(1, spec.frame_shape, 1)
    driving = smooth_images(3, spec.frame_shape, 2)
    diffs = {}
    with torch.no_grad():
        torch_source = torch_kp(torch.from_numpy(nchw(source)))
        torch_driving = torch_kp(torch.from_numpy(nchw(driving)))
    for name, image, reference in (("kp_source", source, torch_source),
                                   ("kp_driving", driving, torch_driving)):
        ours = np_kp(kp_detector(image))
        assert set(ours) == set(reference)
        diffs.update({f"{name}_{k}": float(np.abs(ours[k] - reference[k].numpy()).max())
                      for k in ours})

    # The generator on the reference keypoints (absolute motion), source batch 1 vs 3.
    kp_inputs = {"kp_driving": torch_driving["value"], "kp_source": torch_source["value"]}
    if spec.estimate_jacobian:
        kp_inputs.update(kp_driving_jacobian=torch_driving["jacobian"],
                         kp_source_jacobian=torch_source["jacobian"])
    kp_inputs = {k: v.numpy() for k, v in kp_inputs.items()}
    with torch.no_grad():
        expand = {k: torch.from_numpy(v).expand(3, *v.shape[1:]) for k, v in kp_inputs.items()
                  if k.startswith("kp_source")}
        reference = torch_gen(
            torch.from_numpy(nchw(source)).expand(3, -1, -1, -1),
            kp_driving={"value": torch.from_numpy(kp_inputs["kp_driving"]),
                        **({"jacobian": torch.from_numpy(kp_inputs["kp_driving_jacobian"])}
                           if spec.estimate_jacobian else {})},
            kp_source={"value": expand["kp_source"],
                       **({"jacobian": expand["kp_source_jacobian"]}
                          if spec.estimate_jacobian else {})})
    ours = generator(source, **kp_inputs)
    assert set(ours) == set(reference)
    assert ("occlusion_map" in ours) == spec.generator["estimate_occlusion_map"]
    for key, value in ours.items():
        diffs[f"gen_{key}"] = float(np.abs(GEN_LAYOUT[key](value.numpy())
                                           - reference[key].numpy()).max())
    assert_close(diffs)


def torch_taps(model, *args, **kwargs):
    """(output, {tap name: numpy}) of one torch call, recorded with forward hooks."""
    hooks = TorchTaps(model)
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    finally:
        hooks.close()
    return out, hooks.taps


@pytest.mark.parametrize("config", ["tiny-nonsquare", "tiny-512like"])
def test_layers_match_torch_reference(config):
    """Every tap against torch forward hooks, so a divergence names its layer."""
    spec, (torch_kp, torch_gen), (kp_detector, generator), _ = _reference_case(config)
    source = smooth_images(1, spec.frame_shape, 3)
    driving = smooth_images(1, spec.frame_shape, 4)
    with torch.no_grad():
        kp_driving = torch_kp(torch.from_numpy(nchw(driving)))
    kp_source, reference = torch_taps(torch_kp, torch.from_numpy(nchw(source)))
    taps = {}
    kp_detector(source, taps=taps)
    _, gen_reference = torch_taps(torch_gen, torch.from_numpy(nchw(source)),
                                  kp_driving=kp_driving, kp_source=kp_source)
    generator(source, kp_driving["value"].numpy(), kp_driving["jacobian"].numpy(),
              kp_source["value"].numpy(), kp_source["jacobian"].numpy(),
              taps=(gen_taps := {}))
    for ours, expected in ((taps, reference), (gen_taps, gen_reference)):
        missing = sorted(set(expected) - set(ours))
        assert not missing, f"no TF tap for {missing}"
        assert_close(max_diffs(ours, expected, sorted(expected)))


def test_512like_resizes_the_deformation_up():
    spec, _, (kp_detector, generator), _ = _reference_case("tiny-512like")
    source = smooth_images(1, spec.frame_shape, 5)
    kp = np_kp(kp_detector(source))
    taps = {}
    out = generator(source, kp["value"], kp["jacobian"], kp["value"], kp["jacobian"],
                    taps=taps)
    h, w, _ = spec.frame_shape
    assert out["deformation"].shape == (1, h // 8, w // 8, 2)
    assert taps["down_blocks.1"].shape[2:] == (h // 4, w // 4)
    assert out["deformed"].shape == (1, h, w, 3)


# ---------------------------------------------------------------- encode once, generate
@pytest.mark.parametrize("source_batch", [1, 3])
def test_encode_source_then_generate_equals_generator(tiny_case, source_batch):
    _, _, _, generator, case = tiny_case
    source = np.repeat(nhwc(case["source"]), source_batch, axis=0)
    kp = {"kp_driving": case["norm_rel1_adapt1_value"][2:5],
          "kp_driving_jacobian": case["norm_rel1_adapt1_jacobian"][2:5],
          "kp_source": np.repeat(case["kp_source_value"], source_batch, axis=0),
          "kp_source_jacobian": np.repeat(case["kp_source_jacobian"], source_batch, axis=0)}
    full = generator(source, **kp)["prediction"].numpy()
    encoded = generator.encode_source(source)
    assert encoded["source_features"].shape == (source_batch, 16, 16, 32)
    assert encoded["source_down"].shape == (source_batch, 32, 32, 3)
    frames = generator.generate(encoded["source_features"], encoded["source_down"], **kp)
    assert set(frames) == {"prediction"}
    assert frames["prediction"].shape == (3, 64, 64, 3)
    assert np.abs(frames["prediction"].numpy() - full).max() <= 1e-5


def test_encode_once_without_jacobians():
    spec, _, (kp_detector, generator), _ = _reference_case("tiny-nojac")
    source = smooth_images(1, spec.frame_shape, 6)
    driving = smooth_images(3, spec.frame_shape, 7)
    kp_source, kp_driving = kp_detector(source), kp_detector(driving)
    assert set(kp_source) == {"value"}
    full = generator(source, kp_driving["value"], kp_source["value"])["prediction"]
    encoded = generator.encode_source(source)
    frames = generator.generate(encoded["source_features"], encoded["source_down"],
                                kp_driving=kp_driving["value"], kp_source=kp_source["value"])
    assert np.abs(frames["prediction"].numpy() - full.numpy()).max() <= 1e-5
    with pytest.raises(TypeError):
        generator(source, kp_driving["value"], kp_source["value"],
                  kp_driving_jacobian=np.zeros((3, 5, 2, 2), np.float32))


# ---------------------------------------------------------------- TFLite
def tflite_model(function, module) -> bytes:
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def tflite_ops(model: bytes) -> set[str]:
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=model)
    return set(re.findall(r"Op#\d+ (\w+)\(", text.getvalue()))


@pytest.fixture(scope="module")
@builds
def tflite_tiny(tiny_case):
    spec, _, kp_detector, generator, _ = tiny_case
    functions = model_functions(spec, kp_detector, generator)
    detect, generate = functions["kp_detector"][1], functions["generator"][1]
    return {"kp_detector": tflite_model(detect["serving_default"], kp_detector),
            "generator": tflite_model(generate["serving_default"], generator),
            "generate": tflite_model(generate["generate"], generator)}


def test_tflite_has_builtin_ops_only(tflite_tiny):
    for name, model in tflite_tiny.items():
        found = tflite_ops(model)
        assert "CONV_2D" in found and "RESHAPE" in found, name
        flex = sorted(op for op in found if op.startswith("Flex") or op == "CUSTOM"
                      or not op.isupper())
        assert not flex, f"{name}: non-builtin ops {flex}"
    assert {"GATHER", "RESIZE_BILINEAR", "DEPTHWISE_CONV_2D"} <= tflite_ops(
        tflite_tiny["generator"])


def test_tflite_matches_tf(tiny_case, tflite_tiny):
    from ai_edge_litert.interpreter import Interpreter

    _, _, kp_detector, generator, case = tiny_case

    def run(name, **inputs):
        interpreter = Interpreter(model_content=tflite_tiny[name])
        return interpreter.get_signature_runner()(**inputs)

    driving = nhwc(case["driving"][:3])
    diffs = {}
    lite = run("kp_detector", image=driving)
    for key, value in kp_detector(driving).items():
        diffs[f"kp_{key}"] = float(np.abs(lite[key] - value.numpy()).max())

    kp = {"kp_driving": case["norm_rel1_adapt1_value"][1:4],
          "kp_driving_jacobian": case["norm_rel1_adapt1_jacobian"][1:4],
          "kp_source": case["kp_source_value"], "kp_source_jacobian": case["kp_source_jacobian"]}
    source = nhwc(case["source"])  # batch 1 against a driving batch of 3
    lite = run("generator", source_image=source, **kp)
    reference = generator(source, **kp)
    assert set(lite) == set(reference)
    for key, value in reference.items():
        diffs[f"gen_{key}"] = float(np.abs(lite[key] - value.numpy()).max())
    encoded = generator.encode_source(source)
    lite = run("generate", source_features=encoded["source_features"].numpy(),
               source_down=encoded["source_down"].numpy(), **kp)
    diffs["generate_prediction"] = float(
        np.abs(lite["prediction"] - reference["prediction"].numpy()).max())
    assert_close(diffs)


# ---------------------------------------------------------------- vox-256 (one full-size case)
# Keypoint values of a full-size model sit close to the 1e-5 design number: the logits are
# divided by temperature 0.1 before the spatial softmax. Max abs against a float64 run of
# the same weights (vox-256, 9 images): the oracle itself 9.3e-6; TF with oneDNN 3.1e-5;
# TF with its Eigen convolutions 8.9e-6, which is why converter/__init__.py turns oneDNN off.


@pytest.fixture(scope="module")
def vox256(vox256_checkpoint):
    require_oracle("vox-256.npz")
    spec = load_spec("vox")
    kp_detector, generator = build_tf_models(spec, load_checkpoint(vox256_checkpoint))
    case = dict(np.load(ORACLE / "vox-256.npz"))
    ours = {}
    for name, image in (("kp_source", case["source"]), ("kp_driving", case["driving"])):
        # Per frame at batch 1, as the oracle ran the detector (batching moves values ~6e-6),
        # through the graph function the artifacts are made from (eager kernels differ).
        detect = kp_detector_function(kp_detector,
                                      signatures(spec)["kp_detector"]["serving_default"])
        frames = [detect(nhwc(image[i:i + 1])) for i in range(len(image))]
        for key in frames[0]:
            ours[f"{name}_{key}"] = np.concatenate([f[key].numpy() for f in frames])
    rows = case["gen_frame_positions"]
    out = generator(nhwc(case["source"]), case["norm_rel1_adapt1_value"][rows],
                    case["norm_rel1_adapt1_jacobian"][rows], case["kp_source_value"],
                    case["kp_source_jacobian"])
    for key, value in out.items():
        if f"gen_{key}" in case:
            ours[f"gen_{key}"] = GEN_LAYOUT[key](value.numpy())
    assert len(ours) == 10
    return max_diffs(ours, case, sorted(ours))


@pytest.mark.slow
def test_vox256_matches_oracle(vox256):
    """The one full-size case: 13x13 anti-alias kernel, 58x58 heatmaps (pad 0), no
    deformation resize for the features, 64x64 -> 256x256 for `deformed`."""
    assert_close(vox256)
