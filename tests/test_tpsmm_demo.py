"""`fomm-convert demo` of a TPSMM spec (issue 22 item 5) once its family runs on the
browser page (families.Family.web, monkeypatched here until the page takes TPSMM
bundles): the synthetic notice, a bundle built and verified, the drawn face animated
into an mp4 and its visualisation with the TFLite files, as FOMM's demo does. On the
tiny oracle config (tpsmm-vox's is a 351 MB checkpoint and a 15-minute build): a build
in the test, so the slow tier."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fomm_convert
from fomm_convert import families, media
from fomm_convert.spec import load_spec

from conftest import TPSMM_ORACLE, require_tpsmm_oracle
from test_tpsmm_animate import caught  # noqa: F401 (animate's frames, as floats)

CONFIG = TPSMM_ORACLE / "configs" / "tiny.yaml"


@pytest.mark.slow
def test_the_demo_runs_a_tpsmm_spec_once_the_page_takes_it(caught, tmp_path,  # noqa: F811
                                                           monkeypatch):
    require_tpsmm_oracle("configs/tiny.yaml")
    from fomm_convert.pipeline import demo
    monkeypatch.setitem(families.FAMILIES, "tpsmm",
                        dataclasses.replace(families.FAMILIES["tpsmm"], web=True))
    monkeypatch.chdir(tmp_path)  # checkpoints/ and artifacts/ are the working directory's
    said, warned = [], []
    folder = demo.demo(str(CONFIG), echo=said.append, warn=warned.append)
    assert load_spec(str(CONFIG)).family == "tpsmm"
    assert warned[0] == ("SYNTHETIC WEIGHTS: no checkpoint here (the official tiny "
                         "checkpoint cannot be downloaded on this machine); the pipeline is "
                         "real, the pictures are not meant to look like anything.")
    assert (tmp_path / "checkpoints" / "tiny-synthetic-seed7.pth.tar").is_file()
    manifest, = (tmp_path / "artifacts" / "tiny").glob("*/manifest.json")
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
