"""checkpoint -> verified release bundle, in one direction.

load (safe) -> TF graph through the weight table -> per-layer parity against the torch
reference -> export every format of the registry (formats.py) -> end-to-end parity of
each -> manifest -> the bundle moved into place, and its archive. Nothing is written
under the bundle's name unless every parity check passes.
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
from ..formats import DEFAULT_FORMATS, FORMATS, Format, checked_formats
from ..io import write_json
from ..licence import licence
from ..paths import ARTIFACTS, CHECKPOINTS, bundle_archive_name, is_plain_name
from ..signatures import MODELS
from ..spec import Spec
from .misfit import explain_misfit
from .progress import Progress
from .reports import fail, summary, verdict, write_reports


class ParityFailed(BundleError):
    def __init__(self, message: str, report_path: Path):
        super().__init__(message)
        self.report_path = report_path


class _Exports:
    """What the exporters share within one build: the TF functions, the metadata, the
    bundle being staged and scratch space; the SavedModels and the TFLite sources are
    made once, when the first format needs them."""

    def __init__(self, spec, checkpoint, functions, kp_detector, metadata, root: Path,
                 scratch: Path, formats):
        self.spec, self.checkpoint, self.functions = spec, checkpoint, functions
        self.kp_detector, self.metadata, self.root, self.scratch = (kp_detector, metadata,
                                                                    root, scratch)
        self.formats = formats
        self._savedmodels = self._tflite_sources = self._static_sources = None

    def savedmodels(self, progress) -> Path:
        if self._savedmodels is None:
            from ..export.savedmodel import export_savedmodels
            shipped = "savedmodel" in self.formats
            self._savedmodels = (self.root if shipped else self.scratch) / "savedmodel"
            export_savedmodels(self.functions, self._savedmodels)
            progress.step(f"SavedModel written{'' if shipped else ' (scratch)'}")
        return self._savedmodels

    def tflite_sources(self, progress):
        if self._tflite_sources is None:
            from ..export.tflite import tflite_sources
            self._tflite_sources = tflite_sources(self.spec, self.savedmodels(progress),
                                                  self.kp_detector,
                                                  self.scratch / "tflite-savedmodel")
        return self._tflite_sources

    def static_tflite_sources(self, progress):
        if self._static_sources is None:
            from ..export.tflite import static_tflite_sources
            self._static_sources = static_tflite_sources(
                self.spec, self.kp_detector, self.functions["generator"][0],
                self.scratch / "tflite-static-savedmodel")
            progress.step("batch-1 SavedModels written (scratch)")
        return self._static_sources


def _export_savedmodel(exports: _Exports, fmt: Format, progress):
    exports.savedmodels(progress)


def _export_tflite(exports: _Exports, fmt: Format, progress):
    from ..export.tflite import export_tflite
    sources = (exports.static_tflite_sources if fmt.static else exports.tflite_sources)
    export_tflite(sources(progress), exports.root / "tflite", fmt.precision, exports.metadata,
                  static=fmt.static)
    progress.step(f"TFLite {fmt.precision}{' static' if fmt.static else ''} written")


def _export_onnx(exports: _Exports, fmt: Format, progress):
    from ..export.onnx import export_onnx
    export_onnx(exports.spec, exports.checkpoint, exports.root / "onnx", exports.metadata)
    progress.step("ONNX written")


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


EXPORTERS = {"savedmodel": _export_savedmodel, "tflite": _export_tflite, "onnx": _export_onnx}


def build(spec: Spec, checkpoint_path: Path, formats=DEFAULT_FORMATS, out: Path | None = None,
          force: bool = False, echo=click.echo) -> Path:
    """Build, verify and write the bundle; returns its directory."""
    from ..checkpoint import load_checkpoint, weights_sha256
    from ..tf_model.weights import WeightTableError

    # Registry order, whatever the order asked: TF names traced functions by a per-process
    # counter, so the same order keeps the same inputs byte-identical.
    try:
        formats = list(checked_formats(formats))
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    check_name(spec)
    progress = Progress(echo)
    checkpoint = load_checkpoint(checkpoint_path)
    weights = weights_sha256(checkpoint)
    version = bundle_version(spec.to_dict(), weights, formats, checkpoint.synthetic, {})
    final = Path(out) if out else ARTIFACTS / spec.name / version
    archive = (final.parent.parent if out is None else final.parent) \
        / bundle_archive_name(spec.name, version)
    try:
        # Locked, checked (absent, or one of our bundles with --force; writable) before the
        # model work; moved into place with its archive only when complete.
        with staging(final, archive, force) as stage:
            with temporary_files_in(stage.scratch):
                reports, quality = _make(
                    spec, checkpoint, weights, formats, version, final, stage, progress)
            stage.drop_scratch()  # before the file table
            manifest = {
                "dataset": spec.name, "version": version, "spec": spec.to_dict(),
                "checkpoint": _checkpoint_info(checkpoint, weights),
                "synthetic": checkpoint.synthetic,
                "formats": list(formats), "toolchain": toolchain_versions(),
                "parity": {name: summary(r) for name, r in reports.items()},
                "quality": quality,
                "licence": licence(checkpoint.synthetic),
                "files": file_table(stage.bundle),
            }
            write_json(stage.bundle / "manifest.json", manifest)
    except WeightTableError as exc:  # told here, past temporary_files_in: its file stays
        raise explain_misfit(exc, spec, checkpoint.path) from None
    except Exception as exc:
        reason = disk_full(exc)
        if reason is None:
            raise
        where = getattr(exc, "filename", None) or final
        raise BundleError(f"{where}: {reason} while writing the bundle; nothing was "
                          f"written") from None
    progress.step(f"bundle {final}; archive {archive}")
    return final


def _checkpoint_info(checkpoint, weights: dict) -> dict:
    return {"file": checkpoint.path.name, "sha256": checkpoint.sha256,
            "weights_sha256": weights}


def _make(spec, checkpoint, weights, formats, version, final, stage, progress):
    """The model work: TF graph, per-layer parity, every format exported into the staged
    bundle and checked end to end, its reports written. Returns (reports, quality)."""
    from ..bundle.models_check import check_format
    from ..export.metadata import model_metadata
    from ..parity.end_to_end import format_parity
    from ..parity.layers import layer_parity
    from ..runtime import load_backend
    from ..tf_model.fast import fast_models
    from ..tf_model.functions import model_functions
    from ..tf_model.weights import build_tf_models

    progress.step(f"{spec.name} {version}: {checkpoint.path.name}"
                  f"{' (SYNTHETIC weights)' if checkpoint.synthetic else ''}; ignored entries: "
                  f"{', '.join(checkpoint.ignored) or 'none'}")
    kp_detector, generator, weight_reports = build_tf_models(spec, checkpoint, return_reports=True)
    progress.step("weight table: " + "; ".join(r.summary() for r in weight_reports.values()))
    # Per-layer parity runs on the reference-structured graph (kp_detector, generator);
    # the exported generator is the fast graph derived from its weights
    # (tf_model/fast.py). The detector is exported as it is: its temperature-0.1
    # softmax turns any change of rounding into keypoint error; its figures and its share of
    # a frame: docs/design.md, "Rewrites". TFLite gets it with its convolutions summed in
    # chunks (export.tflite.tflite_sources).
    _, fast_generator = fast_models(kp_detector, generator)
    functions = model_functions(spec, kp_detector, fast_generator)
    layers = layer_parity(spec, checkpoint, kp_detector, functions["process_kp_driving"][0],
                          generator)
    progress.step(f"per-layer parity vs torch: {verdict(layers)}")
    reports = {"layers": layers}
    if not layers.passed:
        fail(final, reports, ParityFailed)

    metadata = model_metadata(spec, version, _checkpoint_info(checkpoint, weights),
                              checkpoint.synthetic)
    reference = load_backend("torch", spec=spec, checkpoint=checkpoint)
    tmp = stage.bundle
    exports = _Exports(spec, checkpoint, functions, kp_detector, metadata, tmp, stage.scratch,
                       formats)
    for name in formats:
        EXPORTERS[FORMATS[name].kind](exports, FORMATS[name], progress)
    for name in formats:
        fmt = FORMATS[name]
        check_format(tmp, spec, name)  # our own files pass the gate users' bundles pass
        candidate = load_backend(name, spec=spec, bundle=tmp)
        reports[name] = format_parity(reference, candidate, spec.frame_shape, fmt.precision)
        progress.step(f"end-to-end parity {name} ({fmt.precision}): {verdict(reports[name])}")
    if not all(r.passed for r in reports.values()):
        fail(final, reports, ParityFailed)
    quality = {}
    if "tflite-int8" in formats and "tflite" in formats:
        quality["tflite-int8"] = int8_quality(spec, tmp)
        progress.step("int8 vs float32 TFLite: PSNR {psnr_db_mean:.1f} dB mean, "
                      "{psnr_db_min:.1f} min; keypoint drift {keypoint_drift_max:.1e}"
                      .format(**quality["tflite-int8"]))
    write_reports(tmp, reports, weight_reports,
                  [FORMATS[f] for f in formats if FORMATS[f].kind == "tflite"], MODELS)
    return reports, quality


def int8_quality(spec, bundle: Path) -> dict:
    """int8 against float32 TFLite on the demo's drawn face (8 frames), for the manifest;
    `fomm-convert bench --quality-media` measures it on real media."""
    from ..fixtures import demo_inputs
    from ..parity.quality import variant_quality
    from ..runtime import load_backend
    backends = [load_backend(name, spec=spec, bundle=bundle) for name in ("tflite", "tflite-int8")]
    quality = variant_quality(spec, *backends, *demo_inputs(spec.frame_shape, 8))
    return {"inputs": "the demo's drawn face, 8 frames",
            **{k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in quality.items()}}
