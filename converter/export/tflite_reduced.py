"""Reduced-precision weights for the chosen networks only: a float32 .tflite file with the
constants holding given weights stored as float16 or int8.

    flatbuffer = reduced_weights(float32_flatbuffer, weights, "fp16")   # weights: arrays

TFLite's own passes (export/tflite.py, convert_savedmodel "fp16" / "int8") reduce every
float constant of a file: biases, normalisation factors, TPS regularisation, everything a
network needs at float32 precision (and the int8 one computes with int8 activations).
Here the file is the float32 conversion, and a constant is reduced only when its values
are those of one of `weights` (the same numbers in any order: the converter transposes
kernels) or of one of its slices along the two leading axes (a Winograd kernel's
matrices), so anything the converter folded or derived, and every weight not given,
stays float32 (a constant holding the same numbers as a given weight, such as a zero
bias, is stored alike). Each chosen constant is read by a DEQUANTIZE op into the float32
tensor its consumers read, so every op computes in float32 as before; XNNPACK widens
such constants once, at load. The storages (STORAGES):

- fp16: every given weight as FLOAT16 (the converter's own float16 layout);
- int8: the given kernels (weights of two or more axes; biases and normalisation factors
  stay float32, as in the converter's int8 pass) as INT8, symmetric per output channel:
  a scale per channel (its largest magnitude / 127) and zero point 0 on the tensor, the
  axis the one the consuming convolution reads as its output channels.

Build time only: TF's schema classes. Deterministic: the same file and weights give the
same bytes.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

from .tflite_file import packed
from .tflite_graph import FLOAT16, FLOAT32, INT8
DEQUANTIZE = 6  # schema BuiltinOperator
# The versions of DEQUANTIZE (the converter's, lite/tools/versioning/op_version.cc).
DEQUANTIZE_FLOAT16_VERSION = 3
DEQUANTIZE_INT8_VERSIONS = {False: 2, True: 5}  # per tensor, per channel
# Output-channel axis of the kernel a convolution reads as its input 1 (TFLite layouts:
# CONV_2D [O, H, W, I], DEPTHWISE_CONV_2D [1, H, W, O], FULLY_CONNECTED [O, I]).
OUTPUT_AXIS = {3: 0, 4: 3, 9: 0}  # schema BuiltinOperator -> axis
INT8_LIMIT = 127  # symmetric: -127..127, zero point 0


def _fingerprint(values) -> bytes:
    """Of an array's float32 values as a multiset: the same for any order or shape."""
    flat = np.sort(np.asarray(values, np.float32).ravel() + np.float32(0))  # -0 as 0
    return hashlib.sha256(flat.tobytes()).digest()


def reduced_weights(flatbuffer: bytes, weights: Iterable[np.ndarray], precision: str) -> bytes:
    """The float32 model with every constant float32 tensor whose values are one of
    `weights` (int8: of its kernels) stored in `precision` (fp16, int8) and dequantized
    at load (module docstring)."""
    from tensorflow.lite.python import schema_py_generated as schema

    if precision not in STORAGES:
        raise ValueError(f"unknown storage {precision!r} (known: {', '.join(STORAGES)})")
    weights = [w for w in map(np.asarray, weights) if precision == "fp16" or w.ndim > 1]
    # Each weight whole, and its slices w[i, j] along the two leading axes: a Winograd
    # kernel [a, a, I, O] is read as a*a matrices (tf_model/winograd.py), each a constant.
    weights = [part for w in weights
               for part in [w, *(w.reshape(-1, *w.shape[2:]) if w.ndim > 2 else ())]]
    chosen, sizes = {_fingerprint(w) for w in weights}, {w.size for w in weights}
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    # buffers a tensor of another type reads too stay as they are
    shared = {t.buffer for graph in model.subgraphs for t in graph.tensors
              if t.type != FLOAT32}
    found = set()  # buffer indices
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            if (tensor.type != FLOAT32 or data is None or len(data) == 0
                    or tensor.buffer in found or tensor.buffer in shared):
                continue
            if len(data) // 4 not in sizes:  # sorting every constant is the slow part
                continue
            values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32)
            if _fingerprint(values) in chosen:
                found.add(tensor.buffer)
    if not found:
        raise ValueError("none of the weights is a constant of the file")
    STORAGES[precision](model, schema, found)
    return packed(model, schema, len(flatbuffer))


def _float16(model, schema, found: set) -> None:
    """The chosen buffers as float16, each tensor reading one behind a DEQUANTIZE."""
    for index in found:
        model.buffers[index].data = np.frombuffer(_values(model, index).astype(
            np.float16).tobytes(), np.uint8)
    dequantize = _opcode(model, schema, DEQUANTIZE_FLOAT16_VERSION)
    _dequantized(model, schema, found, lambda graph, tensor: (FLOAT16, None, dequantize))


def _int8(model, schema, found: set) -> None:
    """The chosen buffers as int8 per output channel of the convolution reading them (a
    ValueError when another op reads one, or two read it along different axes)."""
    axes = {}  # buffer -> output-channel axis
    for graph in model.subgraphs:
        for op in graph.operators:
            for position, t in enumerate(op.inputs):
                buffer = graph.tensors[t].buffer if t >= 0 else None
                if buffer not in found:
                    continue
                code = model.operatorCodes[op.opcodeIndex]
                builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
                axis = OUTPUT_AXIS.get(builtin) if position == 1 else None
                if axis is None or axes.setdefault(buffer, axis) != axis:
                    raise ValueError(f"tensor {graph.tensors[t].name.decode()}: a weight "
                                     f"read as other than a convolution's kernel (op "
                                     f"{builtin}, input {position})")
    quantized = {}  # buffer -> (scales, the axis)
    for index in found:
        if index not in axes:
            raise ValueError(f"buffer {index}: a weight no op reads")
        values = _values(model, index)
        shape = next(t.shape for g in model.subgraphs for t in g.tensors if t.buffer == index)
        kernel = np.moveaxis(values.reshape(shape), axes[index], 0)
        largest = np.abs(kernel.reshape(len(kernel), -1)).max(axis=1)
        scales = np.where(largest > 0, largest / INT8_LIMIT, 1).astype(np.float32)
        steps = scales.reshape(-1, *[1] * (kernel.ndim - 1))
        codes = np.clip(np.rint(kernel / steps), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
        model.buffers[index].data = np.frombuffer(
            np.moveaxis(codes, 0, axes[index]).tobytes(), np.uint8)
        quantized[index] = scales, axes[index]
    codes = {per: _opcode(model, schema, version)
             for per, version in DEQUANTIZE_INT8_VERSIONS.items()}

    def storage(graph, tensor):
        scales, axis = quantized[tensor.buffer]
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(map(float, scales)), [0] * len(
            scales), axis
        return INT8, q, codes[len(scales) > 1]
    _dequantized(model, schema, found, storage)


def _values(model, index) -> np.ndarray:
    return np.frombuffer(np.asarray(model.buffers[index].data, np.uint8).tobytes(),
                         np.float32)


def _dequantized(model, schema, found: set, storage) -> None:
    """Each float32 tensor of a chosen buffer written by a DEQUANTIZE, first in its
    subgraph, of a new tensor holding the buffer: storage(graph, tensor) -> (its type,
    its quantization or None, the DEQUANTIZE's operator code index)."""
    for graph in model.subgraphs:
        reads = []
        for index, tensor in enumerate(list(graph.tensors)):
            if tensor.type != FLOAT32 or tensor.buffer not in found:
                continue
            stored = schema.TensorT()
            stored.type, stored.quantization, opcode = storage(graph, tensor)
            stored.shape, stored.buffer = tensor.shape, tensor.buffer
            suffix = b"fp16" if stored.type == FLOAT16 else b"int8"
            stored.name = tensor.name + b"_" + suffix if tensor.name else suffix
            tensor.buffer = 0  # written by the DEQUANTIZE below
            op = schema.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = opcode, [len(graph.tensors)], [index]
            graph.tensors.append(stored)
            reads.append(op)
        graph.operators = reads + list(graph.operators)


def _opcode(model, schema, version: int) -> int:
    """The index of the file's DEQUANTIZE operator code of `version`, added if missing."""
    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == DEQUANTIZE and code.version == version:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = DEQUANTIZE
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


STORAGES = {"fp16": _float16, "int8": _int8}
