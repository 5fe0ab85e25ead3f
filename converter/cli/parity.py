"""`fomm-convert parity`."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("parity")
@click.option("--config", required=True, help="Spec name/path or original-format config.")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False))
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Where report.json and report.md go (default artifacts/parity/<name>).")
def parity_command(config, checkpoint, report_dir):
    """Per-layer parity of the TF graph with the torch reference; exit 1 on failure."""
    from ..pipeline.layer_check import layer_check
    report, out = layer_check(config, checkpoint, Path(report_dir) if report_dir else None)
    worst = max((l for l in report.layers if l.max_abs is not None), key=lambda l: l.max_abs)
    click.echo(f"{len(report.layers)} layers; worst {worst.name} max abs {worst.max_abs:.2e}; "
               f"report {out / 'report.md'}")
    if not report.passed:
        raise click.ClickException(f"parity FAILED, first divergence {report.first_divergence}")
    click.echo("parity passed")
