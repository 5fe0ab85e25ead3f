"""TPSMM's ONNX files (tpsmm/onnx_export.py) in onnxruntime and OpenVINO against the
original (../shared/oracle-tpsmm): the files and their interface, the TPS solve in the
graph (no inverse op, no input-dependent int64), each model fed the original's own
inputs, `predict` end to end, batches, and degenerate inputs.

Tolerances (issue 21): keypoints 1e-5, the adapt scale 1e-5 relative, every other array
1e-4, relative to its largest magnitude where that exceeds 1 (test_tpsmm_family's policy).
The files run in the ONNX and OpenVINO backends as load_backend makes them for a TPSMM
spec (TPSMM's calls over their `call`: `calls` below).
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from fomm_convert.bundle.models_check.onnx import check_onnx_file
from fomm_convert.families import FAMILIES
from fomm_convert.formats import METADATA_NAME, ONNX_WEIGHTS_FILE, onnx_artifact_files, onnx_files
from fomm_convert.hull import movement_scale
from fomm_convert.runtime import load_backend
from fomm_convert.tpsmm.conditioning import near_singular
from fomm_convert.tpsmm.predict import KP_NORM, predict, to_oracle
from fomm_convert.tpsmm.runtime import SignatureCalls
from fomm_convert.tpsmm.signatures import GENERATOR_OUTPUTS, signatures

from conftest import builds, missing_tool
from test_portable import input_dependent_int64
from test_tpsmm_family import (CONFIGS, CONTRACT, assert_within, config, errors, nhwc,
                               oracle)
from test_tpsmm_torch import assert_as_accurate_as_the_original, float64_arrays
from test_tpsmm_torch import weights  # noqa: F401  (the session fixture)

TPSMM = FAMILIES["tpsmm"]
RUNTIMES = ("onnxruntime", "openvino")
METADATA = {"kp_detector": {"name": "tiny kp_detector", "licence": "MIT"},
            "generator": {"name": "tiny generator", "values": [1, 2.5, None]},
            "generator.generate": {"name": "tiny generate", "description": "the frame"}}
# Every op type the six files use: elementwise arithmetic, comparisons and Where for the
# TPS elimination and the exact hull, no Inverse, no gather on data (Gather only reads
# shapes: test_gathers_read_shapes_only).
EXPECTED_OPS = {
    "Abs", "Add", "And", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat",
    "Constant", "ConstantOfShape", "Conv", "Div", "Equal", "Exp", "Expand",
    "Gather", "Gemm", "Greater", "GreaterOrEqual",
    "GridSample", "InstanceNormalization", "Less", "LessOrEqual", "Log", "MatMul", "MaxPool",
    "Mod", "Mul", "Neg", "Not", "Or", "Pad", "Pow", "Range", "ReduceMax", "ReduceMin",
    "ReduceSum", "Relu", "Reshape", "Resize", "Round", "Shape", "Sigmoid", "Slice", "Softmax",
    "Sqrt", "Sub", "Tanh", "Tile", "Transpose", "Unsqueeze", "Where"}


def calls(runtime: str, spec, bundle) -> SignatureCalls:
    """TPSMM's model calls over a bundle's ONNX files in a runtime, one thread (as the
    original was recorded)."""
    if runtime == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            missing_tool("needs OpenVINO: pip install the lite extra (pyproject.toml)")
    return load_backend("openvino" if runtime == "openvino" else "onnx", spec=spec,
                        bundle=bundle, threads=1)


@pytest.fixture(scope="module")
@builds
def exported(tmp_path_factory, tpsmm_checkpoint):
    """{case: (spec, bundle folder, {stem: path})}, each case's six files exported once
    from the oracle's seed-7 weights (tiny-rect: tiny's, its own frame)."""
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.tpsmm.onnx_export import export_onnx
    out = {}
    for case, weights in CONFIGS.items():
        spec = config(case)
        bundle = tmp_path_factory.mktemp(case)
        checkpoint = load_checkpoint(tpsmm_checkpoint(weights), family="tpsmm")
        out[case] = (spec, bundle, export_onnx(spec, checkpoint, METADATA, bundle / "onnx"))
    return out


@pytest.fixture(scope="module")
def backends(exported):
    """calls(runtime, ...) of each case, made once."""
    made = {}

    def get(case, runtime):
        if (case, runtime) not in made:
            spec, bundle, _ = exported[case]
            made[case, runtime] = calls(runtime, spec, bundle)
        return made[case, runtime]
    return get


# ------------------------------------------------------------------------- the files

def test_files_carry_the_signatures_and_the_metadata(exported):
    spec, bundle, paths = exported["tiny"]
    assert sorted(p.name for p in (bundle / "onnx").iterdir()) \
        == sorted(onnx_artifact_files(TPSMM))
    assert {p.name for p in paths.values()} == set(onnx_files(TPSMM).values())
    weights = (bundle / "onnx" / ONNX_WEIGHTS_FILE).stat().st_size
    contracts = [(model, name, contract) for model, sigs in signatures(spec).items()
                 for name, contract in sigs.items()]
    for model, name, contract in contracts:
        path = bundle / "onnx" / onnx_files(TPSMM)[model, name]
        check_onnx_file(path, weights)  # the bundle's ONNX gate
        onnx.checker.check_model(str(path), full_check=True)
        graph_model = onnx.load(str(path), load_external_data=False)
        graph = graph_model.graph
        for values, tensors in ((graph.input, contract.inputs),
                                (graph.output, contract.outputs)):
            assert [v.name for v in values] == [t.name for t in tensors], path.name
            for value, tensor in zip(values, tensors):
                dims = value.type.tensor_type.shape.dim
                assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                if tensor.batch is None:  # the flag: a scalar
                    assert not dims, value.name
                    continue
                assert dims[0].dim_param and not dims[0].dim_value, value.name
                assert tuple(d.dim_value for d in dims[1:]) == tuple(tensor.shape), value.name
        props = {p.key: p.value for p in graph_model.metadata_props}
        stem = path.name.removesuffix(".onnx")
        assert json.loads(props[METADATA_NAME]) == METADATA.get(stem, METADATA.get(model, {}))
        assert graph_model.doc_string.startswith(f"fomm-convert {model} {name}")
        external = [t for t in graph.initializer
                    if t.data_location == onnx.TensorProto.EXTERNAL]
        assert bool(external) == (model == "generator"), path.name


def test_the_tps_solve_is_in_the_graph_without_inverse_or_int64(exported):
    """No inverse or solve op (none exists in ONNX's standard set but through a custom
    domain, which the gate refuses; the op set is pinned), GridSample bilinear with zeros
    padding and align_corners, and no int64 tensor whose value depends on the inputs."""
    _, bundle, paths = exported["tiny"]
    used = set()
    for stem, path in paths.items():
        graph = onnx.load(str(path), load_external_data=False).graph
        used |= {n.op_type for n in graph.node}
        assert {n.domain for n in graph.node} <= {"", "ai.onnx"}, stem
        for node in graph.node:
            if node.op_type == "GridSample":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                assert attrs == {"align_corners": 1, "mode": b"bilinear",
                                 "padding_mode": b"zeros"}, stem
        assert input_dependent_int64(path) == [], stem
    assert used == EXPECTED_OPS, (used - EXPECTED_OPS, EXPECTED_OPS - used)


def test_gathers_read_shapes_only(exported):
    """Every Gather reads a shape, or picks one column by a constant scalar index (the
    hull's x and y): no gather on data by computed indices."""
    _, _, paths = exported["tiny"]
    for stem, path in paths.items():
        graph = onnx.load(str(path), load_external_data=False).graph
        made_by = {out: node for node in graph.node for out in node.output}
        for node in graph.node:
            if node.op_type != "Gather":
                continue
            data, index = (made_by.get(name) for name in node.input)
            if data is not None and data.op_type == "Shape":
                continue
            assert index is not None and index.op_type == "Constant", (stem, node.name)
            value = onnx.numpy_helper.to_array(index.attribute[0].t)
            assert value.shape == (), (stem, node.name)


def test_export_is_deterministic(exported, tpsmm_checkpoint, tmp_path):
    """The same spec, checkpoint and metadata give the same bytes, every file."""
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.tpsmm.onnx_export import export_onnx
    spec, bundle, _ = exported["tiny"]
    export_onnx(spec, load_checkpoint(tpsmm_checkpoint("tiny"), family="tpsmm"), METADATA,
                tmp_path)
    for name in onnx_artifact_files(TPSMM):
        assert (tmp_path / name).read_bytes() == (bundle / "onnx" / name).read_bytes(), name


# ------------------------------------------------------------- against the original

def _per_frame(call, frames: np.ndarray) -> np.ndarray:
    return np.concatenate([call(frame[None]) for frame in frames])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", CONFIGS)
def test_each_model_fed_the_originals_inputs(backends, case, runtime):
    """Each model given the original's own inputs (so an error is the model's): the
    detector per frame, the relative and standard modes, the AVD network per frame, the
    generator in every mode on all 8 frames beside a source of batch 1, encode_source."""
    expected, backend = oracle(case), backends(case, runtime)
    source = nhwc(expected["source"])
    kp_source = {"value": expected["kp_source_fg_kp"]}
    kp_driving = {"value": expected["kp_driving_fg_kp"]}
    ours = {"kp_source_fg_kp": backend.kp_detector(source)["value"],
            "kp_driving_fg_kp": _per_frame(lambda f: backend.kp_detector(f)["value"],
                                           nhwc(expected["driving"])),
            "kp_norm_relative_fg_kp": backend.process_kp_driving(
                kp_driving, {"value": kp_driving["value"][:1]}, kp_source, True)["value"],
            "kp_norm_avd_fg_kp": _per_frame(
                lambda kp: backend.avd_network(kp_source, {"value": kp})["value"],
                kp_driving["value"]),
            "dm_source_down": backend.encode_source(source)["source_down"].transpose(
                0, 3, 1, 2)}
    standard = backend.process_kp_driving(kp_driving, {"value": kp_driving["value"][:1]},
                                          kp_source, False)["value"]
    assert np.array_equal(standard, kp_driving["value"])
    for mode, name in KP_NORM.items():
        out = backend.generator(source, {"value": expected[name]}, kp_source)
        for output in GENERATOR_OUTPUTS:
            if f"{mode}_{output}" in expected.files:
                ours[f"{mode}_{output}"] = to_oracle(output, out[output])
    assert len(ours) == 5 + 3 * len(GENERATOR_OUTPUTS) - 2
    assert_within(errors(ours, expected), expected)


@pytest.mark.parametrize("case, runtime", [(case, runtime) for case in CONFIGS
                                           for runtime in RUNTIMES])
def test_predict_meets_the_oracle(backends, case, runtime):
    """The oracle contract end to end (tpsmm/predict.py: keypoints per frame, every mode),
    every array within the policy. The warps amplify the keypoints' float32 noise ~100x,
    so the file's detector has a double-float head (tpsmm/keypoint_head.py): tiny-rect's
    relative_deformed in onnxruntime was 1.35e-4 without it, 7.3e-5 with it (measured
    through `predict --backend onnx`; tiny's was 5.6e-5, OpenVINO's 5.9e-5 and 8.1e-5)."""
    expected = oracle(case)
    ours = predict(backends(case, runtime), nhwc(expected["source"]),
                   nhwc(expected["driving"]))
    assert set(ours) == CONTRACT
    assert_within(errors(ours, expected), expected)


# -------------------------------------------------------------- batches and extremes

@pytest.mark.parametrize("runtime", RUNTIMES)
def test_encode_once_and_source_batches(backends, runtime):
    """generate from encode_source gives serving_default's frames; a source (and its
    keypoints, its encoding) of batch N gives what batch 1 beside N driving frames gives."""
    expected, backend = oracle("tiny"), backends("tiny", runtime)
    source = nhwc(expected["source"])
    kp_source = {"value": expected["kp_source_fg_kp"]}
    kp = {"value": expected["kp_norm_relative_fg_kp"][:3]}
    full = backend.generator(source, kp, kp_source)
    encoded = backend.encode_source(source)
    assert np.abs(backend.generate(encoded, kp, kp_source) - full["prediction"]).max() <= 1e-6
    many = {"value": np.repeat(kp_source["value"], 3, axis=0)}
    wide = backend.generator(np.repeat(source, 3, axis=0), kp, many)
    for name in GENERATOR_OUTPUTS:
        assert np.abs(wide[name] - full[name]).max() <= 1e-6, name
    encoded_wide = {k: np.repeat(v, 3, axis=0) for k, v in encoded.items()}
    assert np.abs(backend.generate(encoded_wide, kp, many) - full["prediction"]).max() <= 1e-6
    avd = backend.avd_network(many, kp)["value"]
    assert np.abs(avd - backend.avd_network(kp_source, kp)["value"]).max() <= 1e-6


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_relative_scale_is_the_hulls(backends, runtime):
    """The relative mode's scale in the graph: sqrt of the hull areas' ratio over all 5K
    points (the host's float64 hull.movement_scale within 1e-6, on points inside and on
    the hull), 1 where a hull is degenerate (source points on the diagonal: collinear on
    the hull's 2**-27 grid too; points collinear in float32 but not on that grid have a
    hull of a few 1e-9, as exact arithmetic says)."""
    backend = backends("tiny", runtime)
    rng = np.random.default_rng(4)
    points = 3 * 5
    for trial in range(6):
        source, initial = rng.uniform(-0.9, 0.9, (2, 1, points, 2)).astype(np.float32)
        if trial == 5:
            source[0, :, 1] = source[0, :, 0]  # collinear: area 0
        driving = (initial + rng.normal(0, 0.02, (4, points, 2))).astype(np.float32)
        got = backend.process_kp_driving({"value": driving}, {"value": initial},
                                         {"value": source}, True)["value"]
        scale = movement_scale(source, initial)
        assert (scale == 1.0) == (trial == 5)
        want = (driving - initial) * np.float32(scale) + source
        assert np.abs(got - want).max() <= 1e-6, trial


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_frames_stay_finite_when_a_tps_is_singular(backends, runtime):
    """One group of driving keypoints at a float64 root of det L (and one at coincident
    points): every output finite, the other groups' warps unaffected."""
    expected, backend = oracle("tiny"), backends("tiny", runtime)
    rng = np.random.default_rng(11)
    regular = expected["kp_driving_fg_kp"][:2]
    kp = regular.copy()
    kp[0, :5] = near_singular(rng, "collinear")
    kp[1, 5:10] = kp[1, 5]  # five coincident control points
    source, kp_source = nhwc(expected["source"]), {"value": expected["kp_source_fg_kp"]}
    out = backend.generator(source, {"value": kp}, kp_source)
    for name, value in out.items():
        assert np.isfinite(value).all(), name
    base = backend.generator(source, {"value": regular}, kp_source)
    for name in ("tps_theta", "tps_control_params"):
        assert np.array_equal(out[name][0, 1:], base[name][0, 1:]), name
        assert np.array_equal(out[name][1, [0, 2]], base[name][1, [0, 2]]), name


# ------------------------------------------------------------------------- vox-256

@pytest.fixture(scope="module")
@builds
def vox256(tmp_path_factory, tpsmm_checkpoint):
    """(spec, bundle folder) of vox-256's six files, from the oracle's seed-7 weights."""
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.tpsmm.onnx_export import export_onnx
    bundle = tmp_path_factory.mktemp("vox-256")
    spec = config("vox-256")
    export_onnx(spec, load_checkpoint(tpsmm_checkpoint("vox-256"), family="tpsmm"), {},
                bundle / "onnx")
    return spec, bundle


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_vox256(vox256, weights, runtime):
    """vox-256 with the torch reference's and the TF graph's treatment
    (tests/test_tpsmm_tf.py): keypoints end to end within the policy; the generator fed
    the original's keypoints within it, or where it misses, within twice the original's
    own float32 distance from the float64 model. (End to end, its frames from our
    keypoints miss the policy as the reference's do: avd_prediction 5.5e-3 / 3.5e-3 in
    onnxruntime / OpenVINO, where the original is 1.9e-3 from float64.)"""
    spec, bundle = vox256
    expected = oracle("vox-256")
    backend = calls(runtime, spec, bundle)
    ours = predict(backend, nhwc(expected["source"]), nhwc(expected["driving"]),
                   positions=expected["gen_frame_positions"])
    keypoints = {n: v for n, v in ours.items() if "fg_kp" in n or n == "adapt_movement_scale"}
    assert_within(errors(keypoints, expected), expected)
    source, kp_source = nhwc(expected["source"]), {"value": expected["kp_source_fg_kp"]}
    fed = {}
    for mode, name in KP_NORM.items():
        kp = expected[name][expected["gen_frame_positions"]]
        out = backend.generator(source, {"value": kp}, kp_source)
        fed.update({f"{mode}_{n}": to_oracle(n, out[n]) for n in GENERATOR_OUTPUTS
                    if f"{mode}_{n}" in expected.files})
    assert_as_accurate_as_the_original(fed, expected, float64_arrays(weights, expected))
