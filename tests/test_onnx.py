"""ONNX export and the onnx backend: the in-graph keypoint normalisation (torch), parity of
the exported files with the torch reference and the oracle, the encode-once split,
dynamic batch, determinism, validity and metadata, and a torch/TF-free runtime."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import onnx
import pytest
import torch

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.export.onnx import OPSET, export_onnx, op_types
from fomm_convert.families import FAMILIES
from fomm_convert.formats import METADATA_NAME, ONNX_WEIGHTS_FILE, onnx_artifact_files
from fomm_convert.pipeline.predict import predict
from fomm_convert.runtime import load_backend
from fomm_convert.spec import load_spec
from fomm_convert.synth import write_checkpoint
from fomm_convert.signatures import FLAGS
from fomm_convert.torch_model.process_kp import ProcessKpDriving

from conftest import FIXTURES, ORACLE, ROOT, builds, config_path, require_oracle
from oracle_policy import (FLAG_COMBINATIONS, STAGE, assert_matches_oracle,
                           assert_stages_match_oracle, oracle_tolerance, random_kp,
                           reference_normalisation)

# The op types the tiny models use: all in the default ONNX domain, no custom ops.
# DepthToSpace: the fast graphs' phase convs (upsample + conv), Winograd and stride-2 convs.
# Abs, Reciprocal: the 2x2 inverse with torch.inverse's pivoting and scalings
# (torch_model/normalize.py, inverse2x2).
EXPECTED_OPS = {
    "Abs", "Add", "And", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "DepthToSpace", "Div", "Equal", "Exp", "Expand", "Gather",
    "Greater",
    "GreaterOrEqual", "GridSample", "LessOrEqual", "MatMul", "Mod", "Mul", "Neg", "Not", "Or",
    "Pad", "Pow", "Range", "ReduceMax", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize",
    "Reciprocal", "Round", "Shape", "Sigmoid", "Slice", "Softmax", "Sqrt", "Squeeze", "Sub", "Tile",
    "Transpose", "Unsqueeze", "Where"}


@pytest.mark.parametrize("jacobian", [True, False])
def test_torch_module_matches_normalize_kp(jacobian):
    rng = np.random.default_rng(53)
    module = ProcessKpDriving(10, jacobian)
    for flags, initial_batch in itertools.product(FLAG_COMBINATIONS, (1, 4)):
        driving, initial, source = (random_kp(rng, b, 10, jacobian) for b in (4, initial_batch, 1))
        args = [torch.from_numpy(kp[k]) if k in kp else None
                for kp in (driving, initial, source) for k in ("value", "jacobian")]
        got = module(*args, *(torch.tensor(f) for f in flags))
        want = reference_normalisation(driving, initial, source, flags)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_allclose(got[key].numpy(), want[key], rtol=0, atol=1e-6)


# ----------------------------------------------------------------- exported bundles

CASES = {  # name: (config, checkpoint: a fixture file, or a synth seed)
    "tiny": ("tiny", "tiny-seed7.pth.tar"),
    "tiny-nojac": ("tiny-nojac", 3),
    "tiny-noocc": ("tiny-noocc", 5),
}


def metadata_for(case: str) -> dict:
    return {"kp_detector": {"name": f"{case} kp_detector", "description": "keypoints",
                            "normalisation": {"relative": True}, "unicode": "naïve"},
            "generator": {"name": f"{case} generator", "values": [1, 2.5, None]},
            "generator.generate": {"name": f"{case} generate"}}


@pytest.fixture(scope="module")
@builds
def bundles(tmp_path_factory):
    """Each case exported once: {case: (spec, checkpoint, bundle dir, paths)}."""
    out = {}
    for case, (config, ckpt) in CASES.items():
        spec = load_spec(config_path(config))
        if isinstance(ckpt, int):
            path = tmp_path_factory.mktemp("ckpt") / f"{case}.pth.tar"
            write_checkpoint(spec, ckpt, path)
        else:
            path = FIXTURES / ckpt
        checkpoint = load_checkpoint(path)
        bundle = tmp_path_factory.mktemp(case)
        paths = export_onnx(spec, checkpoint, bundle / "onnx", metadata_for(case))
        out[case] = (spec, checkpoint, bundle, paths)
    return out


@pytest.fixture(scope="module")
def oracle_inputs():
    oracle = np.load(FIXTURES / "tiny.npz")
    return tuple(oracle[k].transpose(0, 2, 3, 1) for k in ("source", "driving"))


def onnx_backend(bundles, case):
    spec, _, bundle, _ = bundles[case]
    return load_backend("onnx", spec=spec, bundle=bundle)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stages_match_torch(bundles, oracle_inputs, case):
    """Each model fed the same inputs as the torch reference: keypoint values within 1e-5,
    everything else (jacobians, every generator output) within 1e-4."""
    spec, checkpoint, _, _ = bundles[case]
    ours, torch_backend = onnx_backend(bundles, case), load_backend(
        "torch", spec=spec, checkpoint=checkpoint)
    source, driving = oracle_inputs
    kp_source = torch_backend.kp_detector(source)
    kp_driving = torch_backend.kp_detector(driving)
    for got, want in ((ours.kp_detector(source), kp_source),
                      (ours.kp_detector(driving), kp_driving)):
        assert sorted(got) == sorted(want)
        for key in want:
            assert np.abs(got[key] - want[key]).max() <= STAGE[key], key
    initial = {k: v[:1] for k, v in kp_driving.items()}
    for rel, adapt in itertools.product((0, 1), (0, 1)):
        want = torch_backend.process_kp_driving(kp_driving, initial, kp_source, rel, rel, adapt)
        got = ours.process_kp_driving(kp_driving, initial, kp_source, rel, rel, adapt)
        assert sorted(got) == sorted(want)
        for key in want:
            assert np.abs(got[key] - want[key]).max() <= STAGE[key], (rel, adapt, key)
    normalised = torch_backend.process_kp_driving(kp_driving, initial, kp_source, 1, 1, 1)
    want = torch_backend.generator(source, normalised, kp_source)
    got = ours.generator(source, normalised, kp_source)
    assert sorted(got) == sorted(want)
    for key in want:
        err = np.abs(got[key] - want[key]).max()
        assert err <= STAGE["other"], f"{key}: max abs {err:.2e}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_matches_torch(bundles, oracle_inputs, case):
    """End to end, with the oracle policy: each stage inherits the other runtime's
    detection noise (up to ~6e-6 between float32 torch and onnxruntime, both ~4.5e-6 from
    float64), which the normalisation sums three times and the warped diagnostics
    amplify (tiny-nojac sparse_deformed: 1.35e-4 end to end, 2.4e-7 fed the same
    keypoints)."""
    spec, checkpoint, _, _ = bundles[case]
    torch_backend = load_backend("torch", spec=spec, checkpoint=checkpoint)
    ours = predict(onnx_backend(bundles, case), *oracle_inputs)
    want = predict(torch_backend, *oracle_inputs)
    assert sorted(ours) == sorted(want)
    for name, value in want.items():
        assert ours[name].shape == value.shape, name
        err = np.abs(ours[name].astype(np.float64) - value).max()
        assert err <= oracle_tolerance(name), \
            f"{name}: max abs {err:.2e} > {oracle_tolerance(name):.0e}"
    assert ("gen_occlusion_map" in ours) == (case != "tiny-noocc")
    assert any(k.endswith("_jacobian") for k in ours) == (case != "tiny-nojac")


def test_predict_matches_oracle(bundles, oracle_inputs):
    oracle = np.load(FIXTURES / "tiny.npz")
    ours = predict(onnx_backend(bundles, "tiny"), *oracle_inputs)
    assert len(assert_matches_oracle(ours, oracle)) == 20


def test_stages_fed_oracle_inputs(bundles):
    assert_stages_match_oracle(onnx_backend(bundles, "tiny"), np.load(FIXTURES / "tiny.npz"))


@pytest.mark.parametrize("case", ["tiny", "tiny-nojac"])
def test_process_kp_driving_flags(bundles, case):
    backend = onnx_backend(bundles, case)
    jac = backend.estimate_jacobian
    rng = np.random.default_rng(59)
    for flags, initial_batch in itertools.product(FLAG_COMBINATIONS, (1, 4)):
        driving, initial, source = (random_kp(rng, b, 5, jac) for b in (4, initial_batch, 1))
        got = backend.process_kp_driving(driving, initial, source, *map(bool, flags))
        want = reference_normalisation(driving, initial, source, flags)
        assert set(got) == set(want), flags
        np.testing.assert_allclose(got["value"], want["value"], rtol=0, atol=1e-6)
        if jac:
            np.testing.assert_allclose(got["jacobian"], want["jacobian"], rtol=0, atol=1e-5)
            if not (flags[0] and flags[1]):
                np.testing.assert_array_equal(got["jacobian"], driving["jacobian"])
        if not flags[0]:
            np.testing.assert_array_equal(got["value"], driving["value"])


def test_process_kp_driving_with_degenerate_hulls(bundles):
    backend = onnx_backend(bundles, "tiny-nojac")
    line = {"value": np.asarray([[[0, 0], [0.25, 0.25], [0.5, 0.5], [-0.5, -0.5],
                                  [0.1, 0.1]]], np.float32)}
    same = {"value": np.zeros((1, 5, 2), np.float32)}
    driving = {"value": np.random.default_rng(61).uniform(-1, 1, (3, 5, 2)).astype(np.float32)}
    for source, initial in ((line, same), (same, line), (line, line), (same, same)):
        adapted = backend.process_kp_driving(driving, initial, source, True, False, True)
        plain = backend.process_kp_driving(driving, initial, source, True, False, False)
        assert np.isfinite(adapted["value"]).all()
        np.testing.assert_array_equal(adapted["value"], plain["value"])


def test_encode_once_equals_generator_and_dynamic_batch(bundles, oracle_inputs):
    backend = onnx_backend(bundles, "tiny")
    source, driving = oracle_inputs
    kp_source = backend.kp_detector(source)
    kp_driving = backend.kp_detector(driving[:3])  # batch 3 through the detector
    for i in range(3):  # the same frames one at a time
        single = backend.kp_detector(driving[i:i + 1])
        for key, value in single.items():
            np.testing.assert_allclose(kp_driving[key][i:i + 1], value, rtol=0, atol=1e-6)
    full = backend.generator(source, kp_driving, kp_source)
    assert full["prediction"].shape == (3, 64, 64, 3)
    assert full["sparse_deformed"].shape == (3, 6, 32, 32, 3)
    encoded = backend.encode_source(source)
    assert encoded["source_features"].shape == (1, 16, 16, 32)
    assert encoded["source_down"].shape == (1, 32, 32, 3)
    fast = backend.generate(encoded, kp_driving, kp_source)
    assert np.abs(fast - full["prediction"]).max() <= 1e-5
    # Source-side inputs at the driving batch give the same frames.
    tiled = {k: np.repeat(v, 3, axis=0) for k, v in kp_source.items()}
    full3 = backend.generator(np.repeat(source, 3, axis=0), kp_driving, tiled)
    for key, value in full.items():
        assert np.abs(full3[key] - value).max() <= 1e-5, key
    encoded3 = {k: np.repeat(v, 3, axis=0) for k, v in encoded.items()}
    assert np.abs(backend.generate(encoded3, kp_driving, tiled) - fast).max() <= 1e-5
    # Batch 1.
    one = backend.generator(source, {k: v[:1] for k, v in kp_driving.items()}, kp_source)
    assert np.abs(one["prediction"] - full["prediction"][:1]).max() <= 1e-5


def test_export_is_deterministic(bundles, tmp_path):
    """A second export, in another process with another hash seed, is byte-identical."""
    spec, checkpoint, _, first = bundles["tiny"]
    out = tmp_path / "onnx"
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from fomm_convert.checkpoint import load_checkpoint
        from fomm_convert.export.onnx import export_onnx
        from fomm_convert.spec import load_spec
        metadata = json.loads({json.dumps(metadata_for("tiny"))!r})
        paths = export_onnx(load_spec({str(spec.path)!r}),
                            load_checkpoint({str(checkpoint.path)!r}), Path({str(out)!r}),
                            metadata)
        print(json.dumps(sorted(paths)))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == sorted(first)
    for name, path in first.items():
        assert path.read_bytes() == (out / path.name).read_bytes(), name
    weights = path.parent / ONNX_WEIGHTS_FILE
    assert weights.read_bytes() == (out / ONNX_WEIGHTS_FILE).read_bytes()
    # Written through temporary files that are renamed: none is left behind.
    assert sorted(p.name for p in out.iterdir()) == sorted(onnx_artifact_files(FAMILIES["fomm"]))


@pytest.mark.slow  # exports the ONNX files of a spec
def test_align_corners_spec_exports_its_grid_sample(tmp_path, oracle_inputs):
    """A spec with the training-time grid_sample convention exports it (the oracle's
    gen_ac_prediction), and the two conventions differ."""
    spec = load_spec(config_path("tiny")).with_align_corners(True)
    export_onnx(spec, load_checkpoint(FIXTURES / "tiny-seed7.pth.tar"), tmp_path / "onnx", {})
    backend = load_backend("onnx", spec=spec, bundle=tmp_path)
    oracle = np.load(FIXTURES / "tiny.npz")
    ours = predict(backend, *oracle_inputs)
    err = np.abs(ours["gen_prediction"] - oracle["gen_ac_prediction"]).max()
    assert err <= 1e-4, err
    assert np.abs(ours["gen_prediction"] - oracle["gen_prediction"]).max() > 1e-3


@pytest.mark.parametrize("case", sorted(CASES))
def test_files_are_valid_standard_onnx_with_metadata(bundles, case):
    spec, _, bundle, paths = bundles[case]
    assert sorted(p.name for p in (bundle / "onnx").iterdir()) \
        == sorted(onnx_artifact_files(FAMILIES["fomm"]))
    metadata = metadata_for(case)
    for stem, path in paths.items():
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        opsets = {o.domain: o.version for o in model.opset_import}
        assert opsets.get("", opsets.get("ai.onnx")) >= max(OPSET, 17), stem
        assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}, stem
        assert set(op_types(model)) <= EXPECTED_OPS, set(op_types(model)) - EXPECTED_OPS
        props = {p.key: p.value for p in model.metadata_props}
        assert list(props) == [METADATA_NAME]
        want = metadata.get(stem, metadata.get(stem.split(".")[0], {}))
        assert json.loads(props[METADATA_NAME]) == want, stem
        assert model.doc_string.startswith("fomm-convert ")
        if "description" in want:
            assert want["description"] in model.doc_string
        # Every batch axis is symbolic; scalars (the flags) have rank 0.
        for value in [*model.graph.input, *model.graph.output]:
            dims = value.type.tensor_type.shape.dim
            assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, value.name
            if dims:
                assert dims[0].dim_param and not dims[0].dim_value, (stem, value.name)
                assert all(d.dim_value > 0 for d in dims[1:]), (stem, value.name)
            else:
                assert value.name in FLAGS


def test_generator_files_share_one_weights_file(bundles):
    """Each weight tensor of the generator's three files is stored once, in
    generator.weights, page-aligned; the files themselves hold the graphs."""
    _, _, bundle, paths = bundles["tiny"]
    weights = bundle / "onnx" / ONNX_WEIGHTS_FILE
    refs = {}
    for stem in ("generator", "generator.generate", "generator.encode_source"):
        model = onnx.load(str(paths[stem]), load_external_data=False)
        external = [t for t in model.graph.initializer
                    if t.data_location == onnx.TensorProto.EXTERNAL]
        assert external, stem
        for tensor in external:
            entry = {e.key: e.value for e in tensor.external_data}
            assert entry["location"] == ONNX_WEIGHTS_FILE
            refs.setdefault(stem, set()).add((int(entry["offset"]), int(entry["length"])))
    assert refs["generator.generate"] <= refs["generator"]
    assert refs["generator.encode_source"] <= refs["generator"]
    assert all(offset % 4096 == 0 for offset, _ in refs["generator"])
    assert weights.stat().st_size == max(o + n for o, n in refs["generator"])
    # The detector keeps its weights inline.
    detector = onnx.load(str(paths["kp_detector"]), load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in detector.graph.initializer)


def test_signature_names(bundles):
    names = {}
    for case, (_, _, _, paths) in bundles.items():
        for stem, path in paths.items():
            model = onnx.load(str(path), load_external_data=False)
            names[case, stem] = ([i.name for i in model.graph.input],
                                 [o.name for o in model.graph.output])
    kps_jac = ["kp_driving", "kp_driving_jacobian", "kp_source", "kp_source_jacobian"]
    assert names["tiny", "kp_detector"] == (["image"], ["value", "jacobian"])
    assert names["tiny-nojac", "kp_detector"] == (["image"], ["value"])
    assert names["tiny", "process_kp_driving"] == (
        ["kp_driving", "kp_driving_jacobian", "kp_driving_initial",
         "kp_driving_initial_jacobian", "kp_source", "kp_source_jacobian", *FLAGS],
        ["value", "jacobian"])
    assert names["tiny-nojac", "process_kp_driving"] == (
        ["kp_driving", "kp_driving_initial", "kp_source", *FLAGS], ["value"])
    diagnostics = ["deformation", "sparse_deformed", "deformed"]
    assert names["tiny", "generator"] == (["source_image", *kps_jac],
                                          ["prediction", "mask", "occlusion_map", *diagnostics])
    assert names["tiny-noocc", "generator"] == (["source_image", *kps_jac],
                                                ["prediction", "mask", *diagnostics])
    assert names["tiny-nojac", "generator"][0] == ["source_image", "kp_driving", "kp_source"]
    assert names["tiny", "generator.encode_source"] == (["source_image"],
                                                        ["source_features", "source_down"])
    assert names["tiny", "generator.generate"] == (["source_features", "source_down",
                                                    *kps_jac], ["prediction"])


def test_backend_imports_neither_torch_nor_tensorflow(bundles):
    spec, _, bundle, _ = bundles["tiny"]
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None
        sys.modules["torch"] = None
        import numpy as np
        from fomm_convert.runtime import load_backend
        from fomm_convert.spec import load_spec
        backend = load_backend("onnx", spec=load_spec({str(spec.path)!r}),
                               bundle={str(bundle)!r}, threads=1)
        kp = backend.kp_detector(np.zeros((1, 64, 64, 3), np.float32))
        assert kp["value"].shape == (1, 5, 2), kp["value"].shape
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow")
                    and sys.modules[m] is not None]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_backend_reports_missing_files_and_inputs(bundles, tmp_path):
    spec, _, bundle, _ = bundles["tiny"]
    with pytest.raises(FileNotFoundError, match="generator.generate.onnx"):
        load_backend("onnx", spec=spec, bundle=tmp_path)
    backend = load_backend("onnx", spec=spec, bundle=bundle)
    with pytest.raises(ValueError, match="missing inputs"):
        backend.call("kp_detector", "serving_default", {})


# F(4x4, 3x3) rounds more (see test_fast): 1.3e-5 measured here.
@pytest.mark.parametrize("tile, tol", [(0, 1e-5), (2, 1e-5), (4, 5e-5)])
def test_winograd_conv_runs_in_onnxruntime_at_any_batch(tmp_path, tile, tol):
    """The exported Winograd layer (channels in the batch, batched MatMul, DepthToSpace)
    with the batch axis dynamic, against torch's direct conv."""
    import onnxruntime as ort
    from fomm_convert.torch_model.fast import FusedConv
    rng = np.random.default_rng(tile)
    kernel = rng.standard_normal((3, 3, 16, 24)).astype(np.float32) * 0.1
    bias = rng.standard_normal(24).astype(np.float32)
    conv = FusedConv(kernel, bias, 1, True, tile).eval()
    path = tmp_path / "conv.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's, as in converter.export.onnx.to_onnx
        torch.onnx.export(conv, (torch.zeros(1, 16, 16, 12),), str(path), opset_version=OPSET,
                          dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    for batch in (1, 3):
        x = rng.standard_normal((batch, 16, 16, 12)).astype(np.float32)
        expected = torch.relu(torch.nn.functional.conv2d(
            torch.from_numpy(x), weight, torch.from_numpy(bias), padding=1)).numpy()
        (ours,) = session.run(None, {"x": x})
        assert ours.shape == expected.shape
        assert np.abs(ours - expected).max() <= tol


@pytest.mark.slow
def test_vox256_matches_oracle(tmp_path, vox256_checkpoint):
    """The full-size case, on the files a build ships (the generator's 64x64 layers by
    Winograd F(4x4, 3x3)), through predict at the oracle's generator rows, with the oracle
    policy of test_torch_reference: measured worst 0.82 of a tolerance (kp_source 8.2e-6)."""
    require_oracle("vox-256.npz")
    spec = load_spec("vox")
    export_onnx(spec, load_checkpoint(vox256_checkpoint), tmp_path / "onnx", {})
    oracle = np.load(ORACLE / "vox-256.npz")
    source, driving = (np.ascontiguousarray(oracle[k].transpose(0, 2, 3, 1))
                       for k in ("source", "driving"))
    ours = predict(load_backend("onnx", spec=spec, bundle=tmp_path), source, driving,
                   positions=oracle["gen_frame_positions"])
    assert len(assert_matches_oracle(ours, oracle)) == 20
