"""A directory of lossless numbered PNG frames as output."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .errors import MediaError
from .writer import FrameWriter

FRAME_NAME = re.compile(r"^frame_\d{6}\.png$")


class PNGDirWriter(FrameWriter):
    """A directory of lossless numbered PNGs, frame_000000.png, frame_000001.png, ...

    An existing directory is replaced only when it holds nothing but such frames."""
    kind = "png"

    def __init__(self, out, fps, force: bool = False):
        check_frames_only(out)
        super().__init__(out, fps, force)

    def _replaces(self) -> bool:
        return self.out.is_dir() and any(self.out.iterdir())  # an empty folder holds nothing

    def _create_tmp(self):
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()

    def _write(self, frame):
        import imageio.v3 as iio
        # Encoded in memory and written by us: a full disk is one OSError, nothing buffered.
        data = iio.imwrite("<bytes>", frame, extension=".png")
        (self.tmp / f"frame_{self.count:06d}.png").write_bytes(data)

    def _move_into_place(self):
        move_into_place(self.tmp, self.out)


def check_frames_only(out):
    """An existing output folder may be replaced only when it holds nothing but frames."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise MediaError(f"{out}: exists and is not a directory")
        others = [p.name for p in out.iterdir() if not FRAME_NAME.match(p.name)]
        if others:
            raise MediaError(f"{out}: exists and holds other files than frames "
                             f"(e.g. {others[0]}); choose an empty or new directory")


def move_into_place(tmp: Path, out: Path):
    """The folder `tmp` renamed to `out`, a folder `out` replaced (as good as atomically:
    moved aside first, put back if the rename fails)."""
    old = None
    try:
        if out.exists():
            old = out.parent / f".{out.name}.replaced-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
    except OSError as exc:
        if old is not None and not out.exists():
            os.rename(old, out)
        raise MediaError(f"{out}: cannot write it ({exc.strerror})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
