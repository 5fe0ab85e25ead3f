"""`fomm-convert inspect`."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("inspect")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--config", help="Spec name/path or original config (with --checkpoint).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint to inspect.")
def inspect_command(file, config, checkpoint):
    """Show an artifact's metadata and signatures, or how a checkpoint maps onto the graph."""
    from ..pipeline.inspect import describe_artifact, describe_checkpoint
    if file and (config or checkpoint):
        raise click.UsageError("give FILE, or --config with --checkpoint, not both")
    if file:
        click.echo(json.dumps(describe_artifact(Path(file)), indent=1, ensure_ascii=False))
    elif config and checkpoint:
        click.echo(describe_checkpoint(config, checkpoint))
    else:
        raise click.UsageError("give FILE, or --config with --checkpoint")
