"""What every family's `convert` shares once its TF graph is built: the SavedModel and
TFLite exporters, and each format's files through the gate users' bundles pass and end
to end against the torch reference.

A family gives its signature functions and how its TFLite files' SavedModels are made
(FOMM's detector is re-exported with its convolutions summed in chunks; TPSMM's files
are converted from the SavedModels as they are), and its own end-to-end stages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..families import family_of
from ..formats import FORMATS, Format
from .reports import fail, verdict, write_reports

# (SavedModel folder of the dynamic-batch models, scratch folder) -> the TFLite files'
# sources ({model: SavedModel folder}, or one folder holding <model>/ each).
Sources = Callable[[Path, Path], object]


class Exports:
    """What the exporters share within one build: the TF functions, the metadata, the
    bundle being staged and scratch space; the SavedModels and the TFLite sources are
    made once, when the first format needs them.

    tflite_sources: the dynamic files' sources from the SavedModels; static_sources:
    (scratch) -> the batch-1 files' sources."""

    def __init__(self, spec, checkpoint, functions, metadata, root: Path, scratch: Path,
                 formats, tflite_sources: Sources, static_sources: Callable[[Path], object],
                 weights=None):
        self.spec, self.checkpoint, self.functions = spec, checkpoint, functions
        # Each network's weights as the exported graph holds them, which the float16 files
        # store as float16 (export/tflite_reduced.py finds them by value): the checkpoint's
        # unless the exported graph rewrote them (TPSMM's Winograd and phase kernels).
        self.weights = checkpoint.networks if weights is None else weights
        self.metadata, self.root, self.scratch, self.formats = metadata, root, scratch, formats
        self._make_sources, self._make_static = tflite_sources, static_sources
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
            self._tflite_sources = self._make_sources(self.savedmodels(progress),
                                                      self.scratch / "tflite-savedmodel")
        return self._tflite_sources

    def static_tflite_sources(self, progress):
        if self._static_sources is None:
            self._static_sources = self._make_static(self.scratch / "tflite-static-savedmodel")
            progress.step("batch-1 SavedModels written (scratch)")
        return self._static_sources


def export_savedmodel(exports: Exports, fmt: Format, progress):
    exports.savedmodels(progress)


def export_tflite(exports: Exports, fmt: Format, progress):
    from ..export.tflite import export_tflite as write
    sources = (exports.static_tflite_sources if fmt.static else exports.tflite_sources)
    write(sources(progress), exports.root / "tflite", fmt.precision, exports.metadata,
          static=fmt.static, family=family_of(exports.spec),
          networks=exports.weights, cache=exports.scratch / "tflite-float32")
    progress.step(f"TFLite {fmt.precision}{' static' if fmt.static else ''} written")


# The exporters of the TF formats, by format kind.
TF_EXPORTERS = {"savedmodel": export_savedmodel, "tflite": export_tflite}


def export_and_check(exporters: dict, exports: Exports, reference, format_parity,
                     progress) -> dict:
    """Export every format of the build, then hold each format's files to the gate users'
    bundles pass and to the reference end to end under its precision's tolerances:
    {format: ParityReport}. format_parity(reference, candidate, frame_shape, profile)."""
    from ..bundle.models_check import check_format
    from ..runtime import load_backend

    spec, root = exports.spec, exports.root
    for name in exports.formats:
        exporters[FORMATS[name].kind](exports, FORMATS[name], progress)
    reports = {}
    for name in exports.formats:
        fmt = FORMATS[name]
        check_format(root, spec, name)  # our own files pass the gate users' bundles pass
        candidate = load_backend(name, spec=spec, bundle=root)
        reports[name] = format_parity(reference, candidate, spec.frame_shape, fmt.precision)
        progress.step(f"end-to-end parity {name} ({fmt.precision}): "
                      f"{verdict(reports[name])}")
    return reports


def finish(exports: Exports, final: Path, reports: dict, weight_reports: dict,
           progress) -> tuple[dict, dict]:
    """After export_and_check: a failed report raises ParityFailed (leaving it beside
    `final`); else the int8 quality (when built) and the reports are written into the
    staged bundle. Returns (reports, quality) for build."""
    from .build import ParityFailed
    if not all(r.passed for r in reports.values()):
        fail(final, reports, ParityFailed)
    quality = int8_quality(exports.spec, exports.root, exports.formats, progress)
    write_reports(exports.root, reports, weight_reports,
                  [FORMATS[f] for f in exports.formats if FORMATS[f].kind == "tflite"],
                  family_of(exports.spec).models)
    return reports, quality


def int8_quality(spec, bundle: Path, formats, progress) -> dict:
    """{"tflite-int8": int8 against float32 TFLite on the demo's drawn face (8 frames)}
    for the manifest when the build made both (else {}); `fomm-convert bench
    --quality-media` measures it on real media."""
    if not {"tflite-int8", "tflite"} <= set(formats):
        return {}
    from ..animation.jobs import animation_mode
    from ..fixtures import demo_inputs
    from ..parity.quality import variant_quality
    from ..runtime import load_backend
    backends = [load_backend(name, spec=spec, bundle=bundle) for name in ("tflite", "tflite-int8")]
    quality = variant_quality(animation_mode(spec), *backends,
                              *demo_inputs(spec.frame_shape, 8))
    progress.step("int8 vs float32 TFLite: PSNR {psnr_db_mean:.1f} dB mean, "
                  "{psnr_db_min:.1f} min; keypoint drift {keypoint_drift_max:.1e}"
                  .format(**quality))
    return {"tflite-int8": {"inputs": "the demo's drawn face, 8 frames",
                            **{k: float(f"{v:.4g}") if isinstance(v, float) else v
                               for k, v in quality.items()}}}
