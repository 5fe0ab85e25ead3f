"""checkpoint -> verified release bundle, in one direction.

load (safe) -> the model family's work (its `convert` module: TF graph through the weight
table -> per-layer parity against the torch reference -> export every format asked of the
registry (formats.py) -> end-to-end parity of each) -> manifest -> the bundle moved into
place, and its archive. Nothing is written under the bundle's name unless every parity
check passes.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click

from ..bundle import BundleError, bundle_version, file_table, staging, toolchain_versions
from ..errors import shown
from ..families import family_of
from ..formats import checked_formats
from ..io import write_json
from ..licence import licence
from ..paths import ARTIFACTS, CHECKPOINTS, bundle_archive_name, is_plain_name
from ..spec import Spec
from .progress import Progress
from .reports import summary


class ParityFailed(BundleError):
    def __init__(self, message: str, report_path: Path):
        super().__init__(message)
        self.report_path = report_path


def resolve_checkpoint(spec: Spec, given=None, synthetic_seed: int | None = None) -> Path:
    """The checkpoint to build from: given, the seeded synthetic one, or the spec's file
    under checkpoints/."""
    if synthetic_seed is not None:
        from ..synth import synthetic_checkpoint
        check_name(spec)
        return synthetic_checkpoint(spec, synthetic_seed)
    if given:
        return Path(given)
    if spec.checkpoint is None:
        raise BundleError(f"{spec.path} names no checkpoint: pass --checkpoint")
    return CHECKPOINTS / spec.checkpoint


def check_name(spec: Spec):
    """A spec's name becomes folders and file names (artifacts/<name>/, the archive,
    checkpoints/<name>-synthetic-...): it must be a plain name."""
    if not is_plain_name(spec.name):
        raise BundleError(f"{spec.path}: name: {shown(spec.name)} is not a plain name "
                          f"(letters, digits, '_', '.', '-'; no path): it names the bundle")


# Errors of a full disk (or a file-size limit): one line, and nothing was written.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_full(exc: BaseException) -> str | None:
    """The reason when `exc` says the disk (or the file-size limit) is full: an OSError, or
    TensorFlow's error of a failed write (SaveV2: "...; File too large")."""
    if isinstance(exc, OSError):
        return os.strerror(exc.errno) if exc.errno in DISK_FULL else None
    if type(exc).__module__.startswith("tensorflow"):
        text = str(exc)
        return next((os.strerror(e) for e in DISK_FULL if os.strerror(e) in text), None)
    return None


@contextmanager
def temporary_files_in(folder: Path):
    """Python's and the frameworks' temporary files (TF's autograph modules, ...) go into
    `folder` (the staging folder's scratch) while the block runs, so even a killed build
    leaves them where the next build removes them."""
    saved, env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved
        if env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env


def build_formats(spec: Spec, formats=None) -> list[str]:
    """The formats a build of `spec` makes (None: its family's default ones), in registry
    order; a BundleError naming what its family cannot make yet."""
    family = family_of(spec)
    # Registry order, whatever the order asked: TF names traced functions by a per-process
    # counter, so the same order keeps the same inputs byte-identical.
    try:
        formats = list(checked_formats(family.default_formats if formats is None else formats))
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    missing = [name for name in formats if name not in family.formats]
    if missing:
        raise BundleError(f"{spec.path}: {', '.join(missing)}: not yet available for "
                          f"{family.title} models (available: "
                          f"{', '.join(family.formats) or 'none yet'})")
    return formats


def build(spec: Spec, checkpoint_path: Path, formats=None, out: Path | None = None,
          force: bool = False, echo=click.echo) -> Path:
    """Build, verify and write the bundle; returns its directory. formats: None for the
    spec's family's default ones (families.Family.default_formats)."""
    from ..checkpoint import load_checkpoint, weights_sha256

    formats = build_formats(spec, formats)
    check_name(spec)
    family = family_of(spec)
    convert = family.facet("convert")
    progress = Progress(echo)
    checkpoint = load_checkpoint(checkpoint_path, family=spec.family)
    weights = weights_sha256(checkpoint)
    toolchain = toolchain_versions(formats)
    version = bundle_version(spec.to_dict(), weights, formats, checkpoint.synthetic, {},
                             toolchain)
    final = Path(out) if out else ARTIFACTS / spec.name / version
    archive = (final.parent.parent if out is None else final.parent) \
        / bundle_archive_name(spec.name, version)
    try:
        # Locked, checked (absent, or one of our bundles with --force; writable) before the
        # model work; moved into place with its archive only when complete.
        with staging(final, archive, force) as stage:
            with temporary_files_in(stage.scratch):
                reports, quality = convert.make(spec, checkpoint, checkpoint_info(
                    checkpoint, weights), formats, version, final, stage, progress)
            stage.drop_scratch()  # before the file table
            manifest = {
                "dataset": spec.name, "version": version, "spec": spec.to_dict(),
                "checkpoint": checkpoint_info(checkpoint, weights),
                "synthetic": checkpoint.synthetic,
                "formats": list(formats), "toolchain": toolchain,
                "parity": {name: summary(r) for name, r in reports.items()},
                "quality": quality,
                "licence": licence(family, checkpoint.synthetic),
                "files": file_table(stage.bundle),
            }
            write_json(stage.bundle / "manifest.json", manifest)
    except Exception as exc:
        # A checkpoint that does not fit the spec: told here, past temporary_files_in (the
        # explanation's file stays).
        misfit = convert.misfit(exc, spec, checkpoint.path)
        if misfit is not None:
            raise misfit from None
        reason = disk_full(exc)
        if reason is None:
            raise
        where = getattr(exc, "filename", None) or final
        raise BundleError(f"{where}: {reason} while writing the bundle; nothing was "
                          f"written") from None
    progress.step(f"bundle {final}; archive {archive}")
    return final


def checkpoint_info(checkpoint, weights: dict) -> dict:
    """The manifest's (and every artifact's metadata's) record of the checkpoint."""
    return {"file": checkpoint.path.name, "sha256": checkpoint.sha256,
            "weights_sha256": weights}
