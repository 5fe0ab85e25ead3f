"""`fomm-convert animate` and `fomm-convert reconstruct`: a bundle animating a picture.

Streaming: driving frames are decoded, resized, run through the models in batches and
encoded as they go, so memory stays flat whatever the video's length. The source is
encoded once (encode_source) and its keypoints detected once; each batch costs the
keypoint detector (per frame, at batch 1, as the original demo runs it),
process_kp_driving and generate.

Inputs are prepared as upstream demo.py prepares them (`fomm_convert.media`), so a bundle
fed the same files sees the same arrays as the original. Imports neither torch nor
tensorflow unless the tf or torch backend is asked for.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import click
import numpy as np

from .hull import convex_hull_area
from .media import MediaError, open_video, open_writer, output_kind, read_image, to_uint8

BUNDLE_BACKENDS = ("tflite", "tflite-fp16", "tflite-int8", "onnx", "savedmodel")
CHECKPOINT_BACKENDS = ("tf", "torch")
BACKEND_CHOICES = BUNDLE_BACKENDS + CHECKPOINT_BACKENDS
DEFAULT_FPS = 25.0
# One colour per keypoint index (Tableau 10), cycled when there are more keypoints.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]], np.uint8)


class AnimateError(click.ClickException):
    """A one-line user error."""


# ----------------------------------------------------------------------------- progress

class ProgressBar:
    """A small progress bar on stderr: frames, frames/s, elapsed time.

    On a terminal it redraws one line in place; elsewhere (logs, pipes) it prints a line
    every `log_every` seconds and a summary line at the end.
    """

    def __init__(self, label: str, total: int | None = None, approximate: bool = False,
                 stream=None, log_every: float = 10.0):
        self.label, self.total, self.approximate = label, total, approximate
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self.count = 0
        self.start = self.last = time.perf_counter()
        self.end = None  # set by close(): the numbers stop there
        self.drawn = False

    def elapsed(self) -> float:
        return (self.end or time.perf_counter()) - self.start

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.count / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        elapsed = self.elapsed()
        total = "" if self.total is None else f"/{'~' if self.approximate else ''}{self.total}"
        bar = ""
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "[" + "#" * int(done * 20) + "." * (20 - int(done * 20)) + f"] {done:4.0%} "
        return (f"{self.label} {bar}{self.count}{total} frames, {self.rate():.1f} frames/s, "
                f"{int(elapsed) // 60}:{int(elapsed) % 60:02d}")

    def update(self, n: int = 1):
        self.count += n
        now = time.perf_counter()
        if self.tty and now - self.last >= 0.1:
            self.stream.write("\r\033[K" + self.text())
            self.stream.flush()
            self.last, self.drawn = now, True
        elif not self.tty and now - self.last >= self.log_every:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self.last = now

    def close(self, ok: bool = True):
        """Finish the line: the summary when ok, else just end what was drawn."""
        self.end = time.perf_counter()
        if ok:
            prefix = "\r\033[K" if self.tty else ""
            self.stream.write(prefix + self.text() + "\n")
        elif self.drawn:
            self.stream.write("\n")
        self.stream.flush()


class _progress:
    """A ProgressBar as a context: the summary line on success, a clean line end on error."""

    def __init__(self, *args):
        self.bar = ProgressBar(*args)

    def __enter__(self) -> ProgressBar:
        return self.bar

    def __exit__(self, kind, exc, tb):
        self.bar.close(ok=kind is None)
        return False


def _check_distinct(out, *inputs):
    """Refuse to write over an input (the output is renamed into place at the end)."""
    target = Path(out).resolve()
    for path in inputs:
        if path is not None and Path(path).resolve() == target:
            raise MediaError(f"{out}: is also an input; choose another output")


# ----------------------------------------------------------------------------- the loop

@dataclass
class Source:
    """Everything the source contributes, computed once: the image (H, W, 3), its
    keypoints (batch 1) and its encoding for `generate`."""
    image: np.ndarray
    kp: dict
    encoded: dict

    @classmethod
    def prepare(cls, backend, image: np.ndarray) -> "Source":
        batch = np.array(image, np.float32)[None]  # a copy: the caller's frame is not kept
        return cls(batch[0], backend.kp_detector(batch), backend.encode_source(batch))


@dataclass
class Batch:
    """One batch of the animation: driving frames (B, H, W, 3), their raw keypoints and the
    generated frames (B, H, W, 3), floats in [0, 1]."""
    driving: np.ndarray
    kp_driving: dict
    prediction: np.ndarray


def detect(backend, frame: np.ndarray) -> dict:
    """Keypoints of one (H, W, 3) frame, at batch 1 as the original demo runs the detector."""
    return backend.kp_detector(np.asarray(frame, np.float32)[None])


def stack_kp(kps: list[dict]) -> dict:
    return {k: np.concatenate([kp[k] for kp in kps]) for k in kps[0]}


def animate_frames(backend, source: Source, frames, *, relative: bool, adapt_scale: bool,
                   batch_size: int = 4, kp_initial: dict | None = None, keypoints=None):
    """Yield a `Batch` per `batch_size` driving frames pulled from the iterable `frames`.

    kp_initial: the driving keypoints motion is measured from (default: the first frame's,
    as the original); keypoints: the frames' keypoints when already known (an iterable in
    the same order), so the detector is not run again. Holds at most one batch of frames.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    frames = iter(frames)
    known = iter(keypoints) if keypoints is not None else None
    while True:
        chunk = list(islice(frames, batch_size))
        if not chunk:
            return
        driving = np.stack(chunk).astype(np.float32, copy=False)
        del chunk  # the caller's frames are released; only the stacked copy stays
        if known is not None:
            kps = [next(known, None) for _ in range(len(driving))]
            if any(kp is None for kp in kps):
                raise MediaError("the video has more frames than on the first pass")
            kp_driving = stack_kp(kps)
        else:
            kp_driving = stack_kp([detect(backend, f) for f in driving])
        if kp_initial is None:
            kp_initial = {k: v[:1] for k, v in kp_driving.items()}
        norm = backend.process_kp_driving(kp_driving, kp_initial, source.kp,
                                          use_relative_movement=relative,
                                          use_relative_jacobian=relative,
                                          adapt_movement_scale=adapt_scale)
        prediction = backend.generate(source.encoded, norm, source.kp)
        yield Batch(driving, kp_driving, np.asarray(prediction, np.float32))


def normalised_kp(value: np.ndarray) -> np.ndarray | None:
    """(K, 2) keypoints minus their mean, over the square root of their convex-hull area,
    as the original's find_best_frame normalises landmarks; None when the hull is flat."""
    value = np.asarray(value, np.float64)
    area = convex_hull_area(value)
    if area <= 0:
        return None
    return (value - value.mean(axis=0, keepdims=True)) / np.sqrt(area)


def kp_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return float("inf")
    return float(((a - b) ** 2).sum())


def find_best_frame(backend, source: Source, frames, progress=None) -> tuple[int, list[dict]]:
    """The index of the driving frame whose normalised keypoints are closest to the
    source's (the first such frame on ties), and every frame's keypoints (batch 1 each).

    Holds keypoints only, never frames.
    """
    target = normalised_kp(source.kp["value"][0])
    best, best_distance, keypoints = 0, float("inf"), []
    for frame in frames:  # (not enumerate: its reused tuple would keep the last frame alive)
        kp = detect(backend, frame)
        del frame
        index = len(keypoints)
        keypoints.append(kp)
        distance = kp_distance(target, normalised_kp(kp["value"][0]))
        if distance < best_distance:
            best, best_distance = index, distance
        if progress is not None:
            progress.update()
    return best, keypoints


# ----------------------------------------------------------------------------- drawing

def draw_keypoints(image: np.ndarray, kp_value: np.ndarray, radius: int | None = None) -> np.ndarray:
    """uint8 copy of an (H, W, 3) image with each of the (K, 2) keypoints ((x, y) in
    [-1, 1]) drawn as a disc in its palette colour (the original Visualizer's pixel
    convention: size * (kp + 1) / 2)."""
    out = to_uint8(image) if image.dtype != np.uint8 else image.copy()
    h, w = out.shape[:2]
    if radius is None:
        radius = max(1, round(5 * min(h, w) / 256))
    yy, xx = np.ogrid[:h, :w]
    for index, (x, y) in enumerate(np.asarray(kp_value, np.float64)):
        cx, cy = w * (x + 1) / 2, h * (y + 1) / 2
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2
        colour = PALETTE[index % len(PALETTE)]
        out[disc] = colour
        row, col = int(np.floor(cy)), int(np.floor(cx))
        if 0 <= row < h and 0 <= col < w:
            out[row, col] = colour
    return out


def visualize_batch(source_panel: np.ndarray, batch: Batch):
    """Side by side per frame: source with its keypoints | driving with its keypoints |
    result; (H, 3W, 3) uint8 each."""
    for i in range(len(batch.prediction)):
        yield np.concatenate([source_panel,
                              draw_keypoints(batch.driving[i], batch.kp_driving["value"][i]),
                              to_uint8(batch.prediction[i])], axis=1)


def output_frames(batch: Batch, source_panel=None):
    if source_panel is not None:
        yield from visualize_batch(source_panel, batch)
    else:
        for frame in batch.prediction:
            yield to_uint8(frame)


# ----------------------------------------------------------------------------- bundle

class Opened:
    """A verified bundle and the backend to run it with, loaded on first use (after the
    inputs and the output have been checked, so those errors come first and alone)."""

    def __init__(self, bundle, manifest: dict, spec, backend_name: str, load):
        self.bundle, self.manifest, self.spec = Path(bundle), manifest, spec
        self.backend_name = backend_name
        self.notices: list[str] = []
        self._load, self._backend = load, None

    @property
    def backend(self):
        if self._backend is None:
            self._backend = self._load()
        return self._backend

    @backend.setter
    def backend(self, value):
        self._backend = value


def open_bundle(bundle) -> tuple[dict, object]:
    """The manifest and spec of a bundle whose files match its manifest (sha256 only)."""
    from .bundle import BundleError, check_files, read_manifest
    from .spec import SpecError
    from .verify import bundle_spec
    bundle = Path(bundle)
    try:
        manifest = read_manifest(bundle)
    except BundleError as exc:
        raise AnimateError(str(exc)) from None
    problems = check_files(bundle, manifest)
    if problems:
        raise AnimateError(f"{bundle}: does not verify ({len(problems)} file problem(s): "
                           + "; ".join(problems) + ")")
    try:
        spec = bundle_spec(bundle, manifest)
    except (SpecError, KeyError) as exc:
        raise AnimateError(f"{bundle}: its manifest holds no usable spec ({exc})") from None
    return manifest, spec


def check_backend(bundle, manifest, name: str, checkpoint):
    """A bundle backend needs its format in the bundle and no checkpoint."""
    if name in BUNDLE_BACKENDS:
        if checkpoint:
            raise AnimateError(f"--checkpoint is for the tf and torch backends, not {name}")
        formats = manifest.get("formats", [])
        if name not in formats:
            raise AnimateError(f"{bundle}: has no {name} artifacts (it has: "
                               f"{', '.join(formats) or 'none'})")


def open_backend(bundle, manifest, spec, name: str, checkpoint, threads):
    """The named backend for this bundle: its artifacts, or (tf, torch) the checkpoint it
    was built from, checked against the manifest's weight hashes."""
    from .runtime import load_backend
    bundle = Path(bundle)
    check_backend(bundle, manifest, name, checkpoint)
    if name in BUNDLE_BACKENDS:
        try:
            return load_backend(name, spec=spec, bundle=bundle, threads=threads)
        except ImportError as exc:
            raise AnimateError(f"backend {name} needs a package that is not installed "
                               f"({exc})") from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise AnimateError(f"{bundle}: cannot load the {name} artifacts "
                               f"({_first_line(exc)})") from None
    from .bundle import BundleError
    from .checkpoint import CheckpointError, load_checkpoint, state_dict_sha256
    from .verify import find_checkpoint
    try:
        path = find_checkpoint(manifest, spec, checkpoint)
        ckpt = load_checkpoint(path)
    except (BundleError, CheckpointError, OSError) as exc:
        raise AnimateError(_first_line(exc)) from None
    weights = {net: state_dict_sha256(getattr(ckpt, net)) for net in ("kp_detector", "generator")}
    if weights != manifest["checkpoint"]["weights_sha256"]:
        raise AnimateError(f"{path}: its weights are not the ones this bundle was built from")
    try:
        return load_backend(name, spec=spec, checkpoint=ckpt, threads=threads)
    except (CheckpointError, ValueError) as exc:
        raise AnimateError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def prepare(bundle, backend_name, checkpoint, threads) -> Opened:
    """Check the bundle now (files, spec, that it has the backend's format); load the
    backend when it is first used."""
    manifest, spec = open_bundle(bundle)
    check_backend(bundle, manifest, backend_name, checkpoint)
    opened = Opened(bundle, manifest, spec, backend_name,
                    lambda: open_backend(bundle, manifest, spec, backend_name, checkpoint,
                                         threads))
    if manifest.get("synthetic"):
        opened.notices.append(f"note: {Path(bundle).name} holds synthetic weights (seeded "
                              f"random), not a trained model: the output is not meant to "
                              f"look like anything")
    return opened


# ----------------------------------------------------------------------------- jobs

def _frame_size(spec) -> tuple[int, int]:
    h, w, _ = spec.frame_shape
    return h, w


def run_animate(opened: Opened, source_path, driving_path, out, *, relative: bool,
                adapt_scale: bool, batch_size: int = 4, best_frame: bool = False,
                visualize: bool = False, stream=None) -> dict:
    """Animate the source with the driving video into `out`; returns a summary.

    best_frame: the original animates forward from the best frame i to the end and
    backward from i to the start, each relative to frame i, and joins them (the backward
    part reversed, the duplicate frame i dropped). Every generated frame depends only on
    its own keypoints, the source and frame i's keypoints, so that join is every frame in
    video order measured from frame i: a keypoint pass finds i (keypoints kept, frames
    not), then one forward pass renders (tests/test_animate.py checks it against the
    literal join).
    """
    stream = stream if stream is not None else sys.stderr
    size = _frame_size(opened.spec)
    output_kind(out)  # an unknown output type fails before any work
    _check_distinct(out, source_path, driving_path)
    source_image = read_image(source_path, size)
    video = open_video(driving_path)
    fps = video.fps or DEFAULT_FPS
    summary = {"frames": 0, "fps": fps, "best_frame": None, "audio": False}
    audio = video.path if (video.has_audio and output_kind(out) == "mp4") else None
    # Opened before any work, so an unwritable output fails first; removed on any failure.
    with open_writer(out, fps, audio_from=audio) as writer:
        backend = opened.backend
        source = Source.prepare(backend, source_image)
        panel = draw_keypoints(source.image, source.kp["value"][0]) if visualize else None
        kp_initial = keypoints = None
        if best_frame:
            with _progress("best frame", video.frame_count, True, stream) as progress:
                index, keypoints = find_best_frame(backend, source, video.frames(size),
                                                   progress)
            kp_initial, summary["best_frame"] = keypoints[index], index
        total = len(keypoints) if keypoints else video.frame_count
        with _progress("animate", total, keypoints is None, stream) as progress:
            for batch in animate_frames(backend, source, video.frames(size), relative=relative,
                                        adapt_scale=adapt_scale, batch_size=batch_size,
                                        kp_initial=kp_initial, keypoints=keypoints):
                for frame in output_frames(batch, panel):
                    writer.write(frame)
                progress.update(len(batch.prediction))
        summary["frames"] = writer.count
    summary.update(audio=audio is not None, frames_per_second=progress.rate())
    return summary


@dataclass
class Reconstruction:
    l1: float
    per_frame: list
    frames: int


def reconstruct_frames(backend, frames, *, batch_size: int = 4, source=None, on_batch=None):
    """The original's reconstruction: the first frame (or `source`) animated with absolute
    keypoints (no relative motion, no scale adaptation) by every frame; returns the mean
    over frames of each frame's mean absolute error against the real frame.

    on_batch(batch) sees each Batch (to write or draw it).
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise MediaError("the video has no frames")
    source = Source.prepare(backend, first if source is None else source)
    frames, first = _prepend([first], frames), None
    per_frame = []
    for batch in animate_frames(backend, source, frames, relative=False, adapt_scale=False,
                                batch_size=batch_size):
        errors = np.abs(batch.prediction.astype(np.float64) - batch.driving).mean(axis=(1, 2, 3))
        per_frame.extend(float(e) for e in errors)
        if on_batch is not None:
            on_batch(batch, source)
    return Reconstruction(float(np.mean(per_frame)), per_frame, len(per_frame))


def _prepend(holder: list, rest):
    """holder's one item, then rest; unlike itertools.chain, it does not keep the item
    alive until the end."""
    yield holder.pop()
    yield from rest


def run_reconstruct(opened: Opened, video_path, out=None, *, batch_size: int = 4,
                    visualize: bool = False, stream=None) -> Reconstruction:
    stream = stream if stream is not None else sys.stderr
    size = _frame_size(opened.spec)
    if out is not None:
        output_kind(out)
        _check_distinct(out, video_path)
    video = open_video(video_path)
    fps = video.fps or DEFAULT_FPS
    audio = video.path if (out is not None and video.has_audio
                           and output_kind(out) == "mp4") else None
    writer = open_writer(out, fps, audio_from=audio) if out is not None else None
    try:
        backend = opened.backend
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    progress = ProgressBar("reconstruct", video.frame_count, True, stream)
    panel = {}

    def on_batch(batch, source):
        if writer is not None:
            if visualize and "image" not in panel:
                panel["image"] = draw_keypoints(source.image, source.kp["value"][0])
            for frame in output_frames(batch, panel.get("image")):
                writer.write(frame)
        progress.update(len(batch.prediction))

    try:
        result = reconstruct_frames(backend, video.frames(size),
                                    batch_size=batch_size, on_batch=on_batch)
        if writer is not None:
            writer.commit()
    except BaseException:
        progress.close(ok=False)
        if writer is not None:
            writer.abort()
        raise
    progress.close()
    return result


def check_writable(path):
    """Fail now, not after the work, if a file cannot be written at `path`."""
    path = Path(path)
    if path.is_dir():
        raise AnimateError(f"{path}: is a directory")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    try:
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise AnimateError(f"{path}: cannot write there ({exc.strerror})") from None


def write_json(path, data: dict):
    """Atomically: a temporary file beside it, renamed into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise AnimateError(f"{path}: cannot write it ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- commands

def _terminate_cleanly():
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed."""
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    except ValueError:  # not the main thread (e.g. inside a test runner's worker)
        pass


def _common_options(f):
    options = [
        click.option("--bundle", required=True, type=click.Path(file_okay=False),
                     help="Release bundle directory (its files are checked against the "
                          "manifest's sha256 first)."),
        click.option("--backend", default="tflite", show_default=True,
                     type=click.Choice(BACKEND_CHOICES),
                     help="Runtime: the bundle's artifacts, or tf/torch from the checkpoint."),
        click.option("--checkpoint", type=click.Path(dir_okay=False),
                     help="For --backend tf/torch: the checkpoint the bundle was built from "
                          "(default: the manifest's)."),
        click.option("--batch-size", default=4, show_default=True, type=click.IntRange(1),
                     help="Frames per generator call (memory grows with it, not with the "
                          "video)."),
        click.option("--threads", type=click.IntRange(1), default=None,
                     help="Threads for the runtime (default: its own choice)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _run(job):
    """Run a job, turning every expected failure into a one-line error."""
    from .bundle import BundleError
    _terminate_cleanly()
    try:
        return job()
    except (MediaError, BundleError) as exc:
        raise AnimateError(_first_line(exc)) from None


@click.command("animate")
@_common_options
@click.option("--source", "source", required=True, type=click.Path(dir_okay=False),
              help="Source image (PNG/JPEG; grey, RGB or RGBA).")
@click.option("--driving", required=True, type=click.Path(dir_okay=False),
              help="Driving video (anything ffmpeg reads).")
@click.option("--out", required=True, type=click.Path(),
              help="Output: .mp4 (H.264, the driving video's fps and audio), .gif, or a "
                   "directory of numbered PNGs.")
@click.option("--relative/--absolute", default=None,
              help="Relative keypoint motion (default: the bundle spec's normalization).")
@click.option("--adapt-scale/--no-adapt-scale", default=None,
              help="Adapt motion to the source's keypoint spread (default: the spec's).")
@click.option("--best-frame", is_flag=True,
              help="Measure motion from the driving frame whose keypoints best match the "
                   "source's (a first pass over the video finds it).")
@click.option("--visualize", is_flag=True,
              help="Write source | driving (with keypoints) | result side by side.")
def animate_command(bundle, backend, checkpoint, batch_size, threads, source, driving, out,
                    relative, adapt_scale, best_frame, visualize):
    """Animate a source image with a driving video, streaming, on any backend."""
    def job():
        opened = prepare(bundle, backend, checkpoint, threads)
        for notice in opened.notices:
            click.echo(notice, err=True)
        rel = opened.spec.relative if relative is None else relative
        adapt = opened.spec.adapt_scale if adapt_scale is None else adapt_scale
        summary = run_animate(opened, source, driving, out, relative=rel, adapt_scale=adapt,
                              batch_size=batch_size, best_frame=best_frame,
                              visualize=visualize)
        best = ("" if summary["best_frame"] is None
                else f", motion from frame {summary['best_frame']}")
        click.echo(f"{out}: {summary['frames']} frames at {summary['fps']:g} fps"
                   f"{', with audio' if summary['audio'] else ''}{best}; backend {backend}, "
                   f"{'relative' if rel else 'absolute'}"
                   f"{', adapt-scale' if adapt else ''}; "
                   f"{summary['frames_per_second']:.1f} frames/s")
    _run(job)


@click.command("reconstruct")
@_common_options
@click.option("--video", required=True, type=click.Path(dir_okay=False),
              help="The video to reconstruct from its first frame.")
@click.option("--out", type=click.Path(), default=None,
              help="Also write the reconstruction (.mp4, .gif or a PNG directory).")
@click.option("--visualize", is_flag=True,
              help="With --out: source | driving (with keypoints) | result side by side.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the L1 error (mean and per frame) as JSON.")
def reconstruct_command(bundle, backend, checkpoint, batch_size, threads, video, out,
                        visualize, json_path):
    """Reconstruct a video from its first frame (absolute keypoints, as the original's
    reconstruction mode) and report the mean L1 error against the real frames."""
    def job():
        opened = prepare(bundle, backend, checkpoint, threads)
        if json_path:
            check_writable(json_path)
        for notice in opened.notices:
            click.echo(notice, err=True)
        result = run_reconstruct(opened, video, out, batch_size=batch_size,
                                 visualize=visualize)
        if json_path:
            write_json(json_path, {"l1": result.l1, "frames": result.frames,
                                   "l1_per_frame": result.per_frame, "video": str(video),
                                   "backend": backend, "bundle": str(bundle),
                                   "bundle_version": opened.manifest.get("version")})
        click.echo(f"reconstruction L1: {result.l1:.6f} over {result.frames} frames "
                   f"(backend {backend}){f'; wrote {out}' if out else ''}")
    _run(job)
