"""`fomm-convert web` on a TPSMM bundle (issue 22): site.json names the family, the page
runs TPSMM's calls per frame (web/site/families.mjs) in the mode its selector says, and
on the lossless clip its frames are `fomm-convert animate`'s up to 8-bit rounding in
every mode, as tests/test_web.py holds FOMM's (the same browser and helpers).

Needs chromium, web/node_modules (`make web`) and ../shared/media: without them these
tests fail when CI=true and skip elsewhere, naming what to install.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fomm_convert.cli import cli
from fomm_convert.pipeline.web import SITE_JSON

from conftest import require_browser
from test_web import (animate_frames, assert_within_8_bit_rounding, browser_tools,  # noqa: F401
                      clips, finished, open_page, run_on_clip, write_with_inputs)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def web_tools():
    require_browser()


@pytest.fixture(scope="module")
def bundle(tpsmm_bundle):
    return tpsmm_bundle("tiny")


def test_site_names_the_family_and_its_defaults(bundle, tmp_path):
    result = CliRunner().invoke(cli, ["web", "--bundle", str(bundle), "--out",
                                      str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "site" / SITE_JSON).read_text())
    assert (config["family"], config["normalization"], config["keypoint_group"]) == (
        "tpsmm", {"mode": "relative"}, 5)
    assert set(config["files"]) == {"kp_detector", "process_kp_driving", "avd_network",
                                    "generator"}
    assert set(config["files"]["generator"]) == {"serving_default", "encode_source",
                                                 "generate"}


@pytest.mark.parametrize("mode", ["relative", "standard", "avd"])
@pytest.mark.parametrize("runtime,fmt,backend", [("litert-js", "tflite-static", "tflite-static"),
                                                 ("onnx-web", "onnx", "onnx")])
def test_file_driving_frames_equal_animate(browser_tools, bundle, clips, tmp_path,  # noqa: F811
                                           open_page, runtime, fmt, backend, mode):
    site = write_with_inputs(bundle, tmp_path / "site", fmt, clips)
    page, ours = run_on_clip(open_page, site, runtime, f"&mode={mode}")
    assert page.eval("document.getElementById('mode').value") == mode
    assert page.eval("document.getElementById('fomm-options').hidden") is True
    expected = animate_frames(bundle, backend, clips[0], tmp_path / "animate",
                              ("--mode", mode))
    assert_within_8_bit_rounding(ours, expected, f"{runtime} {mode}")


def test_an_unknown_mode_is_a_persons_error(browser_tools, bundle, clips, tmp_path,  # noqa: F811
                                            open_page):
    site = write_with_inputs(bundle, tmp_path / "site", "tflite-static", clips)
    page = open_page(site, "source=source.png&driving=clip.webm&backend=litert-js&mode=fast")
    state = finished(page)
    assert state["state"] == "error"
    assert state["error"] == "mode=fast: the modes are relative, standard and avd"
