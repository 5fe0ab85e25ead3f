"""EXIF orientation (issue 26, item 1): a phone's portrait photo is stored sideways with an
orientation tag; the command line, the API and the browser page all show it upright, and
the page decodes the same pixels as the command line."""
from __future__ import annotations

import base64
import json
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import require_browser
from fomm_convert.media import load_image_array, read_image

# What each EXIF orientation asks a viewer to do to the stored pixels (EXIF 2.3, tag 274),
# written out here rather than taken from the library under test.
ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                   # mirrored left-right
    3: lambda a: a[::-1, ::-1],                # rotated 180
    4: lambda a: a[::-1],                      # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),         # mirrored along the main diagonal
    6: lambda a: a[::-1].transpose(1, 0, 2),   # rotated 90 clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the other diagonal
    8: lambda a: a[:, ::-1].transpose(1, 0, 2),     # rotated 90 counter-clockwise
}


def pattern() -> np.ndarray:
    """48x32 RGB, smooth (JPEG keeps it closely) and asymmetric in every direction."""
    y, x = np.mgrid[0:32, 0:48]
    return np.stack([x * 5, y * 7, (x * y) % 200 + 20], -1).astype(np.uint8)


def oriented_jpeg(path, orientation: int):
    image = Image.fromarray(pattern())
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, quality=95, subsampling=0, exif=exif.tobytes())
    return path


def stored_pixels(path) -> np.ndarray:
    """The JPEG's pixels as stored (no orientation applied)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
@pytest.mark.filterwarnings("ignore::fomm_convert.errors.FommWarning")  # 48x32 in 64x64
def test_the_orientation_is_applied(tmp_path, orientation):
    path = oriented_jpeg(tmp_path / "photo.jpg", orientation)
    upright = ORIENTED[orientation](stored_pixels(path))
    assert load_image_array(path).tolist() == upright.tolist()
    # animate's source (and Bundle.read_image): the same as a PNG of the upright picture.
    Image.fromarray(np.ascontiguousarray(upright)).save(tmp_path / "upright.png")
    np.testing.assert_array_equal(read_image(path, (64, 64)),
                                  read_image(tmp_path / "upright.png", (64, 64)))
    if orientation in (5, 6, 7, 8):
        assert upright.shape[:2] == (48, 32)


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_bundle):
    require_browser()
    from fomm_convert.pipeline.web import write_site
    return write_site(tiny_bundle, tmp_path_factory.mktemp("exif") / "site", "tflite-static")


DECODE = """(async () => {
  const {decodePicture} = await import('./frames.mjs');
  const blob = await (await fetch('photo.jpg')).blob();
  const p = await decodePicture(blob, 'photo.jpg');
  let text = '';
  for (const byte of p.data) text += String.fromCharCode(byte);
  return JSON.stringify({width: p.width, height: p.height, rgba: btoa(text)});
})()"""


@pytest.mark.browser
@pytest.mark.parametrize("orientation", [6, 3, 5])
def test_the_page_decodes_what_the_command_line_reads(site, orientation):
    from devtools import Browser
    from fomm_convert.pipeline.web_server import site_server, url_of
    path = oriented_jpeg(site / "photo.jpg", orientation)
    ours = load_image_array(path)
    server = site_server(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser()
    try:
        page = browser.page(f"{url_of(server)}index.html")
        got = json.loads(page.eval(DECODE))
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    rgba = np.frombuffer(base64.b64decode(got["rgba"]), np.uint8)
    page_pixels = rgba.reshape(got["height"], got["width"], 4)[..., :3]
    assert page_pixels.shape == ours.shape
    # Chromium and Pillow both decode with libjpeg-turbo: the same bytes (measured: all
    # 4608 values equal for orientations 3, 5 and 6).
    np.testing.assert_array_equal(page_pixels, ours)
