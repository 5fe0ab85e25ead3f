"""`fomm-convert synth`."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("synth")
@click.option("--config", "config", required=True,
              help="Spec name (e.g. vox), spec YAML, or original-format config YAML.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Checkpoint file to write (parent directories are made).")
@click.option("--zip", "zip_", is_flag=True,
              help="Zip serialisation (torch >= 1.6) instead of the legacy one of the "
                   "official checkpoints.")
def synth_command(config, seed, out, zip_):
    """Write a seeded synthetic checkpoint with the original FOMM layout."""
    from ..io import file_sha256
    from ..spec import load_spec
    from ..synth import write_checkpoint
    path = write_checkpoint(load_spec(config), seed, out, zip=zip_)
    click.echo(f"{path}  {path.stat().st_size} bytes  sha256 {file_sha256(path)}")
