"""Recheck a bundle: its manifest (schema, version digest, licence, names, paths), every
file's sha256 and each artifact's metadata against it, every model file through the gate
(bundle.models_check), the parity summary against parity/report.json, then (unless
files_only) each format's parity against the torch reference of the checkpoint it was
built from. Writes nothing (a missing synthetic checkpoint is made
again in memory)."""
from __future__ import annotations

from pathlib import Path

import click

from ..bundle import BundleError
from ..errors import one_line
from ..bundle.manifest import MANIFEST, read_json
from ..bundle.open import open_bundle
from ..bundle.schema import PARITY_REPORT
from ..formats import FORMATS
from ..io import json_text
from ..limits import PARITY_REPORT_MAX_BYTES
from .reports import summary


def verify(bundle: Path, checkpoint: str | None = None, echo=click.echo,
           files_only: bool = False) -> dict:
    """Raise BundleError on any mismatch; return {format: ParityReport} otherwise ({} with
    files_only: the files, manifest, metadata and model-file gate only, no checkpoint)."""
    opened = open_bundle(bundle)  # hashes, schema, metadata
    opened.gate(opened.formats)  # every model file, before any runtime parses one
    echo(f"{len(opened.manifest['files'])} files match their sha256; manifest, metadata "
         f"and model files checked")
    check_parity_summary(opened.path, opened.manifest)
    if files_only:
        return {}
    try:
        source = opened.load_checkpoint(checkpoint)
    except BundleError as exc:
        raise BundleError(f"{one_line(exc)} (parity is rerun against the checkpoint the "
                          f"bundle was built from; verify --files-only checks the files "
                          f"without it)") from None
    return _parity(opened, source, echo)


def _parity(opened, checkpoint, echo) -> dict:
    from ..families import family_of

    spec, bundle = opened.spec, opened.path
    convert = family_of(spec).facet("convert")
    format_parity, reference = convert.format_parity, convert.reference(spec, checkpoint)
    reports, formats = {}, opened.manifest["formats"]
    # the reference is computed at the first format's check: minutes at full size (vox:
    # about 7 here), which must not pass in silence
    echo(f"parity of {len(formats)} formats against the torch reference of "
         f"{checkpoint.path.name}, computed first in float64 and float32 (minutes at full "
         f"size); each format's verdict as it is measured")
    for name in formats:
        fmt = FORMATS[name]
        reports[name] = format_parity(reference, opened.backend(name), spec.frame_shape,
                                      fmt.precision)
        status = "pass" if reports[name].passed else f"FAIL at {reports[name].first_divergence}"
        echo(f"parity {name} ({fmt.precision}): {status}")
    failed = [f for f, r in reports.items() if not r.passed]
    if failed:
        raise BundleError(f"{bundle}: parity fails for {', '.join(failed)}")
    return reports


def check_parity_summary(bundle: Path, manifest: dict):
    """The manifest's parity summary is the one of parity/report.json (whose sha256 the
    manifest's file table has just confirmed)."""
    from ..parity.compare import ParityReport
    path = Path(bundle) / PARITY_REPORT
    data = read_json(path, PARITY_REPORT_MAX_BYTES, "parity report")
    if not isinstance(data, dict) or set(data) != set(manifest["parity"]):
        raise BundleError(f"{path}: does not hold the reports the manifest summarises "
                          f"({', '.join(sorted(manifest['parity']))})")
    for name, recorded in manifest["parity"].items():
        try:
            computed = summary(ParityReport.from_dict(data[name]))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BundleError(f"{path}: {name}: not a parity report") from None
        if json_text(computed) != json_text(recorded):
            raise BundleError(f"{Path(bundle) / MANIFEST}: parity.{name}: differs from its "
                              f"report in {PARITY_REPORT}")
