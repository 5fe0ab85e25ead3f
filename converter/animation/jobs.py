"""The `animate` and `reconstruct` jobs: a checked bundle, the inputs prepared as upstream
demo.py prepares them (`fomm_convert.media`), the streaming loop with decoding ahead of
it and drawing + encoding behind it in threads of their own (stages), the output written
whole or not at all.

Every input and the output are checked before the backend is loaded, so those errors come
first and alone (the runtimes log when they start).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ..bundle.manifest import BundleError
from ..bundle.open import OpenedBundle, check_backend_name, open_backend, open_bundle
from ..errors import FommError, one_line, warn
from ..families import family_of
from ..formats import FORMAT_OF_BACKEND
from ..io import write_json
from ..media import MediaError, open_video, open_writer, output_kind, read_image
from ..media.fit import CROPS, check_fit
from .best_frame import find_best_frame
from .drawing import output_frames, source_panel
from .loop import Reconstruction, Source, animate_frames, reconstruct_frames
from .options import family_options
from .progress import ProgressBar, TimedBackend, progress
from .stages import Stages

DEFAULT_FPS = 25.0  # for videos whose header gives none
# The pipeline's bounds (memory: at most this many decoded frames wait for inference, and
# this many batches, frames and results, for drawing and encoding, whatever the length).
FRAMES_AHEAD = 8
BATCHES_BEHIND = 2


class AnimateError(FommError):
    """A job's own refusal (e.g. a report that cannot be written)."""


class Prepared:
    """A spec's models and the backend to run them with, loaded on first use (after the
    inputs and the output have been checked): a verified bundle's, or (bundle None) a
    checkpoint's on a checkpoint backend."""

    def __init__(self, bundle, backend_name: str, checkpoint=None, threads=None, spec=None):
        self.bundle = bundle  # a bundle.open.OpenedBundle, or None
        self.backend_name = backend_name
        self.notices: list[str] = []
        self._spec = bundle.spec if bundle is not None else spec
        self._checkpoint, self._threads, self._backend = checkpoint, threads, None

    @property
    def spec(self):
        return self._spec

    @property
    def manifest(self) -> dict:
        return self.bundle.manifest if self.bundle is not None else {}

    def origin(self) -> dict:
        """What the models come from, for a report."""
        if self.bundle is None:
            return {"config": self.spec.name, "checkpoint": str(self._checkpoint.path)}
        return {"bundle": str(self.bundle.path),
                "bundle_version": self.manifest.get("version")}

    @property
    def batch_size(self) -> int:
        """Frames per generate call when none is asked for: 1 on TFLite, whose XNNPACK
        runs vox-256 ~12% faster per frame at batch 1 than at 4, with the same bytes out
        (tests/test_pipeline_animate.py); 4 elsewhere (onnxruntime and torch run a batch
        of 4 faster per frame)."""
        return 1 if self.backend_name.startswith("tflite") else 4

    @property
    def backend(self):
        if self._backend is None and self.bundle is None:
            self._backend = open_backend(self.backend_name, self.spec,
                                         checkpoint=self._checkpoint, threads=self._threads)
        elif self._backend is None:
            # The runtime's own backend: the API's Bundle.backend checks a caller's arrays,
            # which the loop makes itself.
            self._backend = OpenedBundle.backend(self.bundle, self.backend_name,
                                                 self._checkpoint, self._threads)
        return self._backend

    @backend.setter
    def backend(self, value):
        self._backend = value


def prepare(bundle, backend_name: str, checkpoint=None, threads=None, *,
            config=None) -> Prepared:
    """Check the bundle now (files, spec, that it has the backend's format; an
    OpenedBundle's files were checked when it was opened); load the backend when it is
    first used. Without a bundle, `config` (a dataset name, a spec or an original config)
    and `checkpoint` on a checkpoint backend. An unknown backend is refused before the
    bundle is read; more threads than cores is a warning (they take turns: slower, not
    faster)."""
    check_backend_name(backend_name)
    if threads is not None and threads > (os.cpu_count() or 1):
        warn(f"--threads {threads}: more than the {os.cpu_count()} cores here; the threads "
             f"take turns on them (slower than {os.cpu_count()})")
    if (bundle is None) == (config is None):
        raise AnimateError("give either a bundle (--bundle) or a config with its "
                           "checkpoint (--dataset or --config, and --checkpoint)")
    if bundle is None:
        return prepare_checkpoint(config, backend_name, checkpoint, threads)
    opened = bundle if isinstance(bundle, OpenedBundle) else open_bundle(bundle)
    opened.check_backend(backend_name, checkpoint)
    prepared = Prepared(opened, backend_name, checkpoint, threads)
    if opened.synthetic:
        prepared.notices.append(synthetic_notice(opened.path.name))
    return prepared


def synthetic_notice(name: str) -> str:
    return (f"note: {name} holds synthetic weights (seeded random), not a trained model: "
            f"the output is not meant to look like anything")


def prepare_checkpoint(config, backend_name: str, checkpoint, threads=None) -> Prepared:
    """A config's models from a checkpoint on a checkpoint backend (tf, torch): the
    checkpoint is read (and checked) now, as a bundle is."""
    from ..checkpoint import Checkpoint, load_checkpoint
    from ..spec import load_spec
    if backend_name in FORMAT_OF_BACKEND:
        raise BundleError(f"backend {backend_name} runs a bundle's files: give --bundle, or "
                          f"a checkpoint backend (tf, torch) with --checkpoint")
    if checkpoint is None:
        raise BundleError(f"backend {backend_name} without a bundle needs --checkpoint")
    spec = load_spec(config)
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, family=spec.family)
    prepared = Prepared(None, backend_name, checkpoint, threads, spec=spec)
    if checkpoint.synthetic:
        prepared.notices.append(synthetic_notice(checkpoint.path.name))
    return prepared


def frame_size(spec) -> tuple[int, int]:
    """(H, W) the spec's models take: every input is resized to it."""
    return tuple(spec.frame_shape[:2])


def check_distinct(out, *inputs):
    """Refuse to write over an input (the output is renamed into place at the end)."""
    target = Path(out).resolve()
    for path in inputs:
        if path is not None and Path(path).resolve() == target:
            raise MediaError(f"{out}: is also an input; choose another output")


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


def write_report(path, data: dict):
    """A JSON report, atomically (its folder made if needed)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)
    except OSError as exc:
        raise AnimateError(f"{path}: cannot write it ({exc.strerror})") from None


def _audio_source(video, out):
    """The driving video, when its audio is to be muxed into the output (.mp4 only)."""
    return video.path if out is not None and video.has_audio and output_kind(out) == "mp4" \
        else None


def render(stages: Stages, batches, writer, panel, group: int, bar):
    """Each Batch from `batches` (pulled in this thread: inference) drawn (keypoints in
    colours of `group`) and written in a thread of its own, at most BATCHES_BEHIND
    waiting; the bar counts frames written."""
    def write(batch):
        for frame in output_frames(batch, panel, group):
            writer.write(frame)
        bar.update(len(batch.prediction))
    feed = stages.behind(write, BATCHES_BEHIND, "encode")
    for batch in batches:
        feed.put(batch)
        del batch
    feed.close()


def run_animate(prepared: Prepared, source_path, driving_path, out, *, mode,
                batch_size: int | None = None, best_frame: bool = False,
                visualize: bool = False, stream=None, force: bool = False,
                crop: str = "none", sources: dict | None = None) -> dict:
    """Animate the source with the driving video into `out` in the animation mode `mode`
    (the family's: animation_mode); returns a summary.

    sources: a cache that keeps the last source picture's Source (keypoints, encoding)
    from one call to the next, so a worker animating job after job encodes a picture
    once however many jobs share it (the_source).

    Decoding, inference and drawing + encoding run side by side (render); the summary's
    frames_per_second is end to end: from just after the backend is loaded (the source's
    preparation included) to the output written and closed; after a --best-frame scan it
    counts from the scan's end. inference_frames_per_second: the frames over the time in
    the model calls.

    best_frame: the original animates forward from the best frame i to the end and
    backward from i to the start, each relative to frame i, and joins them (the backward
    part reversed, the duplicate frame i dropped). Every generated frame depends only on
    its own keypoints, the source and frame i's keypoints, so that join is every frame in
    video order measured from frame i: a keypoint pass finds i (keypoints kept, frames
    not), then one forward pass renders (tests/test_animate.py checks it against the
    literal join).
    """
    stream = stream if stream is not None else sys.stderr
    batch_size = mode.frames_per_call(prepared.batch_size) if batch_size is None else batch_size
    size = frame_size(prepared.spec)
    output_kind(out)  # an unknown output type fails before any work
    check_distinct(out, source_path, driving_path)
    if crop not in CROPS:
        raise AnimateError(f"crop: '{crop}' is not one of {', '.join(CROPS)}")
    source_image = read_image(source_path, size, crop)
    video = open_video(driving_path)
    check_fit(driving_path, video.size[1], video.size[0], size, crop)
    fps = video.fps or DEFAULT_FPS
    summary = {"frames": 0, "fps": fps, "best_frame": None, "audio": False}
    audio = _audio_source(video, out)
    # Opened before any work, so an unwritable output fails first; removed on any failure.
    writer = open_writer(out, fps, audio_from=audio, force=force)
    try:
        backend = prepared.backend
        start = time.perf_counter()
        source = the_source(backend, source_image, sources)
        group = animation(prepared.spec).KEYPOINT_GROUP
        panel = source_panel(source, group) if visualize else None
        kp_initial = keypoints = None
        if best_frame:
            with progress("best frame", video.frame_count, True, stream, start=start) as bar, \
                    Stages() as stages:
                frames = stages.ahead(video.frames(size, crop), FRAMES_AHEAD, "decode")
                index, keypoints = find_best_frame(backend, source, frames, bar)
            kp_initial, summary["best_frame"] = keypoints[index], index
            start = time.perf_counter()
        total = len(keypoints) if keypoints else video.frame_count
        model = TimedBackend(backend)
        with progress("animate", total, keypoints is None, stream, start=start,
                      model=model) as bar:
            with Stages() as stages:
                frames = stages.ahead(video.frames(size, crop), FRAMES_AHEAD, "decode")
                batches = animate_frames(model, source, frames, mode=mode,
                                         batch_size=batch_size, kp_initial=kp_initial,
                                         keypoints=keypoints)
                render(stages, batches, writer, panel, group, bar)
            writer.commit()
    except BaseException:
        writer.abort()
        raise
    summary.update(frames=writer.count, audio=audio is not None,
                   frames_per_second=bar.rate(),
                   inference_frames_per_second=bar.inference_rate())
    return summary


def the_source(backend, image, cache: dict | None) -> Source:
    """Source.prepare(backend, image), or the Source `cache` holds for the same pixels
    (the cache keeps one: the last picture)."""
    if cache is None:
        return Source.prepare(backend, image)
    key = hashlib.sha256(image.tobytes()).hexdigest()
    if key not in cache:
        cache.clear()
        cache[key] = Source.prepare(backend, image)
    return cache[key]


def run_reconstruct(prepared: Prepared, video_path, out=None, *,
                    batch_size: int | None = None, visualize: bool = False,
                    stream=None, force: bool = False) -> Reconstruction:
    """The original's reconstruction of a video from its first frame (loop.reconstruct_frames),
    optionally written to `out`."""
    stream = stream if stream is not None else sys.stderr
    batch_size = prepared.batch_size if batch_size is None else batch_size
    size = frame_size(prepared.spec)
    if out is not None:
        output_kind(out)
        check_distinct(out, video_path)
    video = open_video(video_path)
    fps = video.fps or DEFAULT_FPS
    writer = open_writer(out, fps, audio_from=_audio_source(video, out), force=force) \
        if out is not None else None
    try:
        backend = prepared.backend
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    bar = ProgressBar("reconstruct", video.frame_count, True, stream)
    panel, group = {}, animation(prepared.spec).KEYPOINT_GROUP

    def on_batch(batch, source):
        if writer is not None:
            if visualize and "image" not in panel:
                panel["image"] = source_panel(source, group)
            for frame in output_frames(batch, panel.get("image"), group):
                writer.write(frame)
        bar.update(len(batch.prediction))

    try:
        result = reconstruct_frames(backend, video.frames(size),
                                    mode=animation(prepared.spec).reconstruction_mode(
                                        prepared.spec),
                                    batch_size=batch_size, on_batch=on_batch)
        if writer is not None:
            writer.commit()
    except BaseException:
        bar.close(ok=False)
        if writer is not None:
            writer.abort()
        raise
    bar.close()
    return result


def animation(spec):
    """The spec's model family's animation modes (its package's `animation` module)."""
    return family_of(spec).facet("animation")


def animation_mode(spec, **options):
    """The animation mode of a family's options (animation.options: FOMM relative,
    adapt_scale; TPSMM mode; None: the spec's default); a one-line AnimateError naming
    the family for an option it does not have or a value it does not take."""
    try:
        given = family_options(spec, options)
    except ValueError as exc:
        raise AnimateError(one_line(exc)) from None
    try:
        return animation(spec).mode(spec, **given)
    except ValueError as exc:
        raise AnimateError(f"{family_of(spec).title} models: {one_line(exc)}") from None


def animate(bundle, source, driving, out, *, backend: str | None = None, checkpoint=None,
            threads=None, batch_size: int | None = None, best_frame: bool = False,
            visualize: bool = False, force: bool = False, crop: str = "none", notify=print,
            stream=None, sources: dict | None = None, config=None, **mode_options) -> dict:
    """The `animate` command's work: run_animate on a prepared bundle (or, bundle None, a
    config's checkpoint: prepare) in the mode of `mode_options` (the family's:
    animation_mode), each defaulting to the spec's; the summary also says which mode ran
    (`motion`: as the command prints it).

    `bundle` may be a Prepared one (a worker's, loaded once for many jobs: backend,
    checkpoint and threads are then its own). Its parameters and the family's mode
    options are animate's options: a jobs file of animate-many accepts every one that is
    a job's (many/jobfile.py)."""
    prepared = bundle if isinstance(bundle, Prepared) else \
        prepare(bundle, default_backend(backend, bundle), checkpoint, threads, config=config)
    mode = animation_mode(prepared.spec, **mode_options)
    for notice in prepared.notices:
        notify(notice)
    summary = run_animate(prepared, source, driving, out, mode=mode, batch_size=batch_size,
                          best_frame=best_frame, visualize=visualize, stream=stream,
                          force=force, crop=crop, sources=sources)
    return {**summary, **mode.summary(), "motion": mode.describe()}


def default_backend(backend: str | None, bundle) -> str:
    """The backend asked for, else tflite for a bundle and torch for a checkpoint."""
    return backend or ("torch" if bundle is None else "tflite")


def reconstruct(bundle, video, out=None, *, backend: str | None = None, checkpoint=None,
                threads=None, batch_size: int | None = None, visualize: bool = False,
                json_path=None, force: bool = False, notify=print,
                config=None) -> Reconstruction:
    """The `reconstruct` command's work: run_reconstruct, and the L1 report as JSON."""
    prepared = prepare(bundle, default_backend(backend, bundle), checkpoint, threads,
                       config=config)
    if json_path:
        check_writable(json_path)
    for notice in prepared.notices:
        notify(notice)
    result = run_reconstruct(prepared, video, out, batch_size=batch_size, visualize=visualize,
                             force=force)
    if json_path:
        write_report(json_path, {"l1": result.l1, "frames": result.frames,
                                 "l1_per_frame": result.per_frame, "video": str(video),
                                 "backend": prepared.backend_name, **prepared.origin()})
    return result
