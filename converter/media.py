"""Images and videos in and out, the way the original demo reads them, in numpy and imageio.

No torch, tensorflow, scipy or scikit-image here: this module is part of the lite runtime.

- `read_image` and `resize_like_demo` reproduce `skimage.transform.resize(img, (H, W))[..., :3]`
  (scikit-image 0.26 defaults) on `imageio.imread(path)`, which is how upstream `demo.py`
  prepares its source image and every driving frame.
- `open_video` streams a video's frames through imageio-ffmpeg, one at a time.
- `open_writer` writes .mp4 (H.264), .gif or a directory of numbered lossless PNGs, frame
  by frame, into a temporary file or directory beside the target that is renamed into place
  only when every frame is written: a failure never leaves a half-written output.
"""
from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4": "mp4", ".gif": "gif"}
FRAME_NAME = re.compile(r"^frame_\d{6}\.png$")
# scipy.ndimage.gaussian_filter skips axes whose sigma is at most this.
_SIGMA_EPS = 1e-15
_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default


class MediaError(RuntimeError):
    """An input cannot be read or an output cannot be written (one-line message)."""


# ----------------------------------------------------------------------------- images

def as_float(image: np.ndarray) -> np.ndarray:
    """skimage's img_as_float for the dtypes images come in: unsigned integers scaled by
    their maximum, bool to 0/1, float32 kept, other floats as float64."""
    image = np.asarray(image)
    if image.dtype == np.bool_:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.unsignedinteger):
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    if image.dtype == np.float32 or image.dtype == np.float64:
        return image
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise MediaError(f"unsupported image dtype {image.dtype}")


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """scipy.ndimage's 'mirror' boundary (numpy.pad's 'reflect'): d c b | a b c d | c b a,
    repeated as often as needed."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * n - 2
    index = np.mod(index, period)
    return np.where(index >= n, period - index, index)


@functools.lru_cache(maxsize=16)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) linear map of one axis of skimage.transform.resize (order 1,
    mode 'reflect', anti-aliasing on when downsampling): the Gaussian of
    sigma = max(0, (n_in / n_out - 1) / 2) (truncated at 4 sigma), then scipy.ndimage.zoom's
    linear interpolation at grid_mode coordinates (o + 0.5) * n_in / n_out - 0.5, both with
    the mirror boundary."""
    factor = n_in / n_out
    sigma = max(0.0, (factor - 1) / 2)
    if sigma > _SIGMA_EPS:
        radius = int(_TRUNCATE * sigma + 0.5)
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 / sigma ** 2 * taps.astype(np.float64) ** 2)
        kernel /= kernel.sum()
    else:
        taps, kernel = np.zeros(1, np.int64), np.ones(1)
    coord = (np.arange(n_out) + 0.5) * factor - 0.5
    left = np.floor(coord)
    frac = coord - left
    left = left.astype(np.int64)
    # Interpolation rows: positions (n_out, 2) in the filtered signal and their weights.
    positions = _mirror(np.stack([left, left + 1], 1), n_in)
    weights = np.stack([1 - frac, frac], 1)
    # Each filtered sample is a kernel-weighted sum of mirrored input samples.
    columns = _mirror(positions[..., None] + taps, n_in)           # (n_out, 2, taps)
    values = weights[..., None] * kernel                            # (n_out, 2, taps)
    matrix = np.zeros((n_out, n_in))
    rows = np.broadcast_to(np.arange(n_out)[:, None, None], columns.shape)
    np.add.at(matrix, (rows.ravel(), columns.ravel()), values.ravel())
    matrix.flags.writeable = False  # cached and shared
    return matrix


@functools.lru_cache(maxsize=16)
def resize_taps(n_in: int, n_out: int):
    """resize_matrix in banded form: column indices and weights (n_out, T), zero-padded."""
    matrix = resize_matrix(n_in, n_out)
    nonzero = matrix != 0
    taps = max(int(nonzero.sum(1).max()), 1)
    # Stable sort puts each row's nonzero columns first, in increasing order.
    order = np.argsort(~nonzero, axis=1, kind="stable")[:, :taps]
    weights = np.take_along_axis(matrix, order, 1)
    return order, weights


def _apply(data: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """sum_t weights[o, t] * data[index[o, t]] along `axis`."""
    shape = [1] * data.ndim
    shape[axis] = len(index)
    out = np.take(data, index[:, 0], axis=axis) * weights[:, 0].reshape(shape)
    for t in range(1, index.shape[1]):
        out += np.take(data, index[:, t], axis=axis) * weights[:, t].reshape(shape)
    return out


def resize_like_demo(image: np.ndarray, shape) -> np.ndarray:
    """`skimage.transform.resize(image, shape)` with its defaults, in numpy.

    image (H, W) or (H, W, C), any unsigned integer, bool or float dtype; shape (H', W').
    Returns float64 (float32 for float32 input, as skimage does), channels kept, clipped to
    the input's range.
    """
    image = as_float(image)
    out_dtype = np.float32 if image.dtype == np.float32 else np.float64
    flat = image.ndim == 2
    data = image[..., None] if flat else image
    if data.ndim != 3:
        raise MediaError(f"expected an (H, W[, C]) image, got shape {image.shape}")
    h, w = data.shape[:2]
    out_h, out_w = (int(v) for v in shape)
    if out_h < 1 or out_w < 1:
        raise MediaError(f"cannot resize to {shape}")
    if (out_h, out_w) == (h, w):
        out = data.astype(out_dtype)  # zoom by exactly 1 and no filtering: the identity
    else:
        data = data.astype(np.float64, copy=False)
        # Banded weighted sums (a few taps per output row), no BLAS: the matrices are
        # sparse, and BLAS threads fight the model runtime's for the cores.
        out = _apply(_apply(data, *resize_taps(h, out_h), axis=0), *resize_taps(w, out_w), axis=1)
        out = np.clip(out, data.min(), data.max()).astype(out_dtype)
    return out[..., 0] if flat else out


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (H, W, 3): grey replicated, grey+alpha and RGBA lose their alpha."""
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[-1]
    if channels in (1, 2):
        return np.repeat(image[..., :1], 3, axis=-1)
    if channels in (3, 4):
        return image[..., :3]
    raise MediaError(f"an image with {channels} channels is not grey, RGB or RGBA")


def load_image_array(path) -> np.ndarray:
    """The image as imageio.imread gives it (first frame if several); one-line errors."""
    import imageio.v3 as iio
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not an image")
    try:
        # Pillow only: PNG, JPEG and the other still formats, not a video's first frame.
        mode = iio.immeta(path, plugin="pillow").get("mode")
        if mode == "CMYK":
            return iio.imread(path, index=0, plugin="pillow", mode="RGB")
        return iio.imread(path, index=0, plugin="pillow")
    except Exception as exc:  # imageio raises many types for "not an image"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MediaError(f"{path}: not a readable image ({reason})") from None


def read_image(path, size=None) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from a grey, grey+alpha, RGB or RGBA PNG/JPEG.

    With size=(H, W) the image is resized as upstream demo.py does:
    `resize(imageio.imread(path), size)[..., :3]` (alpha dropped after resizing).
    """
    image = load_image_array(path)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise MediaError(f"{path}: not a still image (shape {image.shape})")
    if size is not None:
        image = resize_like_demo(image, size)
    return to_rgb(as_float(image)).astype(np.float32)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 as skimage's img_as_ubyte does (rint(x * 255)), clipped."""
    return np.clip(np.rint(np.asarray(frame, np.float64) * 255), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- video in

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


# ----------------------------------------------------------------------------- outputs

def output_kind(out) -> str:
    """'mp4', 'gif' or 'png' (a directory of frames) from the output path."""
    suffix = Path(out).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VIDEO_SUFFIXES[suffix]
    if suffix in ("", ".d", ".frames") or Path(out).is_dir():
        return "png"
    raise MediaError(f"{out}: unknown output type '{suffix}' (use .mp4, .gif or a directory "
                     f"for PNG frames)")


class _Writer:
    """Writes into a temporary sibling; commit() renames it into place, abort() removes it.

    As a context manager: commit on success, abort on any exception.
    """
    kind = ""

    def __init__(self, out, fps: float):
        self.out = Path(out)
        self.fps = float(fps)
        self.count = 0
        parent = self.out.parent
        # Folders made for the output are removed again if it is never written.
        self.made = [p for p in (parent, *parent.parents) if not p.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._remove_made()
            raise MediaError(f"{self.out}: cannot create its folder ({exc.strerror})") from None
        _remove_stale_partials(self.out)
        self.tmp = parent / f".{self.out.name}.partial-{os.getpid()}{self.out.suffix}"
        try:
            self._create_tmp()  # an unwritable place fails now, before any work
        except OSError as exc:
            self._remove_made()
            raise MediaError(f"{self.out}: cannot write there ({exc.strerror})") from None

    def _create_tmp(self):
        self.tmp.touch()

    def _remove_made(self):
        for path in self.made:  # innermost first
            try:
                path.rmdir()
            except OSError:
                break

    def write(self, frame: np.ndarray):
        frame = np.ascontiguousarray(frame if frame.dtype == np.uint8 else to_uint8(frame))
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise MediaError(f"{self.out}: frames must be (H, W, 3), got {frame.shape}")
        self._write(frame)
        self.count += 1

    def commit(self):
        if self.count == 0:
            raise MediaError(f"{self.out}: no frames to write")
        self._finish()
        self._move_into_place()

    def _move_into_place(self):
        try:
            os.replace(self.tmp, self.out)
        except OSError as exc:
            raise MediaError(f"{self.out}: cannot write it ({exc.strerror})") from None

    def abort(self):
        try:
            self._cancel()
        finally:
            if self.tmp.is_dir():
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                self.tmp.unlink(missing_ok=True)
            self._remove_made()

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
        return False

    def _write(self, frame):
        raise NotImplementedError

    def _finish(self):
        pass

    def _cancel(self):
        pass


def _remove_stale_partials(out: Path):
    """Temporary outputs of killed runs (their process is gone) beside `out`."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.partial-(\d+)")
    for path in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
        match = pattern.match(path.name)
        if match and not _pid_alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class MP4Writer(_Writer):
    """H.264 (libx264, yuv420p) through imageio-ffmpeg's ffmpeg, fed raw RGB on a pipe.

    With `audio_from`, the video is encoded first and the audio of `audio_from` muxed in at
    the end, cut to the video's exact duration (ffmpeg's -shortest drops final frames).
    """
    kind = "mp4"
    CRF = 18

    def __init__(self, out, fps, audio_from=None):
        super().__init__(out, fps)
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
        return lines[-1] if lines else "no message"

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


class GIFWriter(_Writer):
    """An animated GIF streamed frame by frame: imageio encodes each frame as a one-frame
    GIF (its own adaptive palette), and its image block is appended with that palette as a
    local colour table. Frame delays are rounded so that they add up to the true time."""
    kind = "gif"

    def __init__(self, out, fps):
        self.file = None
        self.size = None
        super().__init__(out, fps)

    def _create_tmp(self):
        self.file = open(self.tmp, "wb")

    def _write(self, frame):
        import imageio.v3 as iio
        data = iio.imwrite("<bytes>", frame, extension=".gif")
        table, descriptor, image = _gif_single_frame(data)
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (h, w)
            # Header, logical screen without a global colour table, loop forever.
            self.file.write(b"GIF89a" + _u16(w) + _u16(h) + b"\x00\x00\x00")
            self.file.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")
        elif (h, w) != self.size:
            raise MediaError(f"{self.out}: frame size {(h, w)} != {self.size}")
        fps = self.fps or 25
        delay = round(100 * (self.count + 1) / fps) - round(100 * self.count / fps)
        # Graphic control: disposal 1 (leave in place), delay in 1/100 s.
        self.file.write(b"\x21\xf9\x04\x04" + _u16(max(delay, 1)) + b"\x00\x00")
        bits = max(int(np.ceil(np.log2(len(table) // 3))) - 1, 0)
        flags = (descriptor[9] & 0x40) | 0x80 | bits  # keep interlacing, add a local table
        self.file.write(descriptor[:9] + bytes([flags]))
        self.file.write(table.ljust(3 * 2 ** (bits + 1), b"\x00"))
        self.file.write(image)

    def _finish(self):
        self.file.write(b"\x3b")
        self.file.close()

    def _cancel(self):
        if self.file is not None and not self.file.closed:
            self.file.close()


def _u16(value: int) -> bytes:
    return int(value).to_bytes(2, "little")


def _gif_single_frame(data: bytes):
    """(colour table, image descriptor, LZW code size + data sub-blocks) of a GIF's first
    image; the table is the image's local one if it has one, else the global one."""
    if data[:3] != b"GIF":
        raise MediaError("the GIF encoder returned something else")
    flags = data[10]
    pos = 13
    table = b""
    if flags & 0x80:
        size = 3 * 2 ** ((flags & 7) + 1)
        table = data[pos:pos + size]
        pos += size
    while pos < len(data):
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        elif block == 0x2C:
            descriptor = data[pos:pos + 10]
            local = descriptor[9]
            pos += 10
            if local & 0x80:
                size = 3 * 2 ** ((local & 7) + 1)
                table = data[pos:pos + size]
                pos += size
            start = pos
            pos += 1  # LZW minimum code size
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
            return table, descriptor, data[start:pos]
        else:
            break
    raise MediaError("the GIF encoder wrote no image")


class PNGDirWriter(_Writer):
    """A directory of lossless numbered PNGs, frame_000000.png, frame_000001.png, ..."""
    kind = "png"

    def __init__(self, out, fps):
        out = Path(out)
        if out.exists():
            if not out.is_dir():
                raise MediaError(f"{out}: exists and is not a directory")
            others = [p.name for p in out.iterdir() if not FRAME_NAME.match(p.name)]
            if others:
                raise MediaError(f"{out}: exists and holds other files than frames "
                                 f"(e.g. {others[0]}); choose an empty or new directory")
        super().__init__(out, fps)

    def _create_tmp(self):
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()

    def _write(self, frame):
        import imageio.v3 as iio
        iio.imwrite(self.tmp / f"frame_{self.count:06d}.png", frame)

    def _move_into_place(self):
        old = None
        try:
            if self.out.exists():
                old = self.out.parent / f".{self.out.name}.replaced-{os.getpid()}"
                os.rename(self.out, old)
            os.rename(self.tmp, self.out)
        except OSError as exc:
            if old is not None and not self.out.exists():
                os.rename(old, self.out)
            raise MediaError(f"{self.out}: cannot write it ({exc.strerror})") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def open_writer(out, fps: float, audio_from=None) -> _Writer:
    """A frame writer chosen by the output's suffix: .mp4, .gif, else a PNG directory.

    audio_from: a video whose first audio stream is muxed into an .mp4 output.
    """
    kind = output_kind(out)
    if Path(out).is_dir() and kind != "png":
        raise MediaError(f"{out}: is a directory")
    if kind == "mp4":
        return MP4Writer(out, fps, audio_from)
    if kind == "gif":
        return GIFWriter(out, fps)
    return PNGDirWriter(out, fps)
