"""TPSMM in the TF formats (issue 21 item 6): a bundle of every TF format TPSMM's row lists
(families.py), built by the CLI from the oracle's tiny config and seed-7 weights
(conftest: tpsmm_bundle), each format's files through the gate, `predict` of each against
the original (../shared/oracle-tpsmm), the TF graph straight from a checkpoint
(`--backend tf`), the files' tensor types, their metadata and licence, the build's
reports, and `verify` and `inspect` of the bundle.

Tolerances (issue 21): keypoints 1e-5, the adapt scale 1e-5 relative, every other array
1e-4 relative to its largest magnitude where that exceeds 1.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from fomm_convert.bundle.manifest import read_manifest
from fomm_convert.cli import cli
from fomm_convert.export.tflite_file import read_tflite_metadata
from fomm_convert.export.tflite_graph import read_graph
from fomm_convert.families import FAMILIES
from fomm_convert.formats import FORMATS
from fomm_convert.parity.compare import load_tolerances

from conftest import TPSMM_ORACLE, require_tpsmm_oracle
from test_tpsmm_family import CONTRACT, assert_within, errors, oracle

TPSMM = FAMILIES["tpsmm"]
INT64, FLOAT16, INT8 = 4, 1, 9  # schema TensorType


def assert_meets(ours: dict, expected, precision: str = "fp32"):
    """The contract's arrays within issue 21's policy: a float16 file's within FP16 but
    its keypoints (and adapt scale), which its float32 keypoint models hold to float32's;
    an int8 file's frames within the int8 profile's image bound, every other array
    within float32's (its dense motion network, which makes them, is float32)."""
    assert set(ours) == CONTRACT
    found = errors(ours, expected)
    if precision == "int8":
        frames = {name for name in found if name.endswith("_prediction")}
        assert len(frames) == 3  # the three modes'
        assert_within({n: found.pop(n) for n in frames}, expected, INT8_IMAGE)
    assert_within(found, expected, FP16 if precision == "fp16" else 1e-4)


# Issue 21: tflite-fp16's frames within 1e-2 of the original (every array but the
# keypoints, relative to its largest magnitude beyond 1 as float32's 1e-4).
FP16 = 1e-2
# The int8 profile's bound of a frame (parity/tolerances.yaml), as the build's gate holds it.
INT8_IMAGE = load_tolerances(profile="int8").for_name("generator/avd/<root>:prediction").value


def run_predict(tmp_path, case: str, *source) -> dict:
    """`fomm-convert predict` on a case's oracle inputs; source: --bundle B --backend X or
    --config C --checkpoint CK --backend tf."""
    expected = oracle(case)
    inputs, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inputs, source=expected["source"], driving=expected["driving"])
    result = CliRunner().invoke(cli, ["predict", *source, "--inputs", str(inputs),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return dict(np.load(out))


# Against the recorded original, through each format's own keypoints, tiny-rect's worst
# arrays (measured 2026-12-07, the detector's double-float head and chunked convolutions:
# tpsmm/keypoint_head.py, tpsmm/tf_model/resnet.py; the AVD network's sums in 128-input
# slices: tpsmm/tf_model/fast.py): tflite and tflite-static avd prediction 5.9e-5 (it was
# 1.52e-4, then 9.4e-5 before the slices), relative `deformed` 3.1e-5 (1.19e-4); onnx
# relative `deformed` 7.3e-5 (1.35e-4); savedmodel avd prediction 5.1e-5 (5.3e-5).
# Their keypoints are 6.7e-7 to 9.4e-7 from the original's (which are 3.6e-7 from
# float64), and the warps amplify that ~100x: openvino's avd frames (8.9e-5) keep the
# least margin (tests/test_tpsmm_onnx.py).
@pytest.mark.parametrize("backend,case", [
    *((backend, "tiny") for backend in TPSMM.formats),
    *(pytest.param(backend, "tiny-rect", marks=pytest.mark.slow) for backend in TPSMM.formats)])
def test_every_format_meets_the_oracle(tpsmm_bundle, tmp_path, backend, case):
    """Every array of every mode, each format run by its backend (tiny in the fast tier,
    tiny-rect in the slow one)."""
    ours = run_predict(tmp_path, case, "--bundle", str(tpsmm_bundle(case)),
                       "--backend", backend)
    assert_meets(ours, oracle(case), FORMATS[backend].precision)


# Out of every tier (`make test` included): a vox-256 build takes 12 to 47 minutes here.
# Measured 2026-12-07, 2 cores: it passes (4 passed in 10 min, the command in the reason),
# its build, of the oracle's seed-7 weights, passing every gate, as does `build --dataset
# tpsmm-vox --synthetic` (docs/performance.md).
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TPSMM_VOX") != "1", reason=(
    "a vox-256 build (12-47 min): TPSMM_VOX=1 .venv/bin/python -m pytest "
    "tests/test_tpsmm_formats.py -k vox256"))
@pytest.mark.parametrize("backend", TPSMM.formats)
def test_vox256_keypoints_meet_the_oracle(tpsmm_bundle, tmp_path, backend):
    """As the torch reference (tests/test_tpsmm_torch.py, test_vox256_keypoints_end_to_end):
    vox-256's keypoints end to end, in every mode; its frames from a format's own
    keypoints are not held to the policy (the detector's few 1e-7, amplified by the warps
    as the original's own float32 noise is)."""
    expected = oracle("vox-256")
    ours = run_predict(tmp_path, "vox-256", "--bundle", str(tpsmm_bundle("vox-256")),
                       "--backend", backend, "--gen-frames", "0")
    keypoints = {k: v for k, v in ours.items()
                 if k.endswith("fg_kp") or k == "adapt_movement_scale"}
    assert len(keypoints) == 5
    assert_within(errors(keypoints, expected), expected)


# Slow: the fast tier holds the TF graph end to end (tests/test_tpsmm_tf.py).
@pytest.mark.slow
@pytest.mark.parametrize("case", ["tiny", "tiny-rect"])
def test_the_tf_backend_meets_the_oracle(tpsmm_checkpoint, tmp_path, case):
    require_tpsmm_oracle(f"configs/{case}.yaml")
    ours = run_predict(tmp_path, case, "--config", str(TPSMM_ORACLE / "configs" / f"{case}.yaml"),
                       "--checkpoint", str(tpsmm_checkpoint("tiny")), "--backend", "tf")
    assert_meets(ours, oracle(case))


def test_no_tflite_file_holds_an_int64_tensor(tpsmm_bundle):
    """Nor a float16 one but in the fp16 generators, nor an int8 one but in the int8
    generator (their inpainting weights: the keypoint models stay float32,
    TPSMM.float32_only)."""
    files = sorted((tpsmm_bundle("tiny") / "tflite").glob("*.tflite"))
    assert len(files) == len(TPSMM.models) * sum(
        FORMATS[name].kind == "tflite" for name in TPSMM.formats)
    for path in files:
        types = {t.type for graph in read_graph(path).subgraphs for t in graph.tensors}
        assert INT64 not in types, path.name
        generator = path.name.startswith("generator")
        assert (FLOAT16 in types) == (generator and path.name.endswith(".fp16.tflite")), (
            path.name, types)
        assert (INT8 in types) == (path.name == "generator.int8.tflite"), (path.name, types)
        assert types <= {0, 2, 6, FLOAT16, INT8}, (path.name, types)  # float32, int32, bool


FULLY_CONNECTED = 9  # schema BuiltinOperator


def test_the_avd_network_sums_in_slices(tpsmm_bundle):
    """Each TFLite AVD network's products over at most AVD_SLICE inputs (tpsmm/tf_model/
    fast.py, SlicedLinear: XNNPACK's one-chain sums put tiny-rect's avd frames at 0.94 of
    their tolerance), covering every input of its twelve linear layers: tiny's 15
    keypoints (30 inputs), bottlenecks of 16, widths 256, 512, 1024."""
    from fomm_convert.tpsmm.architecture import AVD_SLICE
    layers = 2 * (30 + 256 + 512 + 1024) + (32 + 1024 + 512 + 256)
    files = sorted((tpsmm_bundle("tiny") / "tflite").glob("avd_network*.tflite"))
    assert len(files) == sum(FORMATS[name].kind == "tflite" for name in TPSMM.formats)
    for path in files:
        graph = read_graph(path)
        inputs = [graph.subgraphs[0].tensors[op.inputs[1]].shape[1]
                  for op in graph.subgraphs[0].operators
                  if graph.codes[op.opcode].builtin == FULLY_CONNECTED]
        assert max(inputs) <= AVD_SLICE and sum(inputs) == layers, (path.name, inputs)


@pytest.fixture(scope="module")
def inpainting_weights(tpsmm_checkpoint):
    """The tiny checkpoint's inpainting weights as the exported graph holds them (its
    Winograd and phase kernels, tpsmm/tf_model/fast.py: not the checkpoint's, which the
    files do not hold), and the count of the a*a matrices its Winograd kernels
    [a, a, I, O] are held as (tf_model/winograd.py)."""
    import yaml
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.tpsmm.tf_model import build_tf_models
    from fomm_convert.tpsmm.tf_model.fast import exported_weights, fast_models
    networks = load_checkpoint(tpsmm_checkpoint("tiny"), family="tpsmm").networks
    config = yaml.safe_load((TPSMM_ORACLE / "configs" / "tiny.yaml").read_text())
    frame = tuple(oracle("tiny")["source"].shape[2:])
    exported = exported_weights(fast_models(
        build_tf_models(config["model_params"], networks), frame))["inpainting_network"]
    exported = [np.asarray(variable) for variable in exported.values()]
    assert sum(w.size for w in exported) > sum(
        w.size for w in networks["inpainting_network"].values())
    matrices = sum(w.shape[0] * w.shape[1] for w in exported if w.shape[:2] in
                   ((4, 4), (6, 6)))
    return exported, matrices


def serving_tensors(path, kind: int) -> list:
    """The tensors of a type in a file's serving_default subgraph."""
    graph = read_graph(path)
    (serving,) = (s.subgraph for s in graph.signatures if s.key == "serving_default")
    return [t for t in graph.subgraphs[serving].tensors if t.type == kind]


def test_float16_files_hold_the_inpainting_weights_alone(tpsmm_bundle, inpainting_weights):
    """The fp16 generators' float16 tensors are the inpainting network's weights as the
    exported graph holds them, each once in serving_default: the dense motion network and
    every other constant stay float32 (families.py, reduced_networks)."""
    exported, matrices = inpainting_weights
    for name in ("generator.fp16.tflite", "generator.static.fp16.tflite"):
        halves = [int(np.prod(t.shape)) for t in serving_tensors(
            tpsmm_bundle("tiny") / "tflite" / name, FLOAT16)]
        assert sum(halves) == sum(w.size for w in exported), name
        assert len(halves) >= matrices > 0, name


def test_the_int8_file_holds_the_inpainting_kernels_alone(tpsmm_bundle, inpainting_weights):
    """The int8 generator's int8 tensors are the inpainting network's kernels (its
    weights of two or more axes; biases and norms stay float32, as every dense motion
    weight), each once in serving_default, quantized per output channel: a scale and a
    zero point for each of the axis the convolution reads as its output channels."""
    exported, matrices = inpainting_weights
    kernels = [w for w in exported if w.ndim > 1]
    assert len(kernels) < len(exported)
    found = serving_tensors(tpsmm_bundle("tiny") / "tflite" / "generator.int8.tflite", INT8)
    assert sum(int(np.prod(t.shape)) for t in found) == sum(w.size for w in kernels)
    assert len(found) >= matrices > 0
    for t in found:
        q = t.quantization
        assert len(t.shape) == 4 and q.dimension == 0, t.name  # CONV_2D's [O, H, W, I]
        assert q.scale == q.zero_point == t.shape[0], t.name


def test_metadata_carries_the_tpsmm_licence(tpsmm_bundle):
    """Weights from the original's layout (not synth's): MIT, the authors' attribution."""
    bundle = tpsmm_bundle("tiny")
    manifest = read_manifest(bundle)
    terms = TPSMM.licence
    expected = {"weights": "converted from a Thin-Plate Spline Motion Model checkpoint",
                "license": "MIT", "license_url": terms.url,
                "attribution": f"{terms.paper} {terms.repository}"}
    assert manifest["licence"] == expected
    assert manifest["spec"]["family"] == "tpsmm"
    for path in sorted((bundle / "tflite").glob("*.tflite")):
        meta = read_tflite_metadata(path)
        assert meta["licence"] == expected, path.name
        assert meta["model"] in TPSMM.models and meta["role"], path.name


def test_build_reports_every_format_and_layer(tpsmm_bundle):
    """And int8's quality against float32 TFLite (pipeline/exports.py int8_quality): its
    keypoint models are float32, so it has the same keypoints; its frames differ
    (measured: PSNR 51.1 dB mean, max abs 2.0e-2), within its gate's bound."""
    quality = read_manifest(tpsmm_bundle("tiny"))["quality"]["tflite-int8"]
    assert quality["frames"] == 8 and quality["keypoint_drift_max"] == 0.0
    assert 30 < quality["psnr_db_min"] <= quality["psnr_db_mean"] < 200
    assert 0 < quality["max_abs"] <= INT8_IMAGE
    report = json.loads((tpsmm_bundle("tiny") / "parity" / "report.json").read_text())
    assert set(report) == {"layers", *TPSMM.formats}
    assert all(r["summary"]["passed"] for r in report.values())
    names = {layer["name"] for layer in report["layers"]["layers"]}
    assert {"kp_source/fg_encoder.layer4.1.relu#1", "avd_network/<root>:fg_kp",
            "inpainting_network/<root>:warped_encoder_maps:3"} <= names
    stages = {layer["name"] for layer in report["tflite"]["layers"]}
    assert {"generator/avd/<root>:tps_control_params", "chain/<root>:prediction",
            "avd_network/<root>:value", "encode_source/<root>:source_features_0"} <= stages


def test_verify_and_inspect(tpsmm_bundle, tpsmm_checkpoint):
    bundle = tpsmm_bundle("tiny")
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--checkpoint",
                                      str(tpsmm_checkpoint("tiny"))])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["inspect", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "formats: savedmodel" in result.output and "tflite-static" in result.output
    assert "tflite-int8" in result.output
    result = CliRunner().invoke(cli, ["inspect", "--json",
                                      str(bundle / "tflite" / "avd_network.tflite")])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["metadata"]["licence"]["license"] == "MIT"
    assert set(described["signatures"]) == {"serving_default"}


def _held(exact: float, original: float, got: float):
    """The gate's verdict on one frame-like array (tolerance 1e-4) whose float64 value is
    0.5 everywhere but one pixel, at the given values."""
    from fomm_convert.parity.compare import load_tolerances
    from fomm_convert.tpsmm.parity import hold

    def frame(value):
        a = np.full((1, 4, 4, 3), 0.5)
        a[0, 1, 2, 0] = value
        return {"generator/avd/<root>:prediction": a}
    report = hold(frame(exact), frame(original), frame(got), load_tolerances(profile="fp32"))
    (layer,) = report.layers
    return layer.status, layer.tolerance, layer.stage


@pytest.mark.parametrize("original, got, verdict", [
    (0.5002, 0.50009, ("pass", 1e-4, "image")),  # within the policy of float64
    (0.5005, 0.50045, ("pass", 1e-4, "image, against the float32 original")),
    (0.4994, 0.5003, ("pass", pytest.approx(6e-4), "image, within the float32 original's "
                      "distance to float64")),  # the other side of float64, nearer it
    (0.4998, 0.5003, ("fail", 1e-4, "image")),  # farther than the original, off both
])
def test_the_gate_asks_what_the_original_reaches(original, got, verdict):
    """tpsmm/parity.py hold: a format is held within the policy of the float32 original
    or of float64, or as near float64 as the original is, never farther."""
    assert _held(0.5, original, got) == verdict


@pytest.mark.parametrize("name, stage", [
    ("encode_source/<root>:source_features_0", "scaled_features"),  # TPSMM's four maps
    ("encode_source/<root>:source_features_3", "scaled_features"),
    ("encode_source/<root>:source_features", "features"),  # FOMM's one map: unchanged
    ("encode_source/<root>:source_down", "features"),
])
def test_encoder_maps_are_held_as_issue_21_holds_them(name, stage):
    """End to end, TPSMM's encoder maps (values to 7-10 on tpsmm-vox) are held relative to
    their largest magnitude beyond 1, as per layer (parity/tolerances.yaml)."""
    from fomm_convert.parity.compare import load_tolerances
    assert load_tolerances(profile="fp32").stage_of(name) == stage
