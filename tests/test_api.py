"""The Python API (README, "Python API") does what the command line does."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import FIXTURES, builds, config_path, demo_media

import fomm_convert
from fomm_convert.errors import FommError
from fomm_convert.media import open_video, read_image, to_uint8


@pytest.fixture(scope="module")
@builds
def bundle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "tiny"
    return fomm_convert.build(config_path("tiny"), FIXTURES / "tiny-seed7.pth.tar",
                              formats=["tflite"], out=out, echo=lambda *_: None)


def test_build_verify_open_animate(bundle_dir, tmp_path):
    assert (bundle_dir / "manifest.json").is_file()
    reports = fomm_convert.verify(bundle_dir, FIXTURES / "tiny-seed7.pth.tar",
                                  echo=lambda *_: None)
    assert list(reports) == ["tflite"] and reports["tflite"].passed

    demo_media(tmp_path, 6)
    frames = tmp_path / "frames"
    bundle = fomm_convert.open_bundle(bundle_dir)
    assert bundle.spec.name == "tiny" and bundle.manifest["formats"] == ["tflite"]
    summary = bundle.animate(tmp_path / "face.png", tmp_path / "talk.mp4", frames,
                             relative=True, adapt_scale=True, notify=lambda *_: None)
    written = sorted(frames.glob("frame_*.png"))
    assert summary["frames"] == 6 and len(written) == 6

    # The backend runs the models on arrays: the same frame as animate's first one, from
    # the picture and the video as animate read them (8-bit, the video's H.264 decode).
    backend = bundle.backend("tflite")
    image = read_image(tmp_path / "face.png", (64, 64))[None]
    first = next(open_video(tmp_path / "talk.mp4").frames((64, 64)))[None]
    kp_source, kp_driving = backend.kp_detector(image), backend.kp_detector(first)
    kp = backend.process_kp_driving(kp_driving, kp_driving, kp_source, True, True, True)
    frame = backend.generate(backend.encode_source(image), kp, kp_source)
    assert frame.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(to_uint8(frame[0]), iio.imread(written[0]))


def test_errors_are_fomm_errors(tmp_path):
    with pytest.raises(FommError, match="manifest.json"):
        fomm_convert.open_bundle(tmp_path)
