"""Float16 TFLite against the original: every output within 1e-2, keypoints within the
float32 policy (the detector and the normalisation stay float32: the family's float32_only),
on the oracle's tiny cases (vox-256: test_tflite.py, on its one vox build); the detector
file really holds float32, and the build's fp16 gate refuses a float16 detector."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.export.savedmodel import export_savedmodels
from fomm_convert.export.tflite import convert_savedmodel, export_tflite, tflite_sources
from fomm_convert.export.tflite_file import metadata_bytes, read_tflite_metadata, with_metadata
from fomm_convert.export.tflite_ops import op_report
from fomm_convert.families import FAMILIES
from fomm_convert.formats import METADATA_NAME, tflite_filename
from fomm_convert.parity.end_to_end import format_parity
from fomm_convert.pipeline.predict import predict
from fomm_convert.runtime import load_backend
from fomm_convert.signatures import MODELS
from fomm_convert.spec import load_spec
from fomm_convert.tf_model.fast import fast_models
from fomm_convert.tf_model.functions import model_functions
from fomm_convert.tf_model.weights import build_tf_models

from conftest import FIXTURES, builds, config_path
from oracle_policy import reduced_errors

# The oracle's cases with recorded outputs: config -> checkpoint.
CASES = {"tiny": "tiny-seed7.pth.tar", "tiny-single-jac": "tiny-single-jac-seed7.pth.tar"}
FOMM = FAMILIES["fomm"]
METADATA = {m: {"name": f"fomm-test-{m}"} for m in MODELS}


def export_variants(spec, checkpoint, root, precisions=("fp32", "fp16")):
    """The TFLite files a build ships (the fast generator, the chunked detector)."""
    kp_detector, generator = build_tf_models(spec, checkpoint)
    _, fast_generator = fast_models(kp_detector, generator)
    export_savedmodels(model_functions(spec, kp_detector, fast_generator), root / "savedmodel")
    sources = tflite_sources(spec, root / "savedmodel", kp_detector, root / "scratch")
    for precision in precisions:
        export_tflite(sources, root / "tflite", precision, METADATA, family=FOMM)
    return sources


@pytest.fixture(scope="module", params=sorted(CASES))
@builds
def case(request, tmp_path_factory):
    name = request.param
    spec = load_spec(config_path(name))
    checkpoint = load_checkpoint(FIXTURES / CASES[name])
    root = tmp_path_factory.mktemp(name)
    sources = export_variants(spec, checkpoint, root)
    return {"name": name, "spec": spec, "checkpoint": checkpoint, "root": root,
            "sources": sources, "oracle": np.load(FIXTURES / f"{name}.npz")}


def oracle_inputs(oracle):
    return tuple(np.ascontiguousarray(oracle[k].transpose(0, 2, 3, 1))
                 for k in ("source", "driving"))


def test_fp16_matches_the_original(case):
    backend = load_backend("tflite-fp16", spec=case["spec"], bundle=case["root"])
    ours = predict(backend, *oracle_inputs(case["oracle"]))
    errors, over = reduced_errors(ours, case["oracle"], "fp16")
    assert len(errors) == 20
    assert not over, f"{case['name']}: {over} (all: {errors})"


def test_fp16_keypoints_are_the_float32_files(case):
    """The detector and the normalisation compute exactly what the float32 files do."""
    inputs = oracle_inputs(case["oracle"])
    outputs = {p: predict(load_backend(b, spec=case["spec"], bundle=case["root"]), *inputs)
               for p, b in (("fp32", "tflite"), ("fp16", "tflite-fp16"))}
    for name, value in outputs["fp32"].items():
        if name.startswith(("kp_", "norm_")):
            np.testing.assert_array_equal(outputs["fp16"][name], value, err_msg=name)


def float16_tensors(path) -> int:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    return sum(model.Subgraphs(s).Tensors(t).Type() == schema.TensorType.FLOAT16
               for s in range(model.SubgraphsLength())
               for t in range(model.Subgraphs(s).TensorsLength()))


def test_fp16_detector_file_holds_float32(case):
    """No float16 tensor, no DEQUANTIZE, metadata saying so; byte for byte the float32
    file but for the variant in its metadata. The generator is the one in float16."""
    assert FOMM.float32_only >= {"kp_detector", "process_kp_driving"}
    tflite = case["root"] / "tflite"
    for model in ("kp_detector", "process_kp_driving"):
        path = tflite / tflite_filename(model, "fp16")
        meta = read_tflite_metadata(path)
        assert (meta["variant"], meta["precision"]) == ("fp16", "fp32")
        assert float16_tensors(path) == 0
        assert "DEQUANTIZE" not in {row["op"] for row in op_report(path)}
        float32 = tflite / tflite_filename(model, "fp32")
        payload = metadata_bytes(read_tflite_metadata(float32))
        assert with_metadata(path.read_bytes(), {METADATA_NAME: payload}) == \
            float32.read_bytes(), model
    generator = tflite / tflite_filename("generator", "fp16")
    assert read_tflite_metadata(generator)["precision"] == "fp16"
    assert float16_tensors(generator) > 0


def test_gate_refuses_a_float16_detector(case, tmp_path):
    """The build's fp16 gate holds keypoints to float32's numbers: a detector converted
    with float16 weights (keypoints 1.7e-3 to 7.7e-3 off) fails it, ours passes."""
    reference = load_backend("torch", spec=case["spec"], checkpoint=case["checkpoint"])
    shipped = load_backend("tflite-fp16", spec=case["spec"], bundle=case["root"])
    assert format_parity(reference, shipped, case["spec"].frame_shape, "fp16").passed
    shutil.copytree(case["root"] / "tflite", tmp_path / "tflite")
    (tmp_path / "tflite" / tflite_filename("kp_detector", "fp16")).write_bytes(
        convert_savedmodel(case["sources"]["kp_detector"], "fp16"))
    rounded = load_backend("tflite-fp16", spec=case["spec"], bundle=tmp_path)
    report = format_parity(reference, rounded, case["spec"].frame_shape, "fp16")
    failed = {r.name for r in report.failures}
    assert "kp_detector/driving/<root>:value" in failed, failed
