"""`fomm-convert verify BUNDLE`."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="The checkpoint the bundle was built from (default: "
                   "checkpoints/<the manifest's file name>).")
@click.option("--files-only", is_flag=True,
              help="Check the files (sha256, manifest, metadata, model files) without the "
                   "checkpoint: no parity rerun.")
def verify_command(bundle, checkpoint, files_only):
    """Recheck a bundle's files against its manifest and rerun its parity checks against
    the checkpoint it was built from (--files-only: the files alone)."""
    from ..pipeline.verify import verify
    if files_only and checkpoint:
        raise click.UsageError("--files-only runs no parity: it takes no --checkpoint")
    verify(Path(bundle), checkpoint, files_only=files_only)
    click.echo(f"{bundle}: verified{' (files only; parity not rerun)' if files_only else ''}")
