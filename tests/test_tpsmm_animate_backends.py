"""`animate` of a TPSMM bundle (issue 22 item 1) in every Python bundle backend (and
onnx-web and litert-js in headless Chromium) and every mode gives the frames of the
original demo's make_animation loop (per frame at batch 1, motion from driving frame 0,
relative scale from the source's and frame 0's hulls), run
in the test on the torch reference's networks (test_tpsmm_animate.make_animation; the
oracle ties them to the original), within the frame policy of issue 21 (1e-4 absolute on
frames in [0, 1], 1e-2 for the float16 files; the int8 files' within the int8 profile's
0.1); at the default batch (the backend's; 1 in avd: tpsmm/animation.py)
and at batch 1.

The tiny oracle config's bundle (conftest: tpsmm_bundle, slow) on 12 frames of the sample
clip, written lossless; frames are compared before 8-bit encoding (animate's floats,
caught on their way to the writer). Mean and max abs per backend and mode: printed (-s).
"""
from __future__ import annotations

from importlib.util import find_spec

import pytest

import fomm_convert
from fomm_convert import media
from fomm_convert.animation import jobs
from fomm_convert.parity.compare import load_tolerances
from fomm_convert.tpsmm.architecture import MODES

from conftest import SHARED, missing_tool, require_browser, require_shared
from test_tpsmm_animate import (CONFIG, SIZE, caught, checkpoint, errors,  # noqa: F401
                                inputs_as_animate_reads_them, make_animation, nets,
                                write_lossless)

MEDIA = SHARED / "media"
# The Python backends of TPSMM's formats (families.py: savedmodel, tflite, onnx,
# tflite-static, the float16 and int8 TFLite files), OpenVINO over the ONNX files.
BACKENDS = ("savedmodel", "tflite", "tflite-static", "onnx", "openvino", "tflite-fp16",
            "tflite-static-fp16", "tflite-int8")
# The browser runtimes on wasm (their WebGPU ones, on SwiftShader, take minutes a frame
# here: tests/test_browser_tpsmm.py holds them to the oracle on 2 frames).
BROWSER = ("onnx-web", "litert-js")
FRAME_POLICY = 1e-4
FP16_FRAME_POLICY = 1e-2  # issue 21: the float16 files' frames
# The int8 files' frames: the int8 profile's image bound (parity/tolerances.yaml).
INT8_FRAME_POLICY = load_tolerances(profile="int8").for_name(
    "generator/avd/<root>:prediction").value


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Frames 100..111 of the sample clip at the tiny frame, lossless."""
    require_shared("media/source.png", "media/driving.mp4")
    root = tmp_path_factory.mktemp("clip")
    frames = list(media.open_video(MEDIA / "driving.mp4").frames(SIZE))[100:112]
    write_lossless(root / "driving.mp4", frames)
    return {"source": MEDIA / "source.png", "driving": root / "driving.mp4"}


@pytest.fixture(scope="module")
def expected(nets, clip):  # noqa: F811 (nets: the imported fixture)
    """The original's loop on the reference, per mode."""
    inputs = inputs_as_animate_reads_them(clip["source"], clip["driving"])
    return {mode: make_animation(nets, *inputs, mode) for mode in MODES}


def _cases():
    for mode in MODES:
        for backend in BACKENDS:
            yield pytest.param(mode, backend)
        for runtime in BROWSER:
            yield pytest.param(mode, runtime, marks=pytest.mark.browser)


@pytest.mark.parametrize("batch_size", [None, 1], ids=["default-batch", "batch-1"])
@pytest.mark.parametrize("mode,backend", list(_cases()))
def test_frames_are_the_original_loops(tpsmm_bundle, clip, expected, caught,  # noqa: F811
                                       tmp_path, backend, mode, batch_size):
    if backend == "openvino" and not find_spec("openvino"):
        missing_tool("openvino is not installed: pip install -e '.[dev]'")
    if backend in BROWSER:
        require_browser()
    bundle = fomm_convert.open_bundle(tpsmm_bundle("tiny"))
    summary = bundle.animate(clip["source"], clip["driving"], tmp_path / "out.mp4",
                             backend=backend, mode=mode, batch_size=batch_size,
                             notify=lambda text: None)
    assert (summary["frames"], summary["mode"]) == (12, mode)
    assert (tmp_path / "out.mp4").stat().st_size > 0
    mean, worst = errors(caught, expected[mode])
    print(f"\n{backend} {mode} batch {batch_size or 'default'}: mean {mean:.1e} "
          f"max {worst:.1e}")
    policy = (FP16_FRAME_POLICY if backend.endswith("fp16") else INT8_FRAME_POLICY
              if backend.endswith("int8") else FRAME_POLICY)
    assert len(caught) == 12 and worst <= policy, (mean, worst)


def test_avd_runs_frame_by_frame_unless_a_batch_is_asked(checkpoint, clip,  # noqa: F811
                                                         monkeypatch, tmp_path):
    """TPSMM's avd animates at batch 1 when no --batch-size is given (tpsmm/animation.py:
    batch 4 took the whole clip's frames past 1e-4); the other modes at the backend's
    default (torch: 4); an asked batch is the batch."""
    sizes = []
    real = jobs.output_frames

    def catch(batch, *args):
        sizes.append(len(batch.prediction))
        yield from real(batch, *args)
    monkeypatch.setattr(jobs, "output_frames", catch)
    for mode, batch_size, expected in (("avd", None, [1] * 12), ("relative", None, [4] * 3),
                                       ("avd", 4, [4] * 3)):
        sizes.clear()
        fomm_convert.animate(clip["source"], clip["driving"], tmp_path / "out.mp4",
                             config=str(CONFIG), checkpoint=checkpoint, mode=mode,
                             batch_size=batch_size, force=True, notify=lambda text: None)
        assert sizes == expected, (mode, batch_size)
