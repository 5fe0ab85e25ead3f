"""The Python API (README, "Python API") does what the command line does."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import FIXTURES, config_path

import fomm_convert
from fomm_convert.errors import FommError
from fomm_convert.fixtures import demo_inputs
from fomm_convert.media import open_writer, to_uint8


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "tiny"
    return fomm_convert.build(config_path("tiny"), FIXTURES / "tiny-seed7.pth.tar",
                              formats=["tflite"], out=out, echo=lambda *_: None)


def test_build_verify_open_animate(bundle_dir, tmp_path):
    assert (bundle_dir / "manifest.json").is_file()
    reports = fomm_convert.verify(bundle_dir, FIXTURES / "tiny-seed7.pth.tar",
                                  echo=lambda *_: None)
    assert list(reports) == ["tflite"] and reports["tflite"].passed

    source, driving = demo_inputs((64, 64, 3), 6)
    iio.imwrite(tmp_path / "face.png", to_uint8(source[0]))
    frames = tmp_path / "frames"
    with open_writer(tmp_path / "talk.mp4", 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    bundle = fomm_convert.open_bundle(bundle_dir)
    assert bundle.spec.name == "tiny" and bundle.manifest["formats"] == ["tflite"]
    summary = bundle.animate(tmp_path / "face.png", tmp_path / "talk.mp4", frames,
                             notify=lambda *_: None)
    assert summary["frames"] == 6 and len(list(frames.glob("frame_*.png"))) == 6

    # The backend runs the models on arrays: the same frame as animate's first one.
    backend = bundle.backend("tflite")
    kp = backend.kp_detector(source)
    frame = backend.generate(backend.encode_source(source), kp, kp)
    assert frame.shape == (1, 64, 64, 3) and np.isfinite(frame).all()


def test_errors_are_fomm_errors(tmp_path):
    with pytest.raises(FommError, match="manifest.json"):
        fomm_convert.open_bundle(tmp_path)
