"""TPSMM's model work in `build` (the family interface's `convert`): the TF graph through
its weight table, per-layer parity against the torch reference (every module of the
original), the TF formats exported and checked end to end against it (tpsmm/parity.py,
run_stages); a checkpoint that does not fit, explained; the weight table's and the
per-layer reports for `inspect --checkpoint` and `parity`.

ONNX comes from the torch reference (tpsmm/onnx_export.py), as FOMM's does, without
FOMM's rewrites. The SavedModels, and the TFLite files converted from them, hold the
exported graph (tpsmm/tf_model/fast.py: FOMM's Winograd and phase-conv rewrites on the
dense motion and inpainting decoders, as FOMM's generator, and the AVD network's wide
linear layers summed in slices); the detector's graph is the same in both (its chunked
sums and double-float head are in the reference graph: tpsmm/tf_model/resnet.py,
keypoint_head.py).
"""
from __future__ import annotations

from ..pipeline.build import ParityFailed
from ..pipeline.exports import TF_EXPORTERS, Exports, export_and_check, finish
from ..pipeline.misfit import misfit
from ..pipeline.reports import fail, verdict



def _export_onnx(exports: Exports, fmt, progress):
    from .onnx_export import export_onnx
    export_onnx(exports.spec, exports.checkpoint, exports.metadata, exports.root / "onnx")
    progress.step("ONNX written")


EXPORTERS = {**TF_EXPORTERS, "onnx": _export_onnx}


def make(spec, checkpoint, info: dict, formats, version, final, stage, progress):
    """The model work of `build` (pipeline/build.py), as FOMM's (fomm/convert.py).
    Returns (reports, quality)."""
    from ..export.metadata import model_metadata
    from ..export.savedmodel import export_savedmodels
    from .tf_model import build_tf_models
    from .tf_model.fast import exported_weights, fast_models
    from .tf_model.functions import model_functions

    progress.step(f"{spec.name} {version}: {checkpoint.path.name}"
                  f"{' (SYNTHETIC weights)' if checkpoint.synthetic else ''}; ignored entries: "
                  f"{', '.join(checkpoint.ignored) or 'none'}")
    params = spec.model_params()
    models, weight_reports = build_tf_models(params, checkpoint.networks, return_reports=True)
    progress.step("weight table: " + "; ".join(r.summary() for r in weight_reports.values()))
    layers = _layer_parity(spec, checkpoint, models)
    progress.step(f"per-layer parity vs torch: {verdict(layers)}")
    reports = {"layers": layers}
    if not layers.passed:
        fail(final, reports, ParityFailed)

    # Per-layer parity ran on the reference-structured graph; the exported one is derived
    # from its weights (fast_models), held to the same end-to-end gates.
    exported = fast_models(models, spec.frame_shape)
    functions = model_functions(exported, params, spec.frame_shape)
    exports = Exports(
        spec, checkpoint, functions, model_metadata(spec, version, info, checkpoint.synthetic),
        stage.bundle, stage.scratch, formats, lambda saved, scratch: saved,
        lambda scratch: export_savedmodels(
            model_functions(exported, params, spec.frame_shape, batch=1), scratch),
        weights=exported_weights(exported))
    held_to = reference(spec, checkpoint)
    held_to.stages(spec.frame_shape)  # the gates' reference: minutes at 256x256, so said
    progress.step("torch reference end to end (float64 and float32) computed")
    reports.update(export_and_check(EXPORTERS, exports, held_to, format_parity, progress))
    return finish(exports, final, reports, weight_reports, progress)


def reference(spec, checkpoint):
    """What every format is held to end to end (tpsmm/parity.py, Reference): the torch
    reference computed in float64, and the original's own float32 arithmetic, whose
    distance to float64 bounds what the gate can ask (docs/design.md, "Parity")."""
    import torch
    from .parity import Reference
    from .runtime.torch_backend import TorchBackend
    return Reference(TorchBackend(spec, checkpoint, dtype=torch.float64),
                     TorchBackend(spec, checkpoint))


def format_parity(reference, candidate, frame_shape, profile: str):
    """A format's backend against the reference, end to end (tpsmm/parity.py)."""
    from .parity import format_parity as parity
    return parity(reference, candidate, frame_shape, profile)


def _layer_parity(spec, checkpoint, models):
    from ..fixtures import fixed_inputs
    from .parity import layer_parity
    source, driving = fixed_inputs(spec.frame_shape)
    return layer_parity(spec.model_params(), checkpoint.networks, models, source, driving)


def weight_reports(spec, checkpoint) -> dict:
    """{network: the weight table's report} of a checkpoint for a spec (inspect)."""
    from .tf_model import build_tf_models
    return build_tf_models(spec.model_params(), checkpoint.networks, return_reports=True)[1]


def layer_report(spec, checkpoint):
    """The TF graph's per-layer parity against the torch reference (`parity`)."""
    from .tf_model import build_tf_models
    return _layer_parity(spec, checkpoint,
                         build_tf_models(spec.model_params(), checkpoint.networks))
