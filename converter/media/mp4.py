"""H.264 .mp4 output through imageio-ffmpeg's ffmpeg, with the driving video's audio."""
from __future__ import annotations

import subprocess
import tempfile
from fractions import Fraction

from .errors import MediaError
from .writer import FrameWriter


class MP4Writer(FrameWriter):
    """H.264 (libx264, yuv420p) through imageio-ffmpeg's ffmpeg, fed raw RGB on a pipe.

    With `audio_from`, the video is encoded first and the audio of `audio_from` muxed in at
    the end, cut to the video's exact duration (ffmpeg's -shortest drops final frames).
    """
    kind = "mp4"
    CRF = 18

    def __init__(self, out, fps, audio_from=None, force: bool = False):
        super().__init__(out, fps, force)
        self.audio_from = audio_from
        self.rate = Fraction(self.fps or 25).limit_denominator(1001)
        self.video = self.tmp if audio_from is None else \
            self.tmp.with_name(self.tmp.name[:-len(self.out.suffix) or None] + ".video.mp4")
        self.proc = None
        self.size = None
        self.log = tempfile.TemporaryFile()

    def _ffmpeg(self):
        import imageio_ffmpeg
        return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error"]

    def _start(self, h, w):
        cmd = self._ffmpeg() + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                                "-r", str(self.rate), "-i", "-"]
        if h % 2 or w % 2:  # yuv420p needs even sizes: pad by one pixel
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.CRF),
                "-f", "mp4", str(self.video)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.size = (h, w)

    def _write(self, frame):
        if self.proc is None:
            self._start(*frame.shape[:2])
        elif frame.shape[:2] != self.size:
            raise MediaError(f"{self.out}: frame size {frame.shape[:2]} != {self.size}")
        try:
            self.proc.stdin.write(frame.tobytes())
        except OSError:  # ffmpeg is gone (BrokenPipeError) or the pipe failed
            self.proc.wait()
            raise MediaError(f"{self.out}: ffmpeg stopped ({self._ffmpeg_error()})") from None

    def _ffmpeg_error(self) -> str:
        self.log.seek(0)
        lines = [l.strip() for l in self.log.read().decode(errors="replace").splitlines()
                 if l.strip()]
        if lines:
            return lines[-1]
        status = self.proc.returncode if self.proc is not None else None
        if status is not None and status < 0:  # e.g. SIGXFSZ past a file size limit
            return f"killed by signal {-status}"
        return f"exit status {status}" if status else "no message"

    def _finish(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.wait() != 0:
            raise MediaError(f"{self.out}: ffmpeg failed ({self._ffmpeg_error()})")
        if self.audio_from is not None:
            seconds = Fraction(self.count) / self.rate
            cmd = self._ffmpeg() + ["-i", str(self.video), "-i", str(self.audio_from),
                                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                                    "-c:a", "aac", "-t", f"{float(seconds):.6f}",
                                    "-f", "mp4", str(self.tmp)]
            if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=self.log).returncode:
                raise MediaError(f"{self.out}: muxing the audio failed "
                                 f"({self._ffmpeg_error()})")
            self.video.unlink()
        self.log.close()

    def _cancel(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.video != self.tmp:
            self.video.unlink(missing_ok=True)
        self.log.close()
