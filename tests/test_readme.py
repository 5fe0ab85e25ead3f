"""The README's quick start and Python API snippet run exactly as printed, read out of
README.md so the test follows the text: a newcomer who copies them gets no NameError and no
refusal (issue 26, item 5). The quick start builds a full-size vox bundle (from a synthetic
checkpoint placed where it looks), which the snippet then opens: slow."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def readme_block(heading: str, language: str) -> str | None:
    """The first ```language block under the README's `## heading` (None if no such
    section)."""
    text = (ROOT / "README.md").read_text()
    section = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        return None
    block = re.search(rf"^```{language}\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, f"README.md: the '{heading}' section has no ```{language} block"
    return block.group(1)


@pytest.fixture(scope="module")
def newcomer_folder(tmp_path_factory):
    """What the snippets expect in the working directory: the official vox checkpoint's file
    name (synthetic weights in it), a face picture, a short talking video and predict's
    inputs."""
    from fomm_convert.fixtures import demo_inputs
    from fomm_convert.media import open_writer, to_uint8
    from fomm_convert.spec import load_spec
    from fomm_convert.synth import write_checkpoint
    from PIL import Image
    folder = tmp_path_factory.mktemp("newcomer")
    spec = load_spec("vox")
    write_checkpoint(spec, 7, folder / "checkpoints" / spec.checkpoint)
    source, driving = demo_inputs(spec.frame_shape, 6)
    Image.fromarray(to_uint8(source[0])).save(folder / "face.png")
    with open_writer(folder / "talk.mp4", 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    np.savez(folder / "in.npz", source=source[:1].transpose(0, 3, 1, 2),
             driving=driving[:2].transpose(0, 3, 1, 2))
    return folder


@pytest.fixture(scope="module")
def quick_start(newcomer_folder):
    """The README's quick start, each command run as printed (its bundle serves the API
    snippet too: one vox build)."""
    commands = readme_block("Quick start", "sh")
    assert commands is not None, "README.md has no 'Quick start' section"
    for line in commands.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        args = shlex.split(line)
        assert args[0] == "fomm-convert", line
        result = subprocess.run([sys.executable, "-m", "fomm_convert.cli", *args[1:]],
                                cwd=newcomer_folder, capture_output=True, text=True)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
    return newcomer_folder


def test_the_quick_start_runs_as_printed(quick_start):
    for made in ("vox-bundle/manifest.json", "result.mp4", "out.npz", "site/index.html"):
        assert (quick_start / made).stat().st_size > 0, made
    with np.load(quick_start / "out.npz") as out:
        assert out["kp_driving_value"].shape == (2, 10, 2)


def test_the_api_snippet_runs_as_printed(quick_start, monkeypatch):
    snippet = readme_block("Python API", "python")
    assert snippet is not None, "README.md has no 'Python API' section"
    monkeypatch.chdir(quick_start)
    scope: dict = {}
    exec(compile(snippet, "README.md (Python API)", "exec"), scope)
    frame = scope["frame"]
    assert frame.shape == (1, 256, 256, 3) and frame.dtype == np.float32
    assert np.isfinite(frame).all() and 0 <= frame.min() and frame.max() <= 1
    assert (quick_start / "result.gif").stat().st_size > 0
