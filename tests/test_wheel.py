"""The package installs like any other: a wheel built from the checkout, installed with the
lite extra into a fresh venv, runs a tiny bundle from a folder outside the checkout."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import FIXTURES, ROOT, config_path
from oracle_policy import assert_matches_oracle

# pip builds the wheel and installs its lite extra from the registry into a fresh venv.
pytestmark = [pytest.mark.slow, pytest.mark.network]

LITE_ONLY = ("torch", "tensorflow", "onnx")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True)
    (path,) = out.glob("fomm_convert-*.whl")
    return path


@pytest.fixture(scope="module")
def lite_venv(wheel, tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv") / "lite"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    f"{wheel}[lite]"], check=True, capture_output=True, text=True)
    return venv


def test_the_wheel_carries_the_data_and_only_our_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"fomm_convert"}
    for folder, package in (("converter", "fomm_convert"), ("parity", "fomm_convert/parity"),
                            ("specs", "fomm_convert/specs")):
        for path in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{path.relative_to(ROOT / folder).as_posix()}" in names, path
    for data in ("fomm_convert/specs/vox.yaml", "fomm_convert/parity/tolerances.yaml",
                 "fomm_convert/tf_model/weight_table.yaml"):
        assert data in names


def test_the_lite_install_has_no_framework(lite_venv):
    python = str(lite_venv / "bin" / "python")
    for name in LITE_ONLY:
        found = subprocess.run([python, "-c", f"import {name}"], capture_output=True)
        assert found.returncode != 0, f"{name} is installed by the lite extra"


def test_installed_wheel_runs_a_bundle_outside_the_checkout(lite_venv, tiny_bundle, tmp_path):
    tool = str(lite_venv / "bin" / "fomm-convert")
    help_ = subprocess.run([tool, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert help_.returncode == 0 and "animate" in help_.stdout, help_.stderr

    shown = subprocess.run([tool, "inspect", "--json",
                            str(tiny_bundle / "tflite" / "generator.tflite")],
                           capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    described = json.loads(shown.stdout)
    assert described["metadata"]["dataset"] == "tiny"
    assert set(described["signatures"]) == {"serving_default", "encode_source", "generate"}

    # The oracle's inputs: the installed runtimes meet the original's numbers.
    oracle = np.load(FIXTURES / "tiny.npz")
    for backend in ("tflite", "onnx"):
        out = tmp_path / f"{backend}.npz"
        run = subprocess.run([tool, "predict", "--config", config_path("tiny"), "--inputs",
                              str(FIXTURES / "tiny.npz"), "--out", str(out), "--backend",
                              backend, "--bundle", str(tiny_bundle)], capture_output=True,
                             text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        with np.load(out) as ours:
            assert len(assert_matches_oracle(ours, oracle)) == 20, backend
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "artifacts").exists()


def test_installed_wheel_finds_the_shipped_specs(lite_venv, tmp_path):
    """--dataset names resolve to the specs inside the wheel, not beside a checkout."""
    python = str(lite_venv / "bin" / "python")
    run = subprocess.run([python, "-c", "from fomm_convert.spec import load_spec, available_specs;"
                          "print(load_spec('vox').frame_shape, len(available_specs()))"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(256,", "256,", "3)", "12"]


def test_a_lite_install_names_the_extra_a_command_needs(lite_venv, tiny_bundle, tmp_path):
    """What needs torch, TensorFlow (the convert extra) or the browser tools says so in one
    line, not in a ModuleNotFoundError traceback (issue 20, item 4)."""
    tool = str(lite_venv / "bin" / "fomm-convert")
    ckpt, inputs = str(FIXTURES / "tiny-seed7.pth.tar"), str(FIXTURES / "tiny.npz")
    convert = "which is not installed: pip install 'fomm-convert[convert]'"
    cases = [
        (["build", "--dataset", "vox", "--synthetic"],
         f"fomm-convert build needs torch, {convert}"),
        (["synth", "--config", config_path("tiny"), "--out", "t.pth.tar"],
         f"fomm-convert synth needs torch, {convert}"),
        (["inspect", "--config", config_path("tiny"), "--checkpoint", ckpt],
         f"fomm-convert inspect needs tensorflow, {convert}"),
        (["predict", "--config", config_path("tiny"), "--checkpoint", ckpt, "--inputs", inputs,
          "--out", "p.npz", "--backend", "torch"], f"backend torch needs torch, {convert}"),
        (["verify", str(tiny_bundle), "--checkpoint", ckpt],
         f"fomm-convert verify needs torch, {convert}"),
    ]
    for args, line in cases:
        run = subprocess.run([tool, *args], capture_output=True, text=True, cwd=tmp_path)
        assert (run.returncode, run.stderr) == (1, f"Error: {line}\n"), (args, run.stderr)
    # The browser runtimes need the checkout's web/ tools: said in one line, naming them.
    run = subprocess.run([tool, "predict", "--bundle", str(tiny_bundle), "--inputs", inputs,
                          "--out", "p.npz", "--backend", "onnx-web"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "make web" in run.stderr and "FOMM_WEB_DIR" in run.stderr
    # What the lite extra holds still runs: the files of a downloaded bundle are checked.
    run = subprocess.run([tool, "verify", "--files-only", str(tiny_bundle)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "t.pth.tar").exists() and not (tmp_path / "p.npz").exists()
