"""ExecuTorch export of the FOMM models from the torch reference: one .pte per signature.

Route: torch.export of the ONNX export's wrappers (onnx_signatures.py: the signatures
leaf's names and order, NHWC float32 at the edges), lowered with the XNNPACK partitioner
(float32; what XNNPACK does not take, grid_sampler_2d among them, stays on ExecuTorch's
portable kernels) and serialised as a program with two methods: `forward`, the signature,
and formats.EXECUTORCH_METADATA_METHOD, a constant method returning the caller's metadata
as a JSON string.

Every batch dimension is 1 (formats.FORMATS: static): torch.export specialises a batch-1
example, and one graph cannot both broadcast a source batch of 1 and take a source batch of
N; the backend calls the files once per example (runtime.batching), as the static TFLite
files are called. Files are written atomically into DIR/executorch/
(formats.executorch_files).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..formats import EXECUTORCH_METADATA_METHOD, executorch_files
from ..extras import quiet_imports
from ..families import family_of
from ..io import write_atomic
from ..spec import Spec
from .onnx import exported_models
from .onnx_signatures import OnnxSignature, example_inputs, onnx_signatures


def frozen_parameters(module: torch.nn.Module) -> None:
    """Make every buffer a frozen parameter, with its own storage where it had a zero
    stride (numpy's new axes: the fast twin's batch-norm scale and shift; ExecuTorch refuses
    zero strides). ExecuTorch drops the parameters a graph does not use, not the buffers:
    as buffers, the whole generator's weights went into encode_source's file too."""
    for sub in module.modules():
        for name, buffer in list(sub._buffers.items()):
            if buffer is None:
                continue
            if 0 in buffer.stride():
                buffer = buffer.clone(memory_format=torch.contiguous_format)
            del sub._buffers[name]
            sub.register_parameter(name, torch.nn.Parameter(buffer, requires_grad=False))


def to_pte(sig: OnnxSignature, metadata: dict) -> bytes:
    """Export, lower to XNNPACK and serialise one signature at batch 1."""
    quiet_imports("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    frozen_parameters(sig.module)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.export's notes on what it specialises
        program = torch.export.export(sig.module, example_inputs(sig.contract, 1),
                                      strict=False)
        edge = to_edge_transform_and_lower(
            program, partitioner=[XnnpackPartitioner()],
            constant_methods={EXECUTORCH_METADATA_METHOD:
                              json.dumps(metadata, sort_keys=True, ensure_ascii=False)})
        return bytes(edge.to_executorch().buffer)


def export_executorch(spec: Spec, checkpoint, out_dir: Path, metadata: dict[str, dict]
                      ) -> dict[str, Path]:
    """Write the .pte files of a spec and checkpoint into out_dir; metadata as
    export.onnx.export_onnx's (a file stem's entry wins over its model's). Returns
    {file stem: path}."""
    names = executorch_files(family_of(spec))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for sig in onnx_signatures(spec, *exported_models(spec, checkpoint)):
        path = out_dir / names[sig.model, sig.signature]
        write_atomic(path, to_pte(sig, metadata.get(sig.stem, metadata.get(sig.model, {}))))
        paths[sig.stem] = path
    return paths
