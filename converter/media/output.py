"""Which writer an output path takes: .mp4, .gif, else a directory of PNG frames."""
from __future__ import annotations

from pathlib import Path

from .errors import MediaError
from .gif import GIFWriter
from .mp4 import MP4Writer
from .png_dir import PNGDirWriter
from .writer import FrameWriter

VIDEO_SUFFIXES = {".mp4": "mp4", ".gif": "gif"}
# Suffixes taken for a directory of PNG frames (as is any existing directory).
FRAME_DIR_SUFFIXES = ("", ".d", ".frames")


def output_kind(out) -> str:
    """'mp4', 'gif' or 'png' (a directory of frames) from the output path."""
    suffix = Path(out).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VIDEO_SUFFIXES[suffix]
    if suffix in FRAME_DIR_SUFFIXES or Path(out).is_dir():
        return "png"
    raise MediaError(f"{out}: unknown output type '{suffix}' (use .mp4, .gif or a directory "
                     f"for PNG frames)")


def open_writer(out, fps: float, audio_from=None, force: bool = False) -> FrameWriter:
    """A frame writer chosen by the output's suffix: .mp4, .gif, else a PNG directory.

    audio_from: a video whose first audio stream is muxed into an .mp4 output. An existing
    output is replaced only with `force`; a second writer of the same output fails at once.
    """
    kind = output_kind(out)
    if Path(out).is_dir() and kind != "png":
        raise MediaError(f"{out}: is a directory")
    if kind == "mp4":
        return MP4Writer(out, fps, audio_from, force)
    if kind == "gif":
        return GIFWriter(out, fps, force)
    return PNGDirWriter(out, fps, force)
