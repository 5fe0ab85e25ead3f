"""Recheck a bundle: every file's sha256 against the manifest, then each format's parity
against the torch reference of the checkpoint it was built from."""
from __future__ import annotations

from pathlib import Path

import click

from ..bundle import BundleError
from ..bundle.open import open_bundle
from ..formats import FORMATS


def verify(bundle: Path, checkpoint: str | None = None, echo=click.echo) -> dict:
    """Raise BundleError on any mismatch; return {format: ParityReport} otherwise."""
    from ..parity.end_to_end import format_parity
    from ..runtime import load_backend

    opened = open_bundle(bundle)
    echo(f"{len(opened.manifest['files'])} files match their sha256")
    spec = opened.spec
    reference = load_backend("torch", spec=spec, checkpoint=opened.load_checkpoint(checkpoint))
    reports = {}
    for name in opened.manifest["formats"]:
        fmt = FORMATS[name]
        reports[name] = format_parity(reference, opened.backend(fmt.backend), spec.frame_shape,
                                      fmt.profile)
        status = "pass" if reports[name].passed else f"FAIL at {reports[name].first_divergence}"
        echo(f"parity {name} ({fmt.profile}): {status}")
    failed = [f for f, r in reports.items() if not r.passed]
    if failed:
        raise BundleError(f"{bundle}: parity fails for {', '.join(failed)}")
    return reports
