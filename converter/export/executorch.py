"""ExecuTorch export of the FOMM models from the torch reference: one .pte per signature.

Route: torch.export of the ONNX export's wrappers (onnx_signatures.py: the signatures
leaf's names and order, NHWC float32 at the edges), lowered with the XNNPACK partitioner
(float32; what XNNPACK does not take, grid_sampler_2d among them, stays on ExecuTorch's
portable kernels) and serialised as a program with two methods: `forward`, the signature,
and formats.EXECUTORCH_METADATA_METHOD, a constant method returning the caller's metadata
as a JSON string.

The keypoint detector's convolutions over more than CHANNELS input channels are summed in
CHANNELS-channel slices, added pairwise (chunked_convs), as the TFLite export's are
(tf_model/accumulation.py): XNNPACK sums each output over all cin*kh*kw terms in one float32
chain, and the temperature-0.1 softmax turns that into keypoints off by more than 1e-5 on
vox-256 (oracle weights: 1.5e-5 from the torch reference, which the build's gate refused;
2.5e-5 from the oracle, 9.9e-6 sliced).

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
from torch import nn

from ..algebra import pairwise_sum
from ..formats import EXECUTORCH_METADATA_METHOD, executorch_files
from ..extras import quiet_imports
from ..families import family_of
from ..io import write_atomic
from ..spec import Spec
from .onnx import exported_models
from .onnx_accumulation import CHANNELS
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


class ChunkedConv2d(nn.Module):
    """A Conv2d as the sum of convolutions over `chunk` of its input channels each (weights
    copied into one Conv2d per slice, the bias in the first), the partial sums added
    pairwise: each output a chain of at most chunk*kh*kw terms, then a balanced tree."""

    def __init__(self, conv: nn.Conv2d, chunk: int):
        super().__init__()
        weight = conv.weight.detach()
        self.starts = list(range(0, conv.in_channels, chunk))
        self.parts = nn.ModuleList()
        for i, start in enumerate(self.starts):
            part = nn.Conv2d(weight[:, start:start + chunk].shape[1], conv.out_channels,
                             conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                             bias=i == 0 and conv.bias is not None,
                             padding_mode=conv.padding_mode)
            part.weight.data = weight[:, start:start + chunk].clone()
            if part.bias is not None:
                part.bias.data = conv.bias.detach().clone()
            self.parts.append(part)

    def forward(self, x):
        return pairwise_sum([part(x[:, start:start + part.in_channels])
                             for start, part in zip(self.starts, self.parts)])


def chunked_convs(module: nn.Module, chunk: int = CHANNELS) -> nn.Module:
    """Replace in place every ungrouped Conv2d of more than `chunk` input channels by its
    ChunkedConv2d; returns the module."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d) and child.groups == 1 and child.in_channels > chunk:
            setattr(module, name, ChunkedConv2d(child, chunk))
        else:
            chunked_convs(child, chunk)
    return module


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
    kp_detector, generator = exported_models(spec, checkpoint)
    for sig in onnx_signatures(spec, chunked_convs(kp_detector), generator):
        path = out_dir / names[sig.model, sig.signature]
        write_atomic(path, to_pte(sig, metadata.get(sig.stem, metadata.get(sig.model, {}))))
        paths[sig.stem] = path
    return paths
