"""Videos in: frames streamed one at a time through imageio-ffmpeg."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MediaError
from .pixels import as_float
from .resize import resize_like_demo


class VideoReader:
    """A video opened for streaming: iterate for (H, W, 3) uint8 RGB frames.

    fps, frame_count (an estimate from the container's duration, or None), has_audio and
    size (W, H) come from ffmpeg's header. The first frame is decoded on open, so an empty
    or undecodable video fails here and not halfway through a job. Iterating twice decodes
    the file twice; nothing but the current frame is held.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise MediaError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise MediaError(f"{self.path}: is a directory, not a video")
        gen, meta, first = self._open()
        gen.close()
        if first is None:
            raise MediaError(f"{self.path}: the video has no frames")
        self.meta = meta
        self.size = tuple(meta["size"])
        self.fps = float(meta.get("fps") or 0.0)
        duration = float(meta.get("duration") or 0.0)
        self.frame_count = int(round(duration * self.fps)) if duration > 0 and self.fps > 0 else None
        self.has_audio = "audio_codec" in meta

    def _open(self):
        import imageio_ffmpeg
        gen = imageio_ffmpeg.read_frames(str(self.path))
        try:
            meta = next(gen)
        except Exception as exc:
            gen.close()
            raise MediaError(f"{self.path}: not a readable video ({_reason(exc)})") from None
        try:
            first = next(gen, None)
        except Exception as exc:
            gen.close()
            raise MediaError(f"{self.path}: cannot decode its first frame ({_reason(exc)})") \
                from None
        return gen, meta, first

    def __iter__(self):
        gen, meta, first = self._open()
        w, h = meta["size"]
        index = 0
        try:
            raw = first
            while raw is not None:
                yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                index += 1
                try:
                    raw = next(gen, None)
                except Exception as exc:
                    raise MediaError(f"{self.path}: cannot decode frame {index} "
                                     f"({_reason(exc)})") from None
        finally:
            gen.close()

    def frames(self, shape=None):
        """float32 (H, W, 3) frames in [0, 1], resized to shape=(H, W) as the demo does."""
        for frame in self:
            if shape is None:
                yield as_float(frame).astype(np.float32)
            else:
                yield resize_like_demo(frame, shape).astype(np.float32)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # imageio-ffmpeg puts ffmpeg's own complaint after a header line; keep the most telling.
    for line in reversed(lines):
        if "Invalid data" in line or "No such file" in line or "not found" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def open_video(path) -> VideoReader:
    return VideoReader(path)
