"""`fomm-convert animate` and `fomm-convert reconstruct`: a bundle animating a picture."""
from __future__ import annotations

import signal
import sys

import click

from ..formats import FORMAT_OF_BACKEND
from ..media.fit import CROPS
from ..runtime import CHECKPOINT_BACKENDS

# The --backend choices: the bundle's artifacts, or tf/torch from the checkpoint.
BACKEND_CHOICES = (*FORMAT_OF_BACKEND, *sorted(CHECKPOINT_BACKENDS))


def _terminate_cleanly():
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed."""
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    except ValueError:  # not the main thread (e.g. inside a test runner's worker)
        pass


def _notify(text: str):
    click.echo(text, err=True)


def _common_options(f, threads_help="Threads for the runtime (default: its own choice)."):
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
        click.option("--batch-size", default=None, type=click.IntRange(1),
                     help="Frames per generator call (memory grows with it, not with the "
                          "video; default: 1 on TFLite, the fastest there, else 4)."),
        click.option("--threads", type=click.IntRange(1), default=None, help=threads_help),
        click.option("--force", is_flag=True, help="Replace an existing output."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
@click.option("--crop", type=click.Choice(CROPS), default="none", show_default=True,
              help="Fit the source and the driving frames to the model's frame: stretched "
                   "as the original demo does (none), or cropped at the centre to its "
                   "aspect ratio first (center).")
def animate_command(bundle, backend, checkpoint, batch_size, threads, force, source, driving,
                    out, relative, adapt_scale, best_frame, visualize, crop):
    """Animate a source image with a driving video, streaming, on any backend."""
    from ..animation.jobs import animate
    _terminate_cleanly()
    summary = animate(bundle, source, driving, out, backend=backend, checkpoint=checkpoint,
                      threads=threads, relative=relative, adapt_scale=adapt_scale,
                      batch_size=batch_size, best_frame=best_frame, visualize=visualize,
                      force=force, crop=crop, notify=_notify)
    best = ("" if summary["best_frame"] is None
            else f", motion from frame {summary['best_frame']}")
    click.echo(f"{out}: {summary['frames']} frames at {summary['fps']:g} fps"
               f"{', with audio' if summary['audio'] else ''}{best}; backend {backend}, "
               f"{'relative' if summary['relative'] else 'absolute'}"
               f"{', adapt-scale' if summary['adapt_scale'] else ''}; "
               f"{summary['frames_per_second']:.1f} frames/s end to end (inference "
               f"{summary['inference_frames_per_second']:.1f} frames/s)")


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
def reconstruct_command(bundle, backend, checkpoint, batch_size, threads, force, video, out,
                        visualize, json_path):
    """Reconstruct a video from its first frame (absolute keypoints, as the original's
    reconstruction mode) and report the mean L1 error against the real frames."""
    from ..animation.jobs import reconstruct
    if visualize and out is None:
        raise click.UsageError("--visualize draws into --out: give --out too")
    _terminate_cleanly()
    result = reconstruct(bundle, video, out, backend=backend, checkpoint=checkpoint,
                         threads=threads, batch_size=batch_size, visualize=visualize,
                         json_path=json_path, force=force, notify=_notify)
    click.echo(f"reconstruction L1: {result.l1:.6f} over {result.frames} frames "
               f"(backend {backend}){f'; wrote {out}' if out else ''}")
