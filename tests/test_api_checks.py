"""The Python API checks a caller's arrays as the command line checks its inputs (issue 26,
item 5): dtype, range, layout and shape, each mistake one FommError line, before any
runtime sees the array; what passes gives the runtime's own numbers."""
from __future__ import annotations

import numpy as np
import pytest

import fomm_convert
from conftest import FIXTURES
from fomm_convert.errors import FommError


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return fomm_convert.open_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def oracle():
    with np.load(FIXTURES / "tiny.npz") as data:
        return {k: data[k] for k in data.files}


def refusal(call, *args) -> str:
    with pytest.raises(FommError) as info:
        call(*args)
    text = str(info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", ["tflite", "onnx"])
def test_images_are_checked_before_the_runtime(bundle, oracle, name):
    runner = bundle.backend(name)
    source = oracle["source"].transpose(0, 2, 3, 1)  # (1, 64, 64, 3) float32 in [0, 1]
    assert refusal(runner.kp_detector, (source * 255).round().astype(np.uint8)) == (
        "kp_detector: image: uint8 pixels (0-255); the models take float32 in [0, 1]: divide "
        "by 255 (or use Bundle.read_image)")
    assert refusal(runner.kp_detector, source * 255) == (
        "kp_detector: image: a float image must hold values in [0, 1], this one spans "
        f"[{(source * 255).min():g}, {(source * 255).max():g}]")
    assert refusal(runner.kp_detector, source[0]) == (
        "kp_detector: image: shape (64, 64, 3) has no batch axis; pass image[None], shape "
        "(1, 64, 64, 3)")
    assert refusal(runner.kp_detector, oracle["source"]) == (
        "kp_detector: image: shape (1, 3, 64, 64) is NCHW; the models take NHWC: "
        "image.transpose(0, 2, 3, 1)")
    assert refusal(runner.encode_source, np.zeros((1, 32, 48, 3), np.float32)) == (
        "encode_source: source_image: shape (1, 32, 48, 3), expected (B, 64, 64, 3) "
        "(Bundle.read_image resizes a picture to it)")
    nan = source.copy()
    nan[0, 0, 0, 0] = np.nan
    assert refusal(runner.kp_detector, nan) == (
        "kp_detector: image: holds 1 values that are not finite (NaN or infinite)")


@pytest.mark.parametrize("name", ["tflite", "onnx"])
def test_keypoints_and_encodings_are_checked(bundle, oracle, name):
    runner = bundle.backend(name)
    source = oracle["source"].transpose(0, 2, 3, 1)
    kp = runner.kp_detector(source)
    encoded = runner.encode_source(source)
    assert refusal(runner.generate, encoded, {"value": kp["value"]}, kp) == (
        "generate: kp_driving: pass what kp_detector returned (a dict of value and jacobian)")
    bad = {"value": kp["value"][:, :3], "jacobian": kp["jacobian"]}
    assert refusal(runner.generate, encoded, bad, kp) == (
        "generate: kp_driving: value has shape (1, 3, 2), expected (B, 5, 2)")
    assert refusal(runner.generate, {"source_image": source}, kp, kp) == (
        "generate: encoded: pass what encode_source returned (a dict of source_features and "
        "source_down)")


def test_what_passes_gives_the_original_numbers(bundle, oracle):
    runner = bundle.backend("onnx")
    source = oracle["source"].transpose(0, 2, 3, 1)
    kp = runner.kp_detector(source.astype(np.float64))  # any float dtype in [0, 1]
    assert np.abs(kp["value"] - oracle["kp_source_value"]).max() <= 1e-5
    assert np.abs(kp["jacobian"] - oracle["kp_source_jacobian"]).max() <= 1e-4


def test_read_image_gives_what_the_models_take(bundle, tmp_path):
    from PIL import Image
    Image.fromarray(np.full((30, 20, 3), 128, np.uint8)).save(tmp_path / "face.png")
    from fomm_convert.errors import FommWarning
    with pytest.warns(FommWarning) as seen:
        image = bundle.read_image(tmp_path / "face.png")
    assert [str(w.message).split(": ", 1)[1] for w in seen] == [
        "20x30 is smaller than the model's 64x64 frame: it is upscaled, so the result is "
        "blurred", "20x30 is stretched to the model's 64x64 frame (aspect ratio changed by "
        "33%); --crop center keeps its shape"]
    assert image.shape == (1, 64, 64, 3) and image.dtype == np.float32
    assert np.abs(image - 128 / 255).max() < 1e-6
