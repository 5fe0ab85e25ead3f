"""FOMM's model work in `build` (the family interface's `convert`): the TF graph through
the weight table, per-layer parity against the torch reference, every format exported and
checked end to end against it; a checkpoint that does not fit, explained; the weight
table's and the per-layer reports for `inspect --checkpoint` and `parity`."""
from __future__ import annotations

from ..formats import Format
from ..parity.end_to_end import format_parity
from ..pipeline.build import ParityFailed
from ..pipeline.exports import TF_EXPORTERS, Exports, export_and_check, finish
from ..pipeline.misfit import misfit
from ..pipeline.reports import fail, verdict


def _export_onnx(exports: Exports, fmt: Format, progress):
    from ..export.onnx import export_onnx
    export_onnx(exports.spec, exports.checkpoint, exports.root / "onnx", exports.metadata)
    progress.step("ONNX written")


def _export_executorch(exports: Exports, fmt: Format, progress):
    from ..export.executorch import export_executorch
    from ..formats import EXECUTORCH_FOLDER
    export_executorch(exports.spec, exports.checkpoint, exports.root / EXECUTORCH_FOLDER,
                      exports.metadata)
    progress.step("ExecuTorch written")


EXPORTERS = {**TF_EXPORTERS, "onnx": _export_onnx, "executorch": _export_executorch}


def make(spec, checkpoint, info: dict, formats, version, final, stage, progress):
    """The model work of `build` (pipeline/build.py): TF graph, per-layer parity, every
    format exported into the staged bundle and checked end to end, its reports written.
    info: the manifest's record of the checkpoint. Returns (reports, quality)."""
    from ..export.metadata import model_metadata
    from ..export.tflite import static_tflite_sources, tflite_sources
    from ..parity.layers import layer_parity
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
    exports = Exports(
        spec, checkpoint, functions, metadata, stage.bundle, stage.scratch, formats,
        lambda saved, scratch: tflite_sources(spec, saved, kp_detector, scratch),
        lambda scratch: static_tflite_sources(spec, kp_detector,
                                              functions["generator"][0], scratch))
    reports.update(export_and_check(EXPORTERS, exports, reference(spec, checkpoint),
                                    format_parity, progress))
    return finish(exports, final, reports, weight_reports, progress)


def reference(spec, checkpoint):
    """The backend every format is held to end to end: the torch reference."""
    from ..runtime import load_backend
    return load_backend("torch", spec=spec, checkpoint=checkpoint)


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
