"""What a newcomer hits (issue 26), each case as the user met it: a dataset name hidden by a
folder, a backend name misspelled, a checkpoint that does not fit, outputs replaced without
a word, verify without the checkpoint, and the small frictions. Tiny bundle, lite runtimes."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fomm_convert
from conftest import FIXTURES, ROOT, config_path, sigint_as_at_a_terminal
from fomm_convert.cli import cli
from fomm_convert.errors import FommError
from fomm_convert.spec import SpecError, load_spec

CKPT = FIXTURES / "tiny-seed7.pth.tar"
INPUTS = FIXTURES / "tiny.npz"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(result) -> str:
    """The one line a refused command prints (and that it printed only that)."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0][len("Error: "):]


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


# ------------------------------------------------------------- 2: a dataset name is a name
def test_a_folder_or_file_named_like_a_dataset_does_not_hide_it(tmp_path, monkeypatch):
    from fomm_convert.errors import FommWarning
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vox").mkdir()  # what `--out vox/...` leaves
    assert load_spec("vox").name == "vox"
    (tmp_path / "vox").rmdir()
    (tmp_path / "vox").write_text("not a spec\n")
    with pytest.warns(FommWarning, match=r"^vox: took the dataset spec vox \(.*specs/vox\.yaml"
                      r"\), not the file \./vox \(write \./vox to mean the file\)$"):
        assert load_spec("vox").name == "vox"
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec("./vox")  # written as a path, it is the path
    # The CLI says which it took, in one line, and goes on with the dataset.
    result = run("predict", "--config", "vox", "--inputs", "missing.npz", "--out", "o.npz")
    assert "warning: vox: took the dataset spec vox" in result.output
    assert error_line(result) == "missing.npz: no such file"


def test_a_bare_name_that_is_no_dataset_lists_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"^unknown dataset 'voxx': no .*voxx\.yaml \(known: "
                                        r"bair, fashion, mgif, nemo, taichi, taichi-adv, "
                                        r"tpsmm-mgif, tpsmm-taichi, tpsmm-ted, tpsmm-vox, vox,"):
        load_spec("voxx")
    (tmp_path / "mine").write_text((FIXTURES / "configs" / "tiny.yaml").read_text())
    assert load_spec("mine").path == Path("mine")  # no dataset of that name: the file


# ------------------------------------------------- 3: backend names first, a lite default
def test_an_unknown_backend_is_refused_before_anything_is_read(tmp_path):
    for name in ("tflte", "TFLite", "tflite_static"):
        line = error_line(run("predict", "--bundle", tmp_path / "nope", "--inputs",
                              tmp_path / "nope.npz", "--out", tmp_path / "p.npz",
                              "--backend", name))
        assert line.startswith(f"unknown backend '{name}' (known: torch, tf, savedmodel, "
                               f"tflite, ")
    assert not (tmp_path / "p.npz").exists()


def test_the_api_refuses_an_unknown_backend_before_the_checkpoint(bundle):
    opened = fomm_convert.open_bundle(bundle)
    with pytest.raises(FommError, match=r"^unknown backend 'tflte' \(known: torch, tf, "):
        opened.backend("tflte")


def test_predict_with_a_bundle_runs_its_lite_runtime_and_says_so(bundle, tmp_path):
    out = tmp_path / "p.npz"
    result = run("predict", "--bundle", bundle, "--inputs", INPUTS, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output == (f"{out}: 21 arrays, 8 frames, backend tflite (the default; "
                             f"--backend to choose)\n")
    with np.load(out) as ours, np.load(INPUTS) as oracle:
        for name in ("kp_source_value", "kp_driving_value"):
            assert np.abs(ours[name] - oracle[name]).max() <= 1e-5, name
        assert np.abs(ours["gen_prediction"] - oracle["gen_prediction"]).max() <= 1e-4


# ------------------------------------------------ 4: a checkpoint that does not fit, told
def test_a_checkpoint_of_another_spec_is_told_in_one_line_with_its_diagnosis(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = error_line(run("build", "--dataset", "vox", "--checkpoint", CKPT,
                          "--formats", "tflite"))
    match = re.fullmatch(
        rf"{re.escape(str(CKPT))}: does not fit the spec vox \(.*specs/vox\.yaml\): "
        r"kp_detector 24 missing, 0 unexpected, 41 of another shape; generator 72 missing, "
        r"0 unexpected, 95 of another shape \(e\.g\. predictor\.encoder\.down_blocks\.0\."
        r"conv\.weight \[16, 3, 3, 3\] \(as \[3, 3, 3, 16\]\) vs the model's \[3, 3, 3, 64\];"
        r" predictor\.encoder\.down_blocks\.0\.conv\.bias \[16\] vs the model's \[64\]\); a "
        r"checkpoint of another dataset or size\? The whole diagnosis: (\S+\.txt)", line)
    assert match, line
    diagnosis = Path(match.group(1)).read_text()
    assert diagnosis.count("\n  - ") == 41 + 24 + 95 + 72
    assert "TF variable predictor.encoder.down_blocks.3.conv.kernel is not set" in diagnosis
    Path(match.group(1)).unlink()
    assert list(tmp_path.iterdir()) == []  # no empty artifacts/vox/ left behind


# ------------------------------------------ 6: nothing replaced without --force, one writer
def test_predict_never_replaces_an_output_silently(bundle, tmp_path):
    from fomm_convert.io import output_lock
    out = tmp_path / "p.npz"
    out.write_bytes(b"earlier results")
    args = ("predict", "--bundle", bundle, "--inputs", INPUTS, "--out", out)
    assert error_line(run(*args)) == f"{out} exists; pass --force to replace it"
    assert out.read_bytes() == b"earlier results"
    with output_lock(out, "predict"):  # another predict writing the same file
        assert error_line(run(*args, "--force")) == (
            f"{out}: another predict is writing it (it holds {tmp_path / '.p.npz.lock'}); "
            f"wait for it to end")
    assert out.read_bytes() == b"earlier results"
    assert run(*args, "--force").exit_code == 0
    with np.load(out) as arrays:
        assert arrays["kp_source_value"].shape == (1, 5, 2)


# ------------------------------------------------------------- 10: the small frictions
def test_a_bundle_that_is_not_there_is_said_so(tmp_path):
    line = error_line(run("predict", "--bundle", tmp_path / "nope", "--inputs", INPUTS,
                          "--out", tmp_path / "p.npz"))
    assert line == f"{tmp_path / 'nope'}: no such directory"


def test_inspect_summarises_a_file_and_a_bundle(bundle, tmp_path):
    model = bundle / "tflite" / "generator.tflite"
    result = run("inspect", model)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (f"{model}: fomm-tiny-generator (generator of tiny "
                        f"{fomm_convert.open_bundle(bundle).manifest['version']}, fp32, NHWC)")
    assert lines[1] == ("  encode_source: source_image [B, 64, 64, 3] -> source_down "
                        "[B, 32, 32, 3], source_features [B, 16, 16, 32]")
    assert len(lines) == 6 and lines[4].startswith("  ops: ")
    assert run("inspect", "--json", model).output.count("\n") > 500  # the whole record
    result = run("inspect", bundle)
    assert result.output.splitlines()[1:3] == [
        "  formats: savedmodel, tflite, tflite-fp16, tflite-int8, onnx, tflite-static, "
        "tflite-static-fp16",
        "  parity: layers pass, onnx pass, savedmodel pass, tflite pass, tflite-fp16 pass, "
        "tflite-int8 pass, tflite-static pass, tflite-static-fp16 pass"]
    assert error_line(run("inspect", tmp_path)) == (
        f"{tmp_path}: a directory and not a bundle; inspect takes a .tflite or .onnx file "
        f"or a bundle directory")


def test_web_says_how_to_serve_what_it_wrote(bundle, tmp_path):
    site = tmp_path / "site"
    result = run("web", "--bundle", bundle, "--out", site)
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"; serve it with: fomm-convert web --out {site} --serve\n")


def test_ctrl_c_exits_130_without_aborted(monkeypatch, tmp_path):
    from fomm_convert.animation import jobs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(jobs, "animate", interrupted)
    result = run("animate", "--bundle", tmp_path, "--source", "s.png", "--driving", "d.mp4",
                 "--out", tmp_path / "a.mp4")
    assert result.exit_code == 130 and result.output == "interrupted\n"


@pytest.mark.slow  # a build
def test_ctrl_c_in_a_build_exits_130_and_leaves_nothing(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "build", "--config",
                             config_path("tiny"), "--checkpoint", str(CKPT), "--out",
                             str(tmp_path / "out" / "tiny"), "--formats", "tflite"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    assert proc.stdout.readline().startswith("[")  # the first progress line: work under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.endswith("interrupted\n") and "Aborted!" not in err, err
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert not (tmp_path / "out").exists(), (left, err)


def test_reconstruct_visualize_needs_out(bundle):
    result = run("reconstruct", "--bundle", bundle, "--video", "v.mp4", "--visualize")
    assert result.exit_code == 2
    assert "--visualize draws into --out: give --out too" in result.output


def test_an_audio_only_file_says_it_has_no_video(tmp_path):
    import imageio_ffmpeg
    audio = tmp_path / "talk.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio)],
                   check=True)
    from fomm_convert.media import MediaError, open_video
    with pytest.raises(MediaError, match=rf"^{re.escape(str(audio))}: no video stream "
                                         rf"\(only audio\)$"):
        open_video(audio)


# --------------------------------------------------- 7: verify without the checkpoint
def test_verify_says_what_it_needs_and_files_only_needs_no_checkpoint(bundle, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here, as for a user who downloaded it
    line = error_line(run("verify", bundle))
    assert line == ("checkpoints/tiny-seed7.pth.tar: the bundle's checkpoint is not there; "
                    "pass --checkpoint (parity is rerun against the checkpoint the bundle "
                    "was built from; verify --files-only checks the files without it)")
    result = run("verify", "--files-only", bundle)
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"{bundle}: verified (files only; parity not rerun)\n")


def test_verify_files_only_runs_without_torch_or_tensorflow(bundle):
    """A lite install (no torch, TensorFlow, onnx) verifies a downloaded bundle's files."""
    script = ("import sys\n"
              "for name in ('torch', 'tensorflow', 'onnx'): sys.modules[name] = None\n"
              "from fomm_convert.cli import main\n"
              f"sys.argv = ['fomm-convert', 'verify', '--files-only', {str(bundle)!r}]\n"
              "main()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("verified (files only; parity not rerun)\n")


def test_verify_files_only_still_refuses_a_changed_file(bundle, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    model = copy / "tflite" / "kp_detector.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    model.write_bytes(bytes(data))
    line = error_line(run("verify", "--files-only", copy))
    assert line.startswith(f"{copy}: does not verify (1 file problem(s): ")
    assert "tflite/kp_detector.tflite" in line


# --------------------------------------- 6, 8, 9: animate's output, warnings and noise
def driving_video(path, frames=4):
    from fomm_convert.media import open_writer, to_uint8
    with np.load(INPUTS) as data:
        driving = data["driving"].transpose(0, 2, 3, 1)[:frames]
    with open_writer(path, 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    return path


def test_animate_warns_replaces_only_with_force_and_crops_on_request(bundle, tmp_path):
    from PIL import Image
    with np.load(INPUTS) as data:
        face = (data["source"][0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    source = tmp_path / "wide.png"
    Image.fromarray(np.concatenate([face, face[:, :32]], 1)).save(source)  # 96x64
    driving = driving_video(tmp_path / "talk.mp4")
    out = tmp_path / "a.mp4"
    args = ("animate", "--bundle", bundle, "--source", source, "--driving", driving,
            "--out", out)
    result = run(*args, "--threads", 1000)
    assert result.exit_code == 0, result.output
    cores = os.cpu_count()
    assert result.output.count("warning: ") == 2
    assert (f"warning: --threads 1000: more than the {cores} cores here; the threads take "
            f"turns on them (slower than {cores})\n") in result.output
    assert (f"warning: {source}: 96x64 is stretched to the model's 64x64 frame (aspect ratio "
            f"changed by 50%); --crop center keeps its shape\n") in result.output
    first = out.read_bytes()
    assert error_line(run(*args)) == f"{out} exists; pass --force to replace it"
    assert out.read_bytes() == first
    result = run(*args, "--force", "--crop", "center")
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    assert out.read_bytes() != first  # the middle 64 columns, not the stretched picture
    from fomm_convert.io import output_lock
    cropped = out.read_bytes()
    with output_lock(out, "animate"):  # another animate writing the same file
        assert error_line(run(*args, "--force")) == (
            f"{out}: another process is writing it (it holds {tmp_path / '.a.mp4.lock'}); "
            f"wait for it to end")
    assert out.read_bytes() == cropped


def test_tflite_runs_print_no_runtime_log_lines(bundle, tmp_path):
    args = [sys.executable, "-m", "fomm_convert.cli", "predict", "--bundle", str(bundle),
            "--inputs", str(INPUTS), "--backend", "tflite", "--out"]
    quiet = subprocess.run([*args, str(tmp_path / "q.npz")], capture_output=True, text=True,
                           cwd=ROOT)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = subprocess.run([*args[:3], "--verbose", *args[3:], str(tmp_path / "v.npz")],
                             capture_output=True, text=True, cwd=ROOT)
    assert verbose.returncode == 0
    assert "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in verbose.stderr


def test_a_missing_framework_is_one_line_naming_the_extra(tmp_path):
    """Without torch and TensorFlow (a lite install: tests/test_wheel.py runs the installed
    wheel), a command that needs them names the extra (issue 20, item 4); so does --plot
    without matplotlib."""
    script = ("import sys\n"
              "for name in ('torch', 'tensorflow', 'onnx', 'matplotlib'): "
              "sys.modules[name] = None\n"
              "from fomm_convert.cli import main\n"
              "sys.argv = ['fomm-convert', *sys.argv[1:]]\n"
              "main()\n")
    for args, what, module, extra in (
            (["build", "--dataset", "vox", "--synthetic"], "fomm-convert build", "torch",
             "convert"),
            (["inspect", "--config", config_path("tiny"), "--checkpoint", str(CKPT)],
             "fomm-convert inspect", "tensorflow", "convert"),
            (["bench", "--from-json", "bench.json", "--plot", "bench.png"], "--plot",
             "matplotlib", "plot")):
        result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                                text=True, cwd=tmp_path)
        assert (result.returncode, result.stderr) == (
            1, f"Error: {what} needs {module}, which is not installed: pip install "
               f"'fomm-convert[{extra}]'\n"), result.stderr
    assert list(tmp_path.iterdir()) == []
