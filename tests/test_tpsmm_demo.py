"""`fomm-convert demo` of a TPSMM spec (issue 22 item 5): the synthetic notice, a bundle
built and verified, the drawn face animated into an mp4 and its visualisation with the
TFLite files, and the web page on the bundle with the demo's inputs, as FOMM's demo does.
On the tiny oracle config (tpsmm-vox's is a 351 MB checkpoint and a 12-minute build): a
build in the test, so the slow tier."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fomm_convert
from fomm_convert import media
from fomm_convert.formats import FORMATS
from fomm_convert.pipeline.web import SITE_JSON
from fomm_convert.runtime.browser import BrowserError
from fomm_convert.runtime.browser.session import web_dir
from fomm_convert.spec import load_spec

from conftest import TPSMM_ORACLE, require_tpsmm_oracle
from test_tpsmm_animate import caught  # noqa: F401 (animate's frames, as floats)

CONFIG = TPSMM_ORACLE / "configs" / "tiny.yaml"


@pytest.mark.slow
def test_the_demo_runs_a_tpsmm_spec(caught, tmp_path, monkeypatch):  # noqa: F811
    require_tpsmm_oracle("configs/tiny.yaml")
    from fomm_convert.pipeline import demo
    monkeypatch.chdir(tmp_path)  # checkpoints/ and artifacts/ are the working directory's
    said, warned = [], []
    folder = demo.demo(str(CONFIG), echo=said.append, warn=warned.append)
    assert load_spec(str(CONFIG)).family == "tpsmm"
    assert warned[0] == ("SYNTHETIC WEIGHTS: no checkpoint here (the official tiny "
                         "checkpoint cannot be downloaded on this machine); the pipeline is "
                         "real, the pictures are not meant to look like anything.")
    assert (tmp_path / "checkpoints" / "tiny-synthetic-seed7.pth.tar").is_file()
    manifest, = (tmp_path / "artifacts" / "tiny").glob("*/manifest.json")
    # the build has just held every format to the reference: verify checks the files only
    assert any(line.endswith("files match their sha256; manifest, metadata and model "
                             "files checked") for line in said)
    assert not [line for line in said if line.startswith("parity ")]
    for name, width in (("animation.mp4", 64), ("animation-visualized.mp4", 192)):
        assert f"wrote {folder / name}: 48 frames at " in "\n".join(said)
        assert np.stack(list(media.open_video(folder / name).frames())).shape == \
            (48, 64, width, 3)
    # both are the frames of animate with the bundle's TFLite files on the drawn face
    assert len(caught) == 96
    fomm_convert.open_bundle(manifest.parent).animate(
        folder / "source.png", folder / "driving.mp4", tmp_path / "again.mp4",
        backend="tflite", notify=lambda text: None)
    assert np.array_equal(np.stack(caught[96:]), np.stack(caught[:48]))
    assert np.array_equal(np.stack(caught[96:]), np.stack(caught[48:96]))
    site = tmp_path / "artifacts" / "demo-site"
    try:
        web_dir()
    except BrowserError:  # no web runtime installed: the demo says so and goes on
        assert warned[-1].startswith("no web demo: ") and "make web" in warned[-1]
    else:
        assert json.loads((site / SITE_JSON).read_text())["family"] == "tpsmm"
        assert (site / "source.png").is_file() and (site / "driving.mp4").is_file()
        assert f"wrote the web demo {site.relative_to(tmp_path)}" in "\n".join(said)
    # again: the bundle built earlier, its parity against the checkpoint verified too
    said.clear()
    demo.demo(str(CONFIG), echo=said.append, warn=warned.append)
    formats = json.loads(manifest.read_text())["formats"]
    assert said[0] == f"using the bundle built earlier: {manifest.parent.relative_to(tmp_path)}"
    assert said[1].endswith("files match their sha256; manifest, metadata and model files "
                            "checked")
    assert said[2].startswith(f"parity of {len(formats)} formats against the torch "
                              f"reference of tiny-synthetic-seed7.pth.tar, computed first")
    assert said[3:3 + len(formats)] == [f"parity {name} ({FORMATS[name].precision}): pass"
                                        for name in formats]
