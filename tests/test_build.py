"""The release bundle: built only when parity passes, reproducible, atomic, verifiable."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile

import pytest
from click.testing import CliRunner

from fomm_convert.bundle import BundleError, read_manifest
from fomm_convert.io import file_sha256
from fomm_convert.cli import cli

from fomm_convert.formats import CONVERT_FORMATS as FORMAT_NAMES  # executorch: test_executorch.py

from conftest import FIXTURES, ROOT, build_in_process_of_its_own, config_path

TINY = config_path("tiny")
CKPT = str(FIXTURES / "tiny-seed7.pth.tar")
ALL = ",".join(FORMAT_NAMES)


def run(*args):
    return CliRunner().invoke(cli, list(args))


def build(out, *extra):
    result = run("build", "--config", TINY, "--checkpoint", CKPT, "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


def test_bundle_layout_and_manifest(bundle):
    manifest = read_manifest(bundle)
    paths = {row["path"] for row in manifest["files"]}
    for model in ("kp_detector", "process_kp_driving", "generator"):
        assert f"savedmodel/{model}/saved_model.pb" in paths
        for suffix in ("", ".fp16", ".int8", ".static", ".static.fp16"):
            assert f"tflite/{model}{suffix}.tflite" in paths
    assert {"onnx/generator.onnx", "onnx/generator.encode_source.onnx",
            "onnx/generator.generate.onnx", "parity/report.json", "parity/report.md",
            "tflite/ops.md"} <= paths
    for row in manifest["files"]:
        assert file_sha256(bundle / row["path"]) == row["sha256"]
        assert (bundle / row["path"]).stat().st_size == row["size"]
    assert manifest["checkpoint"]["sha256"] == file_sha256(FIXTURES / "tiny-seed7.pth.tar")
    assert manifest["synthetic"] is False
    assert manifest["licence"]["license"] == "CC-BY-NC-4.0"
    assert manifest["toolchain"]["tensorflow"] and manifest["toolchain"]["torch"]
    assert all(p["passed"] for p in manifest["parity"].values())
    assert set(manifest["parity"]) == {"layers", *ALL.split(",")}
    # The fp32 formats meet the design numbers end to end (recorded, then checked here).
    for fmt in ("savedmodel", "tflite", "onnx"):
        worst = manifest["parity"][fmt]["max_abs_by_stage"]
        assert worst["keypoint_value"] <= 1e-5 and worst["image"] <= 1e-4, fmt
    # int8's quality loss against float32 is measured and recorded (detector kept float).
    quality = manifest["quality"]["tflite-int8"]
    assert quality["frames"] == 8 and quality["keypoint_drift_max"] == 0.0
    assert 15 < quality["psnr_db_min"] <= quality["psnr_db_mean"] < 200
    archive = bundle.parent / f"fomm-tiny-{manifest['version']}.tar.gz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {f"{bundle.name}/{p}" for p in paths} <= names


def test_verify_passes_then_catches_tampering(bundle, tmp_path):
    result = run("verify", str(bundle), "--checkpoint", CKPT)
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(bundle), str(copy)], check=True)
    target = copy / "tflite" / "generator.tflite"
    data = bytearray(target.read_bytes())
    data[-100] ^= 1
    target.write_bytes(bytes(data))
    result = run("verify", str(copy), "--checkpoint", CKPT)
    assert result.exit_code != 0
    assert "tflite/generator.tflite: sha256 differs" in result.output


def test_rebuild_is_byte_identical(bundle, tmp_path):
    other = tmp_path / "tiny-b"
    build_in_process_of_its_own(other, "--formats", ALL)
    first, second = read_manifest(bundle), read_manifest(other)
    assert first == second
    assert (bundle / "manifest.json").read_bytes() == (other / "manifest.json").read_bytes()
    for row in first["files"]:
        assert (other / row["path"]).read_bytes() == (bundle / row["path"]).read_bytes(), row


def test_existing_version_needs_force(bundle):
    result = run("build", "--config", TINY, "--checkpoint", CKPT, "--out", str(bundle),
                 "--formats", ALL)
    assert result.exit_code != 0 and "pass --force" in result.output


@pytest.mark.slow  # a build up to its TFLite files' parity gate
def test_parity_failure_leaves_no_bundle_and_a_report(tmp_path, monkeypatch):
    import fomm_convert.parity.end_to_end as e2e
    from fomm_convert.parity.compare import Tolerances
    monkeypatch.setattr(e2e, "load_tolerances", lambda profile: Tolerances.uniform(1e-12))
    out = tmp_path / "strict"
    result = run("build", "--config", TINY, "--checkpoint", CKPT, "--out", str(out),
                 "--formats", "tflite")
    assert result.exit_code != 0
    assert "parity failed (tflite at" in result.output and "no bundle written" in result.output
    assert not out.exists()
    assert not list(tmp_path.glob(".strict.staging-*"))
    report = (tmp_path / "strict.parity-failed.md").read_text()
    assert "First divergence" in report and "would pass at" in report
    assert json.loads((tmp_path / "strict.parity-failed.json").read_text())["tflite"]


@pytest.mark.slow  # builds (SIGKILL: twice)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_build_leaves_no_bundle(tmp_path, sig):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "build", "--config", TINY,
                             "--checkpoint", CKPT, "--out", str(out), "--formats", "tflite"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "SavedModel written" in line:
            break
    staging = list(tmp_path.glob(".killed.staging-*"))
    assert staging, "the build writes into a staging directory first"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not out.exists()
    if sig == signal.SIGTERM:  # cleaned up on the way out
        assert not list(tmp_path.glob(".killed.staging-*"))
    else:  # nothing can run on SIGKILL: the next build removes the leftover
        build(out, "--formats", "tflite")
        assert not list(tmp_path.glob(".killed.staging-*"))
        assert out.is_dir()


def test_inspect_tflite_without_tensorflow(bundle):
    code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['torch'] = None\n"
            "from fomm_convert.cli import main; sys.argv = ['fomm-convert', 'inspect', '--json', "
            f"{str(bundle / 'tflite' / 'generator.tflite')!r}]; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    meta = info["metadata"]
    assert meta["model"] == "generator" and meta["dataset"] == "tiny"
    assert meta["licence"]["license"] == "CC-BY-NC-4.0"
    assert meta["layout"] == "NHWC" and meta["synthetic_weights"] is False
    assert set(info["signatures"]) == {"serving_default", "encode_source", "generate"}


def test_inspect_checkpoint_lists_rules():
    result = run("inspect", "--config", TINY, "--checkpoint", CKPT)
    assert result.exit_code == 0, result.output
    assert "ignored entries: discriminator" in result.output
    assert "dense_motion_network.down.weight" in result.output
    assert "dropped: BatchNorm step counter" in result.output
    assert "conv_oihw_to_hwio" in result.output


def test_bad_inputs_are_one_line_errors(tmp_path):
    result = run("build", "--config", TINY, "--checkpoint", str(tmp_path / "nope.pth.tar"))
    assert result.exit_code != 0 and "nope.pth.tar" in result.output
    result = run("build", "--dataset", "vox", "--config", TINY)
    assert result.exit_code != 0 and "exactly one of --dataset and --config" in result.output
    result = run("build", "--config", TINY, "--checkpoint", CKPT, "--formats", "tflite,coreml",
                 "--out", str(tmp_path / "x"))
    assert result.exit_code != 0 and "unknown format coreml" in result.output
    with pytest.raises(BundleError, match="no manifest.json"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("backend", FORMAT_NAMES)
def test_predict_on_bundle_matches_the_original(bundle, tmp_path, backend):
    """`predict --bundle` on every format against the oracle (the original's numbers), every
    output: float32 formats by the float32 policy, float16 and int8 ones by theirs."""
    import numpy as np
    from oracle_policy import oracle_tolerance as tolerance, reduced_errors
    out = tmp_path / "out.npz"
    result = run("predict", "--config", TINY, "--bundle", str(bundle), "--backend", backend,
                 "--inputs", str(FIXTURES / "tiny.npz"), "--out", str(out))
    assert result.exit_code == 0, result.output
    ours, oracle = np.load(out), np.load(FIXTURES / "tiny.npz")
    errors = {name: float(np.abs(ours[name] - oracle[name]).max()) for name in ours.files
              if name in oracle.files and name != "gen_frame_positions"}
    assert len(errors) == 20
    if backend in ("savedmodel", "tflite", "onnx", "tflite-static"):  # float32: the policy
        bad = {n: e for n, e in errors.items() if e > tolerance(n)}
    else:  # float16 or int8 generator, float32 detector and normalisation
        checked, bad = reduced_errors(ours, oracle, "int8" if "int8" in backend else "fp16")
        assert len(checked) == 20
    assert not bad, bad
