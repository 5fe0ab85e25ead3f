"""ONNX export of the three FOMM models from the torch reference.

Route: torch.onnx.export (the TorchScript tracer, opset 17) of thin wrappers
(onnx_signatures.py) around the torch fast twin (converter/torch_model/fast.py). The
reference already uses a closed-form 2x2 inverse, so nothing hits aten::linalg_inv;
grid_sample becomes ONNX GridSample (opset >= 16). The TF graph is not a usable source:
tf2onnx has no GridSample handler, so our TF warp would export as gathers (docs/design.md,
"Why ONNX comes from the torch reference").

Five files (formats.onnx_file), one per signature of converter/signatures.py, with its
names, NHWC float32 at the edges, batch axis dynamic:
- kp_detector.onnx: image (B,H,W,C) -> value (B,K,2)[, jacobian (B,K,2,2)]
- process_kp_driving.onnx: kp_driving[, kp_driving_jacobian], kp_driving_initial[,
  kp_driving_initial_jacobian], kp_source[, kp_source_jacobian], use_relative_movement,
  use_relative_jacobian, adapt_movement_scale (scalars, 0.0/1.0) -> value[, jacobian]
- generator.onnx: source_image, kp_driving[, kp_driving_jacobian], kp_source[,
  kp_source_jacobian] -> prediction (B,H,W,C), mask (B,h,w,K+1), occlusion_map (B,h,w,1)
  when estimated, deformation (B,h,w,2), sparse_deformed (B,K+1,h,w,C), deformed (B,H,W,C)
- generator.encode_source.onnx: source_image -> source_features (B,H/2^n,W/2^n,F),
  source_down (B,h,w,C)
- generator.generate.onnx: source_features, source_down, kp_* -> prediction
Source-side inputs (source_image, source_features, source_down, kp_source*, and
kp_driving_initial*) may have batch 1 or kp_driving's batch; they are broadcast in-graph.
The generator's three files keep their weights in one external data file beside them,
generator.weights (onnx_weights.py: each tensor once, page-aligned): the full
generator's weights contain the other two's.
The detector's wide convolutions are running sums over slices of their input channels
(onnx_accumulation.py: OpenVINO's float32 sums).

Each file carries the caller's metadata as JSON in metadata_props[formats.METADATA_NAME]
and a readable doc_string, passes onnx.checker (full check), uses ONNX-domain ops only,
and is byte-identical for the same inputs. Files are written atomically.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import onnx
import torch

from ..formats import METADATA_NAME, ONNX_WEIGHTS_FILE, onnx_file
from ..io import write_atomic
from ..spec import Spec
from ..torch_model import build_models, load_weights
from ..torch_model.fast import fast_torch_models
from .onnx_accumulation import split_convs
from .onnx_signatures import OnnxSignature, onnx_signatures
from .onnx_weights import SharedWeights

OPSET = 17


def to_onnx(sig: OnnxSignature) -> onnx.ModelProto:
    """Trace and convert one signature (no metadata yet)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; and the tracer warns about shape values it records as it should.
        warnings.simplefilter("ignore")
        torch.onnx.export(sig.module, sig.example, buffer, dynamo=False,
                          opset_version=OPSET, input_names=list(sig.module.inputs),
                          output_names=list(sig.module.outputs),
                          dynamic_axes=sig.dynamic_axes(), do_constant_folding=True,
                          export_params=True)
    return onnx.load_model_from_string(buffer.getvalue())


def describe(sig: OnnxSignature, model: onnx.ModelProto, metadata: dict) -> str:
    """The doc_string: what the file is, then its inputs and outputs with shapes."""
    def shape(value):
        dims = value.type.tensor_type.shape.dim
        return "(" + ",".join(d.dim_param or str(d.dim_value) for d in dims) + ")"
    lines = [f"fomm-convert {sig.model} {sig.signature}"]
    if isinstance(metadata.get("description"), str):
        lines.append(metadata["description"])
    lines.append("inputs (float32, NHWC images): " + ", ".join(
        f"{v.name} {shape(v)}" for v in model.graph.input))
    lines.append("outputs: " + ", ".join(f"{v.name} {shape(v)}" for v in model.graph.output))
    lines.append(f"metadata: JSON in metadata_props['{METADATA_NAME}']")
    return "\n".join(lines)


def declare_io(sig: OnnxSignature, model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the graph's interface exactly the signature's.

    The tracer drops inputs that the graph does not use (use_relative_jacobian of a model
    without jacobians): they are put back, unused, so that every model of a format takes
    the same inputs. Its symbolic shape inference also names output dimensions wrongly
    (an image height called "batch"): outputs are declared from a run of the module, the
    batch axis symbolic and the others static, and the intermediate shape annotations are
    dropped (onnx.checker's full check infers them again, and fails on any conflict)."""
    graph = model.graph
    declared = {v.name: v for v in graph.input}
    axes = sig.dynamic_axes()
    inputs = []
    for name, example in zip(sig.module.inputs, sig.example):
        if name in declared:
            value = onnx.ValueInfoProto()
            value.CopyFrom(declared[name])
        else:
            shape = [axes[name][0], *example.shape[1:]] if name in axes else []
            value = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)
        inputs.append(value)
    unknown = set(declared) - set(sig.module.inputs)
    if unknown:
        raise ValueError(f"{sig.stem}: unexpected graph inputs {sorted(unknown)}")
    del graph.input[:]
    graph.input.extend(inputs)

    with torch.no_grad():
        results = sig.module(*sig.example)
    if [o.name for o in graph.output] != list(sig.module.outputs):
        raise ValueError(f"{sig.stem}: graph outputs {[o.name for o in graph.output]}")
    del graph.output[:]
    graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                           [axes[name][0], *result.shape[1:]])
        for name, result in zip(sig.module.outputs, results))
    del graph.value_info[:]
    return model


def finish(sig: OnnxSignature, model: onnx.ModelProto, metadata: dict) -> onnx.ModelProto:
    """Fix the interface, attach metadata and doc_string, name the graph, validate."""
    declare_io(sig, model)
    model.graph.name = sig.stem
    model.doc_string = describe(sig, model, metadata)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = METADATA_NAME
    entry.value = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    onnx.checker.check_model(model, full_check=True)
    foreign = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node
                      if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ValueError(f"{sig.stem}: non-standard ops {foreign}")
    return model


def op_types(model: onnx.ModelProto) -> list[str]:
    return sorted({n.op_type for n in model.graph.node})


def export_onnx(spec: Spec, checkpoint, out_dir: Path, metadata: dict[str, dict]
                ) -> dict[str, Path]:
    """Write the five ONNX files of a spec and checkpoint into out_dir.

    checkpoint: a fomm_convert.checkpoint.Checkpoint (or a path to one). metadata maps a
    model name (kp_detector, process_kp_driving, generator) or a file stem
    (generator.encode_source, ...) to a JSON-able dict; a stem's entry wins over its
    model's. Returns {file stem: path}.
    """
    return write_onnx(onnx_signatures(spec, *exported_models(spec, checkpoint)), out_dir,
                      metadata)


def exported_models(spec: Spec, checkpoint):
    """(kp_detector, generator) as the torch-sourced formats (ONNX, ExecuTorch) export them,
    weights loaded: checkpoint is a Checkpoint or a path to one."""
    from ..checkpoint import Checkpoint, load_checkpoint
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, family=spec.family)
    kp_detector, generator = build_models(spec)
    load_weights(kp_detector, checkpoint.kp_detector, f"{checkpoint.path}: kp_detector")
    load_weights(generator, checkpoint.generator, f"{checkpoint.path}: generator")
    # The detector stays in the reference structure, as in the TF export
    # (converter/pipeline/build.py).
    _, generator = fast_torch_models(spec, kp_detector, generator)
    return kp_detector, generator


def write_onnx(signatures: list[OnnxSignature], out_dir: Path, metadata: dict[str, dict]
               ) -> dict[str, Path]:
    """Trace, finish and write one file per signature (any family's), the generator's
    weights in one external data file beside them; metadata as export_onnx's. Returns
    {file stem: path}."""
    models = []
    for sig in signatures:
        meta = metadata.get(sig.stem, metadata.get(sig.model, {}))
        json.dumps(meta)  # fail early on anything not JSON-able
        model = to_onnx(sig)
        if sig.model == "kp_detector":
            split_convs(model)  # OpenVINO's float32 sums (onnx_accumulation.py)
        models.append((sig, finish(sig, model, meta)))
    # The generator's files hold the same weights (generate's and encode_source's are
    # subsets of the full generator's): one external data file for all of them.
    weights = SharedWeights(ONNX_WEIGHTS_FILE)
    for sig, model in models:
        if sig.model == "generator":
            weights.externalise(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / ONNX_WEIGHTS_FILE, weights.data())
    paths = {}
    for sig, model in models:
        path = out_dir / onnx_file(sig.model, sig.signature)
        write_atomic(path, model.SerializeToString(deterministic=True))
        paths[sig.stem] = path
    return paths
