"""Videos in: frames streamed one at a time from imageio-ffmpeg's ffmpeg.

A video is trusted no more than any input: its frame size is bounded before a frame is
decoded (limits.MAX_PIXELS); an MP4/MOV whose boxes run past the end of the file (cut
mid-file: ffmpeg decodes what is there without a word) is refused on open; and a file
ffmpeg reports errors for while decoding (truncated Matroska, AVI, GIF; damaged data)
is refused when its last frame has been read, instead of passing for a shorter video.
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import cut
from ..limits import MAX_PIXELS
from .errors import MediaError
from .fit import center_crop
from .pixels import as_float32
from .resize import resize_like_demo


class VideoReader:
    """A video opened for streaming: iterate for (H, W, 3) uint8 RGB frames.

    fps, frame_count (an estimate from the container's duration, or None), has_audio and
    size (W, H) come from ffmpeg's header. The first frame is decoded on open, so an empty
    or undecodable video fails here and not halfway through a job. Iterating twice decodes
    the file twice; nothing but the current frame is held. An iteration that reaches the
    end raises MediaError if ffmpeg reported any error on the way (nothing is written
    from a truncated video: the writers remove their output on an error).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise MediaError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise MediaError(f"{self.path}: is a directory, not a video")
        cut = _mp4_cut(self.path)
        if cut:
            raise MediaError(f"{self.path}: truncated: {cut}")
        size = _declared_size(self.path)
        if size is not None and size[0] * size[1] > MAX_PIXELS:
            raise MediaError(f"{self.path}: frames of {size[0]}x{size[1]} are "
                             f"{size[0] * size[1]} pixels, more than the {MAX_PIXELS} a "
                             f"frame may have")
        meta, first = self._open()
        if first is None:
            raise MediaError(f"{self.path}: the video has no frames")
        self.meta = meta
        self.size = tuple(meta["size"])
        self.fps = float(meta.get("fps") or 0.0)
        duration = float(meta.get("duration") or 0.0)
        self.frame_count = int(round(duration * self.fps)) if duration > 0 and self.fps > 0 else None
        self.has_audio = "audio_codec" in meta

    def _open(self):
        """ffmpeg's header as imageio-ffmpeg parses it, and the first frame (or None)."""
        import imageio_ffmpeg
        gen = imageio_ffmpeg.read_frames(str(self.path))
        try:
            try:
                meta = next(gen)
            except Exception as exc:
                only = _streams_without_video(str(exc))
                if only:
                    raise MediaError(f"{self.path}: no video stream (only {only})") from None
                raise MediaError(f"{self.path}: not a readable video ({_reason(exc)})") \
                    from None
            try:
                return meta, next(gen, None)
            except Exception as exc:
                raise MediaError(f"{self.path}: cannot decode its first frame "
                                 f"({_reason(exc)})") from None
        finally:
            gen.close()

    def _decode(self, check: bool = True):
        """Raw frames from ffmpeg (the same command imageio-ffmpeg runs, with only errors
        logged); at the end, any error ffmpeg logged or its exit status refuses the file."""
        import imageio_ffmpeg
        width, height = self.size
        frame_bytes = width * height * 3
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(self.path),
               "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-f", "image2pipe", "-"]
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=log)
            index = 0
            try:
                while True:
                    raw = proc.stdout.read(frame_bytes)
                    if len(raw) < frame_bytes:
                        break
                    yield raw
                    index += 1
                status = proc.wait()
                if check and (raw or status or os.fstat(log.fileno()).st_size):
                    log.seek(0)
                    raise MediaError(f"{self.path}: damaged or truncated: ffmpeg stopped "
                                     f"after {index} frames ({_ffmpeg_error(log.read(), status)})")
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()

    def __iter__(self):
        width, height = self.size
        for raw in self._decode():
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)

    def frames(self, shape=None, crop: str = "none"):
        """float32 (H, W, 3) frames in [0, 1], resized to shape=(H, W) as the demo does
        (a frame of that size already is only converted: the demo's resize is then the
        identity), after a centred crop to its aspect ratio with crop "center"."""
        for frame in self:
            if shape is not None and crop == "center":
                frame = center_crop(frame, shape)
            if shape is None or frame.shape[:2] == tuple(shape):
                yield as_float32(frame)
            else:
                yield resize_like_demo(frame, shape).astype(np.float32)


def _declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the largest video stream (ffmpeg decodes the largest) as ffmpeg's
    probe of the header states it (no frame decoded yet), or None if it states none."""
    import imageio_ffmpeg
    try:
        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin",
                                "-i", str(path)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        raise MediaError(f"{path}: ffmpeg took over a minute to read its header") from None
    sizes = [(int(match[1]), int(match[2]))
             for line in probe.stderr.decode(errors="replace").splitlines()
             if line.lstrip().startswith("Stream ") and " Video: " in line
             and (match := re.search(r" ([0-9]+)x([0-9]+)[, ]", line))]
    return max(sizes, key=lambda s: s[0] * s[1], default=None)


# The first box of an ISO media file (MP4, M4V, 3GP; QuickTime .mov may start without ftyp).
_ISO_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
# Top-level boxes looked at: a file has a few, a fragmented one two per fragment (an hour in
# 1 s fragments: 7200); past this many the check stops (ffmpeg's errors remain).
_ISO_MAX_BOXES = 100_000


def _mp4_cut(path: Path) -> str | None:
    """Why an ISO media file (MP4, MOV) is cut short: a top-level box that its header says
    ends past the end of the file; None if whole or not such a file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(8)[4:8] not in _ISO_FIRST_BOXES:
            return None
        pos = 0
        for _ in range(_ISO_MAX_BOXES):
            if pos + 8 > size:
                break
            f.seek(pos)
            length, kind = struct.unpack(">I4s", f.read(8))
            if length == 1:  # a 64-bit size follows
                header = f.read(8)
                length = struct.unpack(">Q", header)[0] if len(header) == 8 else 0
            if length == 0:  # the box runs to the end of the file
                return None
            if length < 8:
                return f"a box of {length} bytes at byte {pos}"
            if pos + length > size:
                name = kind.decode("ascii") if all(32 <= b < 127 for b in kind) else kind.hex()
                return f"its '{name}' box ends at byte {pos + length}, the file at {size}"
            pos += length
    return None


def _ffmpeg_error(log: bytes, status: int) -> str:
    """ffmpeg's first complaint (cut short), or its exit status."""
    lines = [line.strip() for line in log.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return f"exit status {status}" if status else "a partial frame at the end"
    text = re.sub(r"^\[(\S+) @ 0x[0-9a-f]+\]\s*", r"\1: ", lines[0])  # "[h264 @ 0x5e..]"
    return cut(text, 160)


def _streams_without_video(ffmpeg_log: str) -> str | None:
    """The kinds of stream ffmpeg found in an input that has streams but no video one
    ("audio"), from its log; None when it has a video stream or none was listed."""
    kinds = re.findall(r"^\s*Stream #0:\d+\S*: (\w+):", ffmpeg_log, re.MULTILINE)
    if not kinds or "Video" in kinds:
        return None
    return ", ".join(sorted({kind.lower() for kind in kinds}))


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
