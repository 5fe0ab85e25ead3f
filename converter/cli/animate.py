"""`fomm-convert animate` and `fomm-convert reconstruct`: a bundle animating a picture."""
from __future__ import annotations

import signal
import sys

import click

from ..animation.options import every_option
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


def _common_options(f, threads_help="Threads for the runtime (default: its own choice).",
                    configs=True):
    """The options of the commands that run a bundle; `configs`: also a config's checkpoint
    in its place (--dataset, --config), which animate-many's workers do not take."""
    models = [
        click.option("--dataset", help="Instead of --bundle: a dataset spec name "
                                       "(specs/NAME.yaml) and its --checkpoint, run on a "
                                       "checkpoint backend (tf, torch)."),
        click.option("--config", help="Instead of --bundle: a spec path or original-format "
                                      "config and its --checkpoint (as --dataset)."),
    ] if configs else []
    options = [
        click.option("--bundle", type=click.Path(file_okay=False),
                     help="Release bundle directory (its files are checked against the "
                          "manifest's sha256 first)."),
        *models,
        click.option("--backend", default=None, type=click.Choice(BACKEND_CHOICES),
                     help="Runtime: the bundle's artifacts, or tf/torch from the checkpoint "
                          "(default: tflite with --bundle, torch with a config)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False),
                     help="For --backend tf/torch: the checkpoint (with --bundle, default: "
                          "the one it was built from)."),
        click.option("--batch-size", default=None, type=click.IntRange(1),
                     help="Frames per generator call (memory grows with it, not with the "
                          "video; default: 1 on TFLite, the fastest there, else 4)."),
        click.option("--threads", type=click.IntRange(1), default=None, help=threads_help),
        click.option("--force", is_flag=True, help="Replace an existing output."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _models(bundle, dataset, config) -> dict:
    """animate's and reconstruct's bundle= and config= of the three ways to name models."""
    if sum(x is not None for x in (bundle, dataset, config)) != 1:
        raise click.UsageError("give exactly one of --bundle, --dataset and --config")
    return {"bundle": bundle, "config": dataset or config}


def _family_options(f):
    """Every model family's animation options (animation.options), each refused by the
    families that do not take it."""
    for name, (option, families) in reversed(every_option().items()):
        kind = {"type": click.Choice(option.choices)} if option.choices else {}
        f = click.option(option.flag, name, default=None,
                         help=f"{' and '.join(families)} models: {option.help}.", **kind)(f)
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
@_family_options
@click.option("--best-frame", is_flag=True,
              help="Measure motion from the driving frame whose keypoints best match the "
                   "source's (a first pass over the video finds it).")
@click.option("--visualize", is_flag=True,
              help="Write source | driving (with keypoints) | result side by side.")
@click.option("--crop", type=click.Choice(CROPS), default="none", show_default=True,
              help="Fit the source and the driving frames to the model's frame: stretched "
                   "as the original demo does (none), or cropped at the centre to its "
                   "aspect ratio first (center).")
def animate_command(bundle, dataset, config, backend, checkpoint, batch_size, threads, force,
                    source, driving, out, best_frame, visualize, crop, **mode_options):
    """Animate a source image with a driving video, streaming, on any backend."""
    from ..animation.jobs import animate, default_backend
    models = _models(bundle, dataset, config)
    backend = default_backend(backend, bundle)
    _terminate_cleanly()
    summary = animate(models.pop("bundle"), source, driving, out, backend=backend,
                      checkpoint=checkpoint, threads=threads, batch_size=batch_size,
                      best_frame=best_frame, visualize=visualize, force=force, crop=crop,
                      notify=_notify, **models, **mode_options)
    best = ("" if summary["best_frame"] is None
            else f", motion from frame {summary['best_frame']}")
    click.echo(f"{out}: {summary['frames']} frames at {summary['fps']:g} fps"
               f"{', with audio' if summary['audio'] else ''}{best}; backend {backend}, "
               f"{summary['motion']}; "
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
def reconstruct_command(bundle, dataset, config, backend, checkpoint, batch_size, threads,
                        force, video, out, visualize, json_path):
    """Reconstruct a video from its first frame (the driving keypoints as they are: FOMM's
    absolute, TPSMM's standard mode, as the original's reconstruction) and report the mean
    L1 error against the real frames."""
    from ..animation.jobs import default_backend, reconstruct
    models = _models(bundle, dataset, config)
    backend = default_backend(backend, bundle)
    if visualize and out is None:
        raise click.UsageError("--visualize draws into --out: give --out too")
    _terminate_cleanly()
    result = reconstruct(models.pop("bundle"), video, out, backend=backend,
                         checkpoint=checkpoint, threads=threads, batch_size=batch_size,
                         visualize=visualize, json_path=json_path, force=force,
                         notify=_notify, **models)
    click.echo(f"reconstruction L1: {result.l1:.6f} over {result.frames} frames "
               f"(backend {backend}){f'; wrote {out}' if out else ''}")
