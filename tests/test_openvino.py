"""The `openvino` backend: a bundle's ONNX files in OpenVINO's CPU plugin, against the
oracle (the original's numbers) on its tiny cases, `predict --bundle` without --config;
source batch 1 beside a driving batch of N; float32 precision asked for explicitly.

OpenVINO is pinned in the lite extra (pyproject.toml); without it these tests fail when
CI=true and skip elsewhere, naming what to install."""
from __future__ import annotations

import re
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from fomm_convert.bundle import BundleError
from fomm_convert.cli import cli
from fomm_convert.pipeline.predict import TO_ORACLE, resolve_spec
from fomm_convert.runtime import load_backend

from conftest import (FIXTURES, ORACLE, ROOT, build_in_process_of_its_own, config_path,
                      missing_tool)
from oracle_policy import STAGE, assert_matches_oracle, predict_meets_oracle

# The oracle's cases with recorded outputs: config -> checkpoint.
CASES = {"tiny": "tiny-seed7.pth.tar", "tiny-single-jac": "tiny-single-jac-seed7.pth.tar"}


def openvino_pin() -> str:
    """openvino==X as pyproject's lite extra pins it (the one home of the version)."""
    lite = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["lite"]
    return next(req.split(";")[0].strip() for req in lite if req.startswith("openvino=="))


@pytest.fixture(scope="module", autouse=True)
def openvino():
    try:
        import openvino
    except ImportError:
        message = f"needs OpenVINO: pip install {openvino_pin()}"
        missing_tool(message)
    return openvino


def build(out, config, checkpoint):
    """An ONNX-only bundle, built as a user builds one (a process of its own)."""
    return build_in_process_of_its_own(out, "--formats", "onnx", config=config,
                                       checkpoint=checkpoint)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, tiny_bundle):
    """tiny: the session's bundle of every format; tiny-single-jac: its ONNX files."""
    root = tmp_path_factory.mktemp("openvino")
    return {name: tiny_bundle if name == "tiny" else
            build(root / name, config_path(name), FIXTURES / checkpoint)
            for name, checkpoint in CASES.items()}


@pytest.fixture(scope="module")
def backends(bundles):
    """{case: (openvino backend, onnxruntime backend)} over the same files."""
    out = {}
    for name, bundle in bundles.items():
        spec, _ = resolve_spec(bundle=bundle)
        out[name] = tuple(load_backend(b, spec=spec, bundle=bundle)
                          for b in ("openvino", "onnx"))
    return out


def oracle_kps(oracle, prefix):
    return {k: oracle[f"{prefix}_{k}"] for k in ("value", "jacobian")
            if f"{prefix}_{k}" in oracle.files}


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_without_config_meets_the_oracle(bundles, tmp_path, case):
    """`predict --bundle DIR --backend openvino`, the spec from the bundle's manifest:
    every oracle array within its tolerance (keypoints 1e-5, the rest 1e-4)."""
    predict_meets_oracle(bundles[case], "openvino", FIXTURES / f"{case}.npz",
                         tmp_path / "out.npz")


@pytest.mark.parametrize("case", sorted(CASES))
def test_movement_scale_in_openvino(backends, case):
    """process_kp_driving with adapt_movement_scale on, fed the oracle's keypoints: the
    oracle's normalised keypoints (its hull areas exact within OpenVINO's int32)."""
    oracle = np.load(FIXTURES / f"{case}.npz")
    driving = oracle_kps(oracle, "kp_driving")
    source = oracle_kps(oracle, "kp_source")
    initial = {k: v[:1] for k, v in driving.items()}
    norm = backends[case][0].process_kp_driving(driving, initial, source, True, True, True)
    # The scale the graph applied: the motion since the initial frame, scaled.
    motion = (driving["value"] - initial["value"]).ravel()
    scale = float((norm["value"] - source["value"]).ravel() @ motion / (motion @ motion))
    for key, value in norm.items():
        err = float(np.abs(value - oracle[f"norm_rel1_adapt1_{key}"]).max())
        assert err <= STAGE[key], (f"{key}: max abs {err:.2e}; scale {scale:.4f}, the "
                                   f"oracle's {float(oracle['adapt_movement_scale']):.4f}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_source_batch_1_driving_batch_n_meets_the_oracle(backends, case):
    """The generator (serving_default, and encode_source once + generate) with the source
    at batch 1 beside the oracle's 8 driving frames: the oracle's outputs, batch 8."""
    oracle = np.load(FIXTURES / f"{case}.npz")
    backend = backends[case][0]
    source_image = oracle["source"].transpose(0, 2, 3, 1)
    kp_source = oracle_kps(oracle, "kp_source")
    kp_norm = oracle_kps(oracle, "norm_rel1_adapt1")
    out = backend.generator(source_image, kp_norm, kp_source)
    for key, value in out.items():
        assert value.shape[0] == 8, key
        err = float(np.abs(value.transpose(TO_ORACLE[key]) - oracle[f"gen_{key}"]).max())
        assert err <= STAGE["other"], f"{key}: max abs {err:.2e}"
    encoded = backend.encode_source(source_image)
    frames = backend.generate(encoded, kp_norm, kp_source)
    err = float(np.abs(frames.transpose(TO_ORACLE["prediction"])
                       - oracle["gen_prediction"]).max())
    assert err <= STAGE["other"], f"generate: max abs {err:.2e}"


def test_source_batch_1_driving_batch_3_equals_onnxruntime(backends):
    """Source-side inputs at batch 1, driving at 3: batch 3 out of OpenVINO (it folded the
    batch of a broadcast to 1 before), exactly the frames of the source given at batch 3,
    and onnxruntime's within 5e-6. The warped diagnostics sample the sharp source where
    the two runtimes' deformations differ by their rounding (3e-7, i.e. 1e-5 pixel): they
    differ by 7.5e-6 at equal batches too, and are held to 1e-5."""
    oracle = np.load(FIXTURES / "tiny.npz")
    openvino, onnxruntime = backends["tiny"]
    source_image = oracle["source"].transpose(0, 2, 3, 1)
    kp_source = oracle_kps(oracle, "kp_source")
    kp_driving = {k: v[2:5] for k, v in oracle_kps(oracle, "norm_rel1_adapt1").items()}

    def run(backend, batch):
        image = np.repeat(source_image, batch, 0)
        kps = {k: np.repeat(v, batch, 0) for k, v in kp_source.items()}
        return {**backend.generator(image, kp_driving, kps),
                "generate": backend.generate(backend.encode_source(image), kp_driving, kps)}

    ours, tiled, theirs = run(openvino, 1), run(openvino, 3), run(onnxruntime, 1)
    assert set(ours) == set(tiled) == set(theirs)
    for key, value in ours.items():
        assert value.shape == theirs[key].shape and value.shape[0] == 3, key
        assert np.array_equal(value, tiled[key]), key
        err = float(np.abs(value - theirs[key]).max())
        bound = 1e-5 if key in ("deformed", "sparse_deformed") else 5e-6
        assert err <= bound, f"{key}: max abs {err:.2e} > {bound:.0e}"


def test_float32_precision_and_threads(bundles, openvino):
    """INFERENCE_PRECISION_HINT f32 whatever the CPU's default (bf16 with AVX512-BF16)."""
    spec, _ = resolve_spec(bundle=bundles["tiny"])
    backend = load_backend("openvino", spec=spec, bundle=bundles["tiny"], threads=1)
    for request, _, _ in backend.models.values():
        compiled = request.get_compiled_model()
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_an_unreadable_file_is_a_one_line_error(bundles, tmp_path):
    import shutil
    shutil.copytree(bundles["tiny"] / "onnx", tmp_path / "onnx")
    junk = tmp_path / "onnx" / "kp_detector.onnx"
    junk.write_bytes(b"not a model")
    spec, _ = resolve_spec(bundle=bundles["tiny"])
    with pytest.raises(RuntimeError) as err:
        load_backend("openvino", spec=spec, bundle=tmp_path)
    assert str(err.value).startswith(f"{junk}: OpenVINO cannot read it (")
    assert "\n" not in str(err.value) and len(str(err.value)) < 400, str(err.value)


def test_a_config_that_disagrees_with_the_bundle_is_one_line(bundles, tmp_path):
    """--config is optional with --bundle; given, it must be the bundle's model."""
    bundle = bundles["tiny"]
    args = ["predict", "--bundle", str(bundle), "--backend", "openvino", "--inputs",
            str(FIXTURES / "tiny.npz"), "--out", str(tmp_path / "out.npz")]
    other = config_path("tiny-single-jac")
    result = CliRunner().invoke(cli, [*args, "--config", other])
    assert result.exit_code == 1
    assert result.output == (f"Error: {other}: disagrees with the spec of the bundle {bundle} "
                             f"(model_params differ)\n")
    result = CliRunner().invoke(cli, [*args, "--align-corners"])
    assert result.exit_code == 1 and re.fullmatch(
        r"Error: --align-corners: disagrees with .*\(grid_sample_align_corners differ\)\n",
        result.output), result.output
    with pytest.raises(BundleError, match=r"^predict needs --config or --bundle"):
        resolve_spec()
    assert not (tmp_path / "out.npz").exists()
    # The bundle's own config agrees with it.
    result = CliRunner().invoke(cli, [*args, "--config", config_path("tiny")])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_vox256_meets_the_oracle_in_both_runtimes(tmp_path, vox256_checkpoint):
    """The full-size vox-256 case, end to end through OpenVINO, and the same detector file
    in onnxruntime: keypoints within 1e-5 of the original's in both. OpenVINO sums each
    Conv output in one float32 chain (its error grows with sqrt(cin*kh*kw), 4-5x
    onnxruntime's on the 1024-channel layers): without the 16-channel slices of
    export/onnx_accumulation.py its keypoints were 2.0e-5 off, onnxruntime's 6.7e-6."""
    oracle = np.load(ORACLE / "vox-256.npz")
    bundle = build(tmp_path / "vox", "vox", vox256_checkpoint)
    inputs, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inputs, source=oracle["source"], driving=oracle["driving"])
    rows = ",".join(str(i) for i in oracle["gen_frame_positions"])
    result = CliRunner().invoke(cli, ["predict", "--bundle", str(bundle), "--backend",
                                      "openvino", "--inputs", str(inputs), "--out", str(out),
                                      "--gen-frames", rows])
    assert result.exit_code == 0, result.output
    assert_matches_oracle(np.load(out), oracle)
    spec, _ = resolve_spec(bundle=bundle)
    onnxruntime = load_backend("onnx", spec=spec, bundle=bundle)
    kps = onnxruntime.kp_detector(oracle["driving"].transpose(0, 2, 3, 1))
    for key, value in kps.items():
        err = float(np.abs(value - oracle[f"kp_driving_{key}"]).max())
        assert err <= STAGE[key], f"onnxruntime {key}: max abs {err:.2e}"
