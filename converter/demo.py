"""`fomm-convert demo`: the whole pipeline on a fresh machine, no downloads.

The official checkpoints cannot be fetched here, so the demo builds a bundle from a
seeded synthetic vox checkpoint in the original's format, verifies it, draws its own
inputs (a face, and a video of it turning and talking), and animates them with the TFLite
artifacts into an mp4 and a side-by-side visualisation.
"""
from __future__ import annotations

from pathlib import Path

import click

from .paths import ARTIFACTS
import numpy as np



def existing_bundle(dataset: str) -> Path | None:
    """The newest synthetic bundle of a dataset already built, if any."""
    found = sorted((ARTIFACTS / dataset).glob("*-synthetic-*/manifest.json"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def write_demo_inputs(frame_shape, folder: Path, frames: int = 48) -> tuple[Path, Path]:
    """source.png and driving.mp4 (25 fps) of the drawn face."""
    import imageio.v3 as iio

    from .media import open_writer, to_uint8
    from .fixtures import demo_inputs
    source, driving = demo_inputs(frame_shape, frames)
    folder.mkdir(parents=True, exist_ok=True)
    iio.imwrite(folder / "source.png", to_uint8(source[0]))
    with open_writer(folder / "driving.mp4", 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    return folder / "source.png", folder / "driving.mp4"


@click.command("demo")
@click.option("--dataset", default="vox", show_default=True, help="Dataset spec to demo.")
def demo_command(dataset):
    """Build (once) and verify a synthetic bundle, then animate a drawn face with it."""
    from .animate import prepare, run_animate
    from .build import build
    from .synth import synthetic_checkpoint
    from .bundle import BundleError
    from .spec import load_spec
    from .verify import verify

    spec = load_spec(dataset)
    click.secho(f"SYNTHETIC WEIGHTS: the official {dataset} checkpoint cannot be downloaded "
                "here; the pipeline is real, the pictures are not meant to look like anything.",
                fg="yellow")
    checkpoint = synthetic_checkpoint(spec, 7)
    bundle = existing_bundle(spec.name)
    try:
        if bundle is None:
            bundle = build(spec, checkpoint)
        else:
            click.echo(f"using the bundle built earlier: {bundle}")
        verify(bundle, str(checkpoint))
    except BundleError as exc:
        raise click.ClickException(str(exc))
    folder = ARTIFACTS / "demo"
    source, driving = write_demo_inputs(spec.frame_shape, folder)
    opened = prepare(bundle, "tflite", None, None)
    for note in opened.notices:
        click.secho(note, fg="yellow")
    for name, visualize in (("animation.mp4", False), ("animation-visualized.mp4", True)):
        summary = run_animate(opened, source, driving, folder / name, relative=spec.relative,
                              adapt_scale=spec.adapt_scale, visualize=visualize)
        click.echo(f"wrote {folder / name}: {summary['frames']} frames at "
                   f"{summary['frames_per_second']:.1f} frames/s (TFLite)")
