"""`fomm-convert inspect`."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("inspect")
@click.argument("file", required=False, type=click.Path())
@click.option("--config", help="Spec name/path or original config (with --checkpoint).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint to inspect.")
@click.option("--json", "as_json", is_flag=True,
              help="FILE: print the whole record (metadata, signatures, every op) as JSON.")
def inspect_command(file, config, checkpoint, as_json):
    """Show an artifact's metadata and signatures, a bundle's summary, or how a checkpoint
    maps onto the graph."""
    from ..pipeline.inspect import describe_artifact, describe_checkpoint
    from ..pipeline.inspect_summary import artifact_summary
    if file and (config or checkpoint):
        raise click.UsageError("give FILE, or --config with --checkpoint, not both")
    if file and Path(file).is_dir():
        click.echo(_bundle(Path(file)))
    elif file:
        described = describe_artifact(Path(file))
        click.echo(json.dumps(described, indent=1, ensure_ascii=False) if as_json
                   else artifact_summary(described))
    elif config and checkpoint:
        click.echo(describe_checkpoint(config, checkpoint))
    else:
        raise click.UsageError("give FILE, or --config with --checkpoint")


def _bundle(path: Path) -> str:
    from ..bundle import BundleError
    from ..bundle.open import open_bundle
    from ..pipeline.inspect_summary import bundle_summary
    try:
        return bundle_summary(open_bundle(path, check=False))
    except BundleError:
        raise BundleError(f"{path}: a directory and not a bundle; inspect takes a .tflite or "
                          f".onnx file or a bundle directory") from None
