"""`fomm-convert verify BUNDLE`: recheck every file's sha256 and rerun each format's parity."""
from __future__ import annotations

import re
from pathlib import Path

import click

from .bundle import BundleError, check_files, read_manifest
from .build import FORMAT_CHECKS
from .paths import CHECKPOINTS

SYNTHETIC_NAME = re.compile(r"-synthetic-seed(\d+)\.pth\.tar$")


def bundle_spec(bundle: Path, manifest: dict):
    """The resolved spec a bundle was built from (recorded in its manifest)."""
    from .spec import spec_from_data
    return spec_from_data(Path(bundle) / "manifest.json", manifest["spec"])


def find_checkpoint(manifest: dict, spec, given: str | None) -> Path:
    if given:
        return Path(given)
    name = manifest["checkpoint"]["file"]
    path = CHECKPOINTS / name
    seed = SYNTHETIC_NAME.search(name)
    if not path.exists() and manifest.get("synthetic") and seed:
        from .synth import synthetic_checkpoint
        return synthetic_checkpoint(spec, int(seed.group(1)))
    if not path.exists():
        raise BundleError(f"{path}: the bundle's checkpoint is not there; pass --checkpoint")
    return path


def verify(bundle: Path, checkpoint: str | None = None, echo=click.echo) -> dict:
    """Raise BundleError on any mismatch; return {format: ParityReport} otherwise."""
    from fomm_convert.parity.end_to_end import format_parity

    from .checkpoint import load_checkpoint, state_dict_sha256
    from .runtime import load_backend

    manifest = read_manifest(bundle)
    problems = check_files(bundle, manifest)
    if problems:
        raise BundleError(f"{bundle}: {len(problems)} file problem(s): " + "; ".join(problems))
    echo(f"{len(manifest['files'])} files match their sha256")
    spec = bundle_spec(bundle, manifest)
    ckpt = load_checkpoint(find_checkpoint(manifest, spec, checkpoint))
    weights = {net: state_dict_sha256(getattr(ckpt, net)) for net in ("kp_detector", "generator")}
    if weights != manifest["checkpoint"]["weights_sha256"]:
        raise BundleError(f"{ckpt.path}: its weights are not the ones this bundle was built from")
    reference = load_backend("torch", spec=spec, checkpoint=ckpt)
    reports = {}
    for fmt in manifest["formats"]:
        backend, profile = FORMAT_CHECKS[fmt]
        reports[fmt] = format_parity(reference, load_backend(backend, spec=spec, bundle=bundle),
                                     spec.frame_shape, profile)
        status = "pass" if reports[fmt].passed else f"FAIL at {reports[fmt].first_divergence}"
        echo(f"parity {fmt} ({profile}): {status}")
    failed = [f for f, r in reports.items() if not r.passed]
    if failed:
        raise BundleError(f"{bundle}: parity fails for {', '.join(failed)}")
    return reports


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="The checkpoint the bundle was built from (default: from the manifest).")
def verify_command(bundle, checkpoint):
    """Recheck a bundle's files against its manifest and rerun its parity checks."""
    from .checkpoint import CheckpointError
    try:
        verify(Path(bundle), checkpoint)
    except (BundleError, CheckpointError) as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{bundle}: verified")
