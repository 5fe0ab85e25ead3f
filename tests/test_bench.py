"""`fomm-convert bench`: runs end to end on a tiny bundle and writes the documented JSON.
Timings are the benchmark's business: nothing here checks a speed."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.util import find_spec

import pytest
from click.testing import CliRunner

from fomm_convert.bench.backends import BENCH_BACKENDS, bundle_backends
from fomm_convert.bench.flops import flop_counts
from fomm_convert.bench.memory import PARTS
from fomm_convert.cli import cli
from fomm_convert.spec import load_spec

from conftest import (FIXTURES, ROOT, SHARED, builds, config_path, require_module,
                      require_shared)

TINY = config_path("tiny")
CKPT = FIXTURES / "tiny-seed7.pth.tar"
RESULT_KEYS = {"backend", "threads", "frames_per_second", "kp_detector_ms",
               "process_kp_driving_ms", "generator_ms", "generator_encoded_ms", "peak_rss_mb",
               "artifact_mb", "uss_loaded_mb", "uss_ready_mb", "uss_peak_mb", "loading_mb",
               "loaded_anonymous_mb"}


@pytest.fixture(scope="module")
@builds
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "tiny"
    result = subprocess.run(
        [sys.executable, "-m", "fomm_convert.cli", "build", "--config", TINY, "--checkpoint",
         str(CKPT), "--out", str(out), "--formats", "savedmodel,tflite,tflite-int8,onnx"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_bench_writes_the_documented_json(bundle, tmp_path):
    path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "fomm_convert.cli", "bench", "--bundle", str(bundle),
         "--checkpoint", str(CKPT), "--json", str(path), "--threads", "1,2",
         "--repeats", "1"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    assert {"machine", "flop_floor_ms", "results"} <= set(report)
    assert report["machine"]["matmul_gflops_per_core"] > 0
    assert report["machine"]["cores"] >= 1
    assert report["flop_floor_ms"] > 0
    # OpenVINO runs the ONNX files by default where it is installed (bench/backends.py).
    backends = ["torch", "tflite", "tflite-int8", "onnx", "savedmodel",
                *(["openvino"] if find_spec("openvino") else [])]
    assert [(r["backend"], r["threads"]) for r in report["results"]] == \
        [(b, t) for t in (1, 2) for b in backends]
    for row in report["results"]:
        assert RESULT_KEYS <= set(row), RESULT_KEYS - set(row)
        for key in RESULT_KEYS - {"backend", "threads"}:
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, \
                (row["backend"], key, row[key])
        assert row["frames_per_second"] == pytest.approx(1000 / row["frame_ms"])
        # Private memory (bench/memory.py): never above the resident set, and split into
        # parts that add up to it.
        assert row["uss_loaded_mb"] <= row["uss_peak_mb"] <= row["peak_rss_mb"]
        assert set(row["parts_mb"]) == set(PARTS)
        assert sum(row["parts_mb"].values()) == pytest.approx(row["uss_ready_mb"], rel=0.05)
        assert len(row["samples_ms"]["frame"]) == 1
        assert row["speedup_vs_torch"] > 0
    # The Markdown table on stdout: a header and one row per result.
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(report["results"])


def test_bench_subset_and_errors(bundle, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["bench", "--bundle", str(bundle), "--checkpoint", str(CKPT),
                                  "--backends", "tflite-fp16", "--repeats", "1"])
    assert missing.exit_code != 0 and "tflite-fp16" in missing.output
    bad = runner.invoke(cli, ["bench", "--bundle", str(bundle), "--checkpoint", str(CKPT),
                              "--threads", "0"])
    assert bad.exit_code != 0
    # Its files' backends: the formats', then the third-party runtimes of its ONNX files
    # (timed only when named: --backends).
    assert bundle_backends(bundle) == ["tflite", "tflite-int8", "onnx", "savedmodel",
                                       "openvino", "onnx-web", "onnx-webgpu"]
    assert set(bundle_backends(bundle)) < set(BENCH_BACKENDS)


def test_flop_counts_of_vox_match_the_field_notes():
    """107.4 GFLOP per full generator call and 2.6 per detector call (vox-256); the fast
    graphs do about a third of the generator's work per frame (TFLite 31%, with F(4x4,
    3x3) from 64x64 on and F(2x2, 2x2) phase convs; ONNX 39%); the detector is exported
    as it is."""
    spec = load_spec("vox")
    reference = flop_counts(spec)
    assert reference["generator"] / 1e9 == pytest.approx(107.4, rel=0.01)
    assert reference["kp_detector"] / 1e9 == pytest.approx(2.6, rel=0.03)
    assert reference["frame"] == reference["kp_detector"] + reference["process_kp_driving"] \
        + reference["generator_encoded"]
    for graph in ("xnnpack", "mlas"):
        fast = flop_counts(spec, graph)
        assert fast["kp_detector"] == reference["kp_detector"]
        assert 0.28 < fast["generator_encoded"] / reference["generator_encoded"] < 0.45


def test_int8_quality_on_the_sample_media(bundle):
    require_shared("media/source.png", "media/driving.mp4")
    media = SHARED / "media"
    from fomm_convert.bench.run import int8_quality
    quality = int8_quality(bundle, media / "source.png", media / "driving.mp4", frames=3)
    assert quality["frames"] == 3
    assert quality["keypoint_drift_max"] == 0.0  # the int8 variant keeps the detector float
    assert 15 < quality["psnr_db_min"] <= quality["psnr_db_mean"]


def small_report(tflite_ms=40.0):
    """A bench report of two backends at 1 and 2 threads, as run.bench writes its rows."""
    rows = []
    for backend, ms, mb in (("torch", 100.0, 300.0), ("tflite", tflite_ms, 120.0)):
        for threads in (1, 2):
            frame = ms / threads
            rows.append({"backend": backend, "threads": threads, "frame_ms": frame,
                         "uss_peak_mb": mb + 10 * threads,
                         "samples_ms": {"frame": [0.9 * frame, frame, 1.2 * frame]}})
    return {"spec": "tiny", "frame_shape": [64, 64, 3], "repeats": 3,
            "machine": {"cpu": "a test CPU", "cores": 2}, "results": rows}


def test_plot_from_json(tmp_path):
    """`bench --from-json --plot` draws an earlier run: a PNG of the figure's size that
    changes with a row's time; a report without a row's field is one line naming it."""
    require_module("matplotlib", "plot")
    import imageio.v3 as iio
    pictures = []
    for name, report in (("a", small_report()), ("b", small_report(tflite_ms=80.0))):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
        out = tmp_path / f"{name}.png"
        result = CliRunner().invoke(cli, ["bench", "--from-json", str(tmp_path / f"{name}.json"),
                                          "--plot", str(out)])
        assert result.exit_code == 0, result.output
        pictures.append(iio.imread(out))
    # figsize (11, 1.6 + 0.42 per backend) inches at 90 dpi
    assert pictures[0].shape[:2] == pictures[1].shape[:2] == (219, 990)
    assert pictures[0].std() > 10 and (pictures[0] != pictures[1]).any()
    broken = small_report()
    del broken["results"][2]["frame_ms"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    result = CliRunner().invoke(cli, ["bench", "--from-json", str(tmp_path / "broken.json"),
                                      "--plot", str(tmp_path / "c.png")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == \
        f"Error: {tmp_path / 'broken.json'}: results[2].frame_ms is missing or not a number"
    assert not (tmp_path / "c.png").exists()


def test_bench_of_a_tpsmm_bundle(tpsmm_bundle, tpsmm_checkpoint, tmp_path):
    """A TPSMM bundle beside PyTorch eager on the torch reference (its checkpoint), with
    the memory columns; its keypoints normalised in its spec's mode (relative, through
    process_kp_driving). Its FLOPs are not counted (bench/flops.py): no floor, '-' in the
    table."""
    bundle, checkpoint = tpsmm_bundle("tiny"), tpsmm_checkpoint("tiny")
    assert bundle_backends(bundle)[:8] == ["tflite", "tflite-fp16", "tflite-int8", "onnx",
                                           "tflite-static", "tflite-static-fp16",
                                           "savedmodel", "openvino"]
    path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "fomm_convert.cli", "bench", "--bundle", str(bundle),
         "--checkpoint", str(checkpoint), "--json", str(path), "--threads", "1",
         "--repeats", "1", "--backends", "torch,tflite,onnx"], cwd=ROOT, capture_output=True,
        text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    assert report["spec"] == "tiny" and report["frame_shape"] == [64, 64, 3]
    assert report["flops"] is None and report["flop_floor_ms"] is None
    assert [r["backend"] for r in report["results"]] == ["torch", "tflite", "onnx"]
    for row in report["results"]:
        for key in RESULT_KEYS - {"backend", "threads"}:
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, \
                (row["backend"], key, row[key])
        assert row["uss_loaded_mb"] <= row["uss_peak_mb"] <= row["peak_rss_mb"]
        assert sum(row["parts_mb"].values()) == pytest.approx(row["uss_ready_mb"], rel=0.05)
        assert row["flop_floor_ms"] is None
    # torch loads the 55 MB checkpoint (its resnet18 and AVD widths are fixed)
    assert report["results"][0]["artifact_mb"] == pytest.approx(
        checkpoint.stat().st_size / 2 ** 20)
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 4 and all(" | - | " in line for line in table[1:])
    assert "FLOPs: not counted for this architecture" in result.stdout
