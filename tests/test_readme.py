"""The README's Python API snippet (and its quick start, once it has one) run exactly as
printed, read out of README.md so the test follows the text: a newcomer who copies them
gets no NameError and no refusal (issue 26, item 5). They build a full-size vox bundle
(from a synthetic checkpoint placed where the snippet looks): slow."""
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


@pytest.fixture
def newcomer_folder(tmp_path, monkeypatch):
    """What the snippets expect in the working directory: the official vox checkpoint's file
    name (synthetic weights in it), a face picture and a short talking video."""
    from fomm_convert.fixtures import demo_inputs
    from fomm_convert.media import open_writer, to_uint8
    from fomm_convert.spec import load_spec
    from fomm_convert.synth import write_checkpoint
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    spec = load_spec("vox")
    write_checkpoint(spec, 7, tmp_path / "checkpoints" / spec.checkpoint)
    source, driving = demo_inputs(spec.frame_shape, 6)
    Image.fromarray(to_uint8(source[0])).save(tmp_path / "face.png")
    with open_writer(tmp_path / "talk.mp4", 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    return tmp_path


def test_the_api_snippet_runs_as_printed(newcomer_folder):
    snippet = readme_block("Python API", "python")
    assert snippet is not None, "README.md has no 'Python API' section"
    scope: dict = {}
    exec(compile(snippet, "README.md (Python API)", "exec"), scope)
    frame = scope["frame"]
    assert frame.shape == (1, 256, 256, 3) and frame.dtype == np.float32
    assert np.isfinite(frame).all() and 0 <= frame.min() and frame.max() <= 1
    assert (newcomer_folder / "result.mp4").stat().st_size > 0


def test_the_quick_start_runs_as_printed(newcomer_folder):
    commands = readme_block("Quick start", "sh")
    if commands is None:
        pytest.skip("README.md has no 'Quick start' section yet")
    for line in commands.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        args = shlex.split(line)
        assert args[0] == "fomm-convert", line
        result = subprocess.run([sys.executable, "-m", "fomm_convert.cli", *args[1:]],
                                cwd=newcomer_folder, capture_output=True, text=True)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
