"""`fomm-convert build-all` (make all): a bundle for every spec whose checkpoint is present."""
from __future__ import annotations

import subprocess
import sys

import click

from .paths import CHECKPOINTS


@click.command("build-all")
@click.option("--force", is_flag=True, help="Rebuild bundles that already exist.")
def build_all_command(force):
    """Build every dataset whose checkpoint is in checkpoints/; list the ones skipped."""
    from .spec import available_specs, load_spec
    built, skipped, failed = [], [], []
    for name in available_specs():
        spec = load_spec(name)
        path = CHECKPOINTS / spec.checkpoint
        if not path.exists():
            skipped.append(f"{name}: no {path.relative_to(CHECKPOINTS.parent)}")
            continue
        click.echo(f"== {name}")
        # One process per build: TF names traced functions by a per-process counter,
        # and a fresh process keeps every bundle byte-reproducible.
        command = [sys.executable, "-m", "fomm_convert.cli", "build", "--dataset", name]
        result = subprocess.run(command + (["--force"] if force else []),
                                capture_output=True, text=True)
        sys.stdout.write(result.stdout)
        if result.returncode == 0:
            built.append(name)
        elif "pass --force" in result.stderr:
            skipped.append(f"{name}: already built (--force to rebuild)")
        else:
            failed.append(name)
            sys.stderr.write(result.stderr.strip().splitlines()[-1] + "\n")
    click.echo(f"built: {', '.join(built) or 'none'}")
    for line in skipped:
        click.echo(f"skipped {line}")
    if failed:
        raise click.ClickException(f"failed: {', '.join(failed)}")
