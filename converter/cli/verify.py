"""`fomm-convert verify BUNDLE`."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="The checkpoint the bundle was built from (default: from the manifest).")
def verify_command(bundle, checkpoint):
    """Recheck a bundle's files against its manifest and rerun its parity checks."""
    from ..pipeline.verify import verify
    verify(Path(bundle), checkpoint)
    click.echo(f"{bundle}: verified")
