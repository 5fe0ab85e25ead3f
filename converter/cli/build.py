"""`fomm-convert build`."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from ..formats import DEFAULT_FORMATS, FORMAT_NAMES


@click.command("build")
@click.option("--dataset", help="Dataset spec name (specs/NAME.yaml).")
@click.option("--config", help="Spec path or original-format config (custom models).")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Checkpoint; default checkpoints/<the spec's file name>.")
@click.option("--synthetic", is_flag=True, help="Build from a seeded synthetic checkpoint.")
@click.option("--seed", default=7, show_default=True, help="Seed of --synthetic.")
@click.option("--formats", help=f"Comma-separated, from {', '.join(FORMAT_NAMES)}; default "
              f"those of the model family's by default (FOMM's: {','.join(DEFAULT_FORMATS)}).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Bundle directory; default artifacts/<dataset>/<version>.")
@click.option("--force", is_flag=True, help="Replace an existing bundle of that version.")
def build_command(dataset, config, checkpoint, synthetic, seed, formats, out, force):
    """Convert a checkpoint into a verified release bundle."""
    from ..pipeline.build import build, build_formats, resolve_checkpoint
    from ..spec import load_spec

    if bool(dataset) == bool(config):
        raise click.UsageError("give exactly one of --dataset and --config")
    if synthetic and checkpoint:
        raise click.UsageError("--synthetic and --checkpoint exclude each other")
    # A terminated build unwinds like an interrupted one: its staging directory goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    spec = load_spec(dataset or config)
    wanted = None if formats is None else [f.strip() for f in formats.split(",") if f.strip()]
    wanted = build_formats(spec, wanted)  # before --synthetic writes a checkpoint
    path = resolve_checkpoint(spec, checkpoint, seed if synthetic else None)
    build(spec, path, wanted, Path(out) if out else None, force)
