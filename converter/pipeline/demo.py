"""`fomm-convert demo`: the whole pipeline on a fresh machine, no downloads.

With the spec's official checkpoint in checkpoints/ the demo converts it; otherwise (the
official files cannot be fetched here) it synthesises a seeded checkpoint in the
original's format, and says so. It builds a bundle once and verifies it (its files; a
bundle built earlier, its parity against the checkpoint too), draws its own inputs (a
face, and a video of it turning and talking) and animates them with the TFLite artifacts
into an mp4 and a side-by-side visualisation.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import FommError
from ..families import family_of
from ..io import file_sha256
from ..paths import ARTIFACTS, CHECKPOINTS

DEMO_FORMAT = "tflite"  # the demo animates with these files


class DemoError(FommError):
    """What keeps the demo of a dataset from running."""


def existing_bundle(dataset: str, checkpoint: Path) -> Path | None:
    """The newest bundle of a dataset already built from this checkpoint file, if any."""
    import json
    digest = file_sha256(checkpoint)
    found = [m for m in sorted((ARTIFACTS / dataset).glob("*/manifest.json"),
                               key=lambda p: p.stat().st_mtime)
             if json.loads(m.read_text()).get("checkpoint", {}).get("sha256") == digest]
    return found[-1].parent if found else None


def write_demo_inputs(frame_shape, folder: Path, frames: int = 48) -> tuple[Path, Path]:
    """source.png and driving.mp4 (25 fps) of the drawn face."""
    import imageio.v3 as iio

    from ..fixtures import demo_inputs
    from ..media import open_writer, to_uint8
    source, driving = demo_inputs(frame_shape, frames)
    folder.mkdir(parents=True, exist_ok=True)
    iio.imwrite(folder / "source.png", to_uint8(source[0]))
    with open_writer(folder / "driving.mp4", 25.0, force=True) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    return folder / "source.png", folder / "driving.mp4"


def demo_checkpoint(spec, say) -> Path:
    """The spec's official checkpoint when present, else the seeded synthetic one."""
    official = CHECKPOINTS / spec.checkpoint if spec.checkpoint else None
    if official is not None and official.is_file():
        say(f"using the checkpoint {official}", False)
        return official
    from ..synth import synthetic_checkpoint
    say(f"SYNTHETIC WEIGHTS: no {official or 'checkpoint'} here (the official {spec.name} "
        "checkpoint cannot be downloaded on this machine); the pipeline is real, the "
        "pictures are not meant to look like anything.", True)
    return synthetic_checkpoint(spec, 7)


def demo(dataset: str = "vox", echo=click.echo, warn=lambda text: click.secho(text, fg="yellow")):
    """Build (once) and verify a bundle of `dataset`, then animate the drawn face with it;
    returns the folder of the demo's files."""
    from ..animation.jobs import animation_mode, prepare, run_animate
    from ..spec import load_spec
    from .build import build
    from .verify import verify

    spec = load_spec(dataset)
    family = family_of(spec)
    if DEMO_FORMAT not in family.formats or not family.web:  # before any checkpoint
        raise DemoError(f"{spec.name}: the {family.title} demo needs its TFLite bundle "
                        f"and the browser page, which {family.title} models do not have "
                        f"yet")
    checkpoint = demo_checkpoint(spec, lambda text, loud: (warn if loud else echo)(text))
    bundle = existing_bundle(spec.name, checkpoint)
    if bundle is None:
        # build has just held every format to the checkpoint's reference: running that
        # parity again (tpsmm-vox: ~10 minutes here) would repeat it on the same bytes
        bundle = build(spec, checkpoint)
        verify(bundle, files_only=True, echo=echo)
    else:
        echo(f"using the bundle built earlier: {bundle}")
        verify(bundle, str(checkpoint), echo=echo)
    folder = ARTIFACTS / "demo"
    source, driving = write_demo_inputs(spec.frame_shape, folder)
    opened = prepare(bundle, DEMO_FORMAT, None, None)
    for note in opened.notices:
        warn(note)
    for name, visualize in (("animation.mp4", False), ("animation-visualized.mp4", True)):
        summary = run_animate(opened, source, driving, folder / name,
                              mode=animation_mode(spec), visualize=visualize,
                              force=True)  # the demo's own files, made again
        echo(f"wrote {folder / name}: {summary['frames']} frames at "
             f"{summary['frames_per_second']:.1f} frames/s (TFLite)")
    write_demo_site(bundle, source, driving, echo, warn)
    return folder


def write_demo_site(bundle, source, driving, echo, warn):
    """The web page on the bundle's static TFLite files, the demo's inputs beside it."""
    from ..errors import FommError
    from .web import write_site
    site = ARTIFACTS / "demo-site"
    try:
        write_site(bundle, site, force=True, inputs=(source, driving))
    except FommError as exc:
        warn(f"no web demo: {exc}")
        return
    echo(f"wrote the web demo {site}; serve it with `fomm-convert web --out {site} --serve` "
         f"and open index.html?source={source.name}&driving={driving.name}")
