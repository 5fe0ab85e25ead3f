"""`make all`: a bundle for every spec whose checkpoint is present."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import click

from ..families import family_of
from ..paths import CHECKPOINTS


@dataclass
class BuildAll:
    built: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # "<name>: <why>"
    failed: list = field(default_factory=list)


def build_all(force: bool = False, echo=click.echo) -> BuildAll:
    """Build every dataset whose checkpoint is in checkpoints/, one process each."""
    from ..spec import available_specs, load_spec
    result = BuildAll()
    for name in available_specs():
        spec = load_spec(name)
        path = CHECKPOINTS / spec.checkpoint
        if not path.exists():
            result.skipped.append(f"{name}: no {path}")
            continue
        if not family_of(spec).formats:
            result.skipped.append(f"{name}: no format is available for "
                                  f"{family_of(spec).title} models yet")
            continue
        echo(f"== {name}")
        # One process per build: TF names traced functions by a per-process counter,
        # and a fresh process keeps every bundle byte-reproducible.
        command = [sys.executable, "-m", "fomm_convert.cli", "build", "--dataset", name]
        run = subprocess.run(command + (["--force"] if force else []),
                             capture_output=True, text=True)
        sys.stdout.write(run.stdout)
        if run.returncode == 0:
            result.built.append(name)
        elif "pass --force" in run.stderr:
            result.skipped.append(f"{name}: already built (--force to rebuild)")
        else:
            result.failed.append(name)
            sys.stderr.write(run.stderr.strip().splitlines()[-1] + "\n")
    return result
