"""FOMM's model work in `build` (the family interface's `convert`): the TF graph through
the weight table, per-layer parity against the torch reference, every format exported and
checked end to end against it; a checkpoint that does not fit, explained; the weight
table's and the per-layer reports for `inspect --checkpoint` and `parity`."""
from __future__ import annotations

from pathlib import Path

from ..families import family_of
from ..formats import FORMATS, Format
from ..pipeline.build import ParityFailed
from ..pipeline.misfit import explain_misfit
from ..pipeline.reports import fail, verdict, write_reports
from ..signatures import MODELS


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
                  static=fmt.static, family=family_of(exports.spec))
    progress.step(f"TFLite {fmt.precision}{' static' if fmt.static else ''} written")


def _export_onnx(exports: _Exports, fmt: Format, progress):
    from ..export.onnx import export_onnx
    export_onnx(exports.spec, exports.checkpoint, exports.root / "onnx", exports.metadata)
    progress.step("ONNX written")


EXPORTERS = {"savedmodel": _export_savedmodel, "tflite": _export_tflite, "onnx": _export_onnx}



def make(spec, checkpoint, info: dict, formats, version, final, stage, progress):
    """The model work of `build` (pipeline/build.py): TF graph, per-layer parity, every
    format exported into the staged bundle and checked end to end, its reports written.
    info: the manifest's record of the checkpoint. Returns (reports, quality)."""
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

    metadata = model_metadata(spec, version, info, checkpoint.synthetic)
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
    from ..animation.jobs import animation_mode
    from ..parity.quality import variant_quality
    from ..runtime import load_backend
    backends = [load_backend(name, spec=spec, bundle=bundle) for name in ("tflite", "tflite-int8")]
    quality = variant_quality(animation_mode(spec), *backends,
                              *demo_inputs(spec.frame_shape, 8))
    return {"inputs": "the demo's drawn face, 8 frames",
            **{k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in quality.items()}}


def misfit(error: BaseException, spec, checkpoint_path):
    """A one-line CheckpointMisfit for a weight-table error of `build`, else None."""
    from ..tf_model.weights import WeightTableError
    return explain_misfit(error, spec, checkpoint_path) \
        if isinstance(error, WeightTableError) else None


def weight_reports(spec, checkpoint) -> dict:
    """{network: the weight table's report} of a checkpoint for a spec (inspect)."""
    from ..tf_model.weights import build_tf_models
    return build_tf_models(spec, checkpoint, return_reports=True)[2]


def layer_report(spec, checkpoint):
    """The TF graph's per-layer parity against the torch reference (`parity`)."""
    from ..parity.layers import layer_parity
    from ..tf_model.process_kp import ProcessKpDriving
    from ..tf_model.weights import build_tf_models
    kp_detector, generator = build_tf_models(spec, checkpoint)
    return layer_parity(spec, checkpoint, kp_detector,
                        ProcessKpDriving(spec.num_kp, spec.estimate_jacobian), generator)
