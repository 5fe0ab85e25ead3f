"""What is accepted but probably wrong is said in one line, and what is noise is not
(issue 26, items 8 and 9): an upscaled or stretched picture, --crop center, the GIF's
frame delays, Pillow's warnings, the runtimes' native log lines. No model is built."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, ROOT, config_path
from fomm_convert.media import open_writer, read_image, resize_like_demo


def picture(path, height, width):
    y, x = np.mgrid[0:height, 0:width]
    Image.fromarray(np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1)
                    .astype(np.uint8)).save(path)
    return path


def test_a_small_source_is_upscaled_with_a_warning(tmp_path):
    from fomm_convert.errors import FommWarning
    path = picture(tmp_path / "tiny.png", 10, 10)
    with pytest.warns(FommWarning) as seen:
        read_image(path, (64, 64))
    assert [str(w.message) for w in seen] == [
        f"{path}: 10x10 is smaller than the model's 64x64 frame: it is upscaled, so the "
        f"result is blurred"]


def test_a_stretched_source_warns_and_crop_center_keeps_its_shape(tmp_path):
    from fomm_convert.errors import FommWarning
    path = picture(tmp_path / "square.png", 128, 128)
    with pytest.warns(FommWarning) as seen:
        stretched = read_image(path, (64, 96))
    assert [str(w.message) for w in seen] == [
        f"{path}: 128x128 is stretched to the model's 96x64 frame (aspect ratio changed by "
        f"33%); --crop center keeps its shape"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        cropped = read_image(path, (64, 96), crop="center")
        read_image(picture(tmp_path / "close.png", 100, 105), (64, 64))  # 5%: no warning
    pixels = np.asarray(Image.open(path))
    expected = resize_like_demo(pixels[21:106], (64, 96))  # 128 * 64 / 96: the middle 85 rows
    np.testing.assert_array_equal(cropped, expected.astype(np.float32))
    assert np.abs(stretched - cropped).max() > 0.1


def test_gif_frame_delays_average_the_video_rate(tmp_path):
    out = tmp_path / "a.gif"
    with open_writer(out, 30.0) as writer:
        for i in range(30):
            writer.write(np.full((8, 8, 3), i * 8, np.uint8))
    with Image.open(out) as gif:
        delays = []
        for i in range(gif.n_frames):
            gif.seek(i)
            delays.append(gif.info["duration"])
    assert sum(delays) == 1000 and set(delays) == {30, 40}  # 30 frames in one second


def test_a_palette_png_gives_no_library_warning(tmp_path):
    image = Image.fromarray((np.arange(64, dtype=np.uint8).reshape(8, 8) * 3), "L").convert("P")
    image.save(tmp_path / "palette.png", transparency=bytes([0, 255] * 128))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "palette.png", (8, 8)).shape == (8, 8, 3)


NATIVE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages|INFO: )", re.MULTILINE)


def test_inspect_config_prints_no_runtime_log_lines():
    args = [sys.executable, "-m", "fomm_convert.cli", "inspect", "--config",
            config_path("tiny"), "--checkpoint", str(FIXTURES / "tiny-seed7.pth.tar")]
    quiet = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith(str(FIXTURES / "tiny-seed7.pth.tar"))
    verbose = subprocess.run([*args[:3], "--verbose", *args[3:]], capture_output=True,
                             text=True, cwd=ROOT)
    assert verbose.returncode == 0 and verbose.stdout == quiet.stdout
    assert NATIVE.search(verbose.stderr), verbose.stderr  # TF's own lines, shown on request
