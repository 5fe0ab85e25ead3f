"""`fomm-convert build-all` (make all)."""
from __future__ import annotations

import click


@click.command("build-all")
@click.option("--force", is_flag=True, help="Rebuild bundles that already exist.")
def build_all_command(force):
    """Build every dataset whose checkpoint is in checkpoints/; list the ones skipped."""
    from ..pipeline.build_all import build_all
    result = build_all(force)
    click.echo(f"built: {', '.join(result.built) or 'none'}")
    for line in result.skipped:
        click.echo(f"skipped {line}")
    if result.failed:
        raise click.ClickException(f"failed: {', '.join(result.failed)}")
