"""Float16 weights for the chosen networks only: a float32 .tflite file with the constants
holding given weights stored as float16.

    flatbuffer = float16_weights(float32_flatbuffer, weights)   # weights: arrays

TFLite's float16 pass (export/tflite.py, convert_savedmodel "fp16") rounds every float
constant of a file: biases, normalisation factors, TPS regularisation, everything a
network needs at float32 precision. Here the file is the float32 conversion, and a
constant is stored as float16 only when its values are those of one of `weights` (the
same numbers in any order: the converter transposes kernels) or of one of its slices
along the two leading axes (a Winograd kernel's matrices), so anything the converter
folded or derived, and every weight not given, stays float32 (a constant holding the
same numbers as a given weight, such as a zero bias, is stored alike). Each chosen constant gets
the converter's own float16 layout: a FLOAT16 tensor read by a DEQUANTIZE op into the
float32 tensor its consumers read, which XNNPACK and the GPU delegates widen once, at
load. Build time only: TF's schema classes. Deterministic: the same file and weights give
the same bytes.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

from .tflite_file import packed

FLOAT32, FLOAT16 = 0, 1  # schema TensorType
DEQUANTIZE = 6  # schema BuiltinOperator
# The version of DEQUANTIZE taking float16 (the converter's, lite/tools/versioning).
DEQUANTIZE_FLOAT16_VERSION = 3


def _fingerprint(values) -> bytes:
    """Of an array's float32 values as a multiset: the same for any order or shape."""
    flat = np.sort(np.asarray(values, np.float32).ravel() + np.float32(0))  # -0 as 0
    return hashlib.sha256(flat.tobytes()).digest()


def float16_weights(flatbuffer: bytes, weights: Iterable[np.ndarray]) -> bytes:
    """The float32 model with every constant float32 tensor whose values are one of
    `weights` stored as float16 and dequantized at load (module docstring)."""
    from tensorflow.lite.python import schema_py_generated as schema

    # Each weight whole, and its slices w[i, j] along the two leading axes: a Winograd
    # kernel [a, a, I, O] is read as a*a matrices (tf_model/winograd.py), each a constant.
    weights = [part for w in map(np.asarray, weights)
               for part in [w, *(w.reshape(-1, *w.shape[2:]) if w.ndim > 2 else ())]]
    chosen, sizes = {_fingerprint(w) for w in weights}, {w.size for w in weights}
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    # buffers a tensor of another type reads too stay as they are
    shared = {t.buffer for graph in model.subgraphs for t in graph.tensors
              if t.type != FLOAT32}
    halved = {}  # buffer index -> its values as float16
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            if (tensor.type != FLOAT32 or data is None or len(data) == 0
                    or tensor.buffer in halved or tensor.buffer in shared):
                continue
            if len(data) // 4 not in sizes:  # sorting every constant is the slow part
                continue
            values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32)
            if _fingerprint(values) in chosen:
                halved[tensor.buffer] = values.astype(np.float16)
    if not halved:
        raise ValueError("none of the weights is a constant of the file")
    for index, values in halved.items():
        model.buffers[index].data = np.frombuffer(values.tobytes(), np.uint8)
    dequantize = _opcode(model, schema)
    for graph in model.subgraphs:
        reads = []
        for index, tensor in enumerate(list(graph.tensors)):
            if tensor.type != FLOAT32 or tensor.buffer not in halved:
                continue
            half = schema.TensorT()
            half.shape, half.type, half.buffer = tensor.shape, FLOAT16, tensor.buffer
            half.name = tensor.name + b"_fp16" if tensor.name else b"fp16"
            tensor.buffer = 0  # written by the DEQUANTIZE below
            op = schema.OperatorT()
            op.opcodeIndex, op.inputs, op.outputs = dequantize, [len(graph.tensors)], [index]
            graph.tensors.append(half)
            reads.append(op)
        graph.operators = reads + list(graph.operators)
    return packed(model, schema, len(flatbuffer))


def _opcode(model, schema) -> int:
    """The index of the file's DEQUANTIZE (float16) operator code, added if missing."""
    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == DEQUANTIZE and code.version == DEQUANTIZE_FLOAT16_VERSION:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = DEQUANTIZE
    code.version = DEQUANTIZE_FLOAT16_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1
