"""A .tflite file's whole graph as plain data, without tensorflow.

    graph = read_graph(path)   # op codes, subgraphs (tensors, operators), buffers, signatures

Everything a runtime reads to build and run the model is read here, and every field that
this reader does not model is recorded as present (`Graph.unread`, `Operator.extras`,
`Tensor.extras`), so that a checker can refuse what it does not know rather than skip it
(bundle/models_check/tflite.py). Indices are read as they are (the checker bounds them);
every vector lies inside the file and holds at most limits.TFLITE_MAX_ENTRIES entries
(tflite_file.Table), or the file is one TFLiteFileError line. Options are read by field
(schema.fbs) for the option tables in OPTION_FIELDS; any other options table is kept by
its union type alone. Lite: flatbuffers and numpy only.
"""
from __future__ import annotations

from typing import NamedTuple

import flatbuffers

from .tflite_file import I8, I32, U32, U64, Table, model_table

BOOL8 = flatbuffers.number_types.BoolFlags
U8 = flatbuffers.number_types.Uint8Flags
F32 = flatbuffers.number_types.Float32Flags
FLOAT32, FLOAT16, INT8 = 0, 1, 9  # schema TensorType: the float types our files hold

# BuiltinOptions union type -> (its name, {option: (field, flags, default)}): the tables
# whose fields a shape rule reads (schema.fbs). Tables without fields are listed empty.
_STRIDES = {"padding": (0, I8, 0), "stride_w": (1, I32, 0), "stride_h": (2, I32, 0)}
OPTION_FIELDS = {
    1: ("Conv2DOptions", {**_STRIDES, "activation": (3, I8, 0), "dilation_w": (4, I32, 1),
                          "dilation_h": (5, I32, 1)}),
    2: ("DepthwiseConv2DOptions", {**_STRIDES, "depth_multiplier": (3, I32, 0),
                                   "activation": (4, I8, 0), "dilation_w": (5, I32, 1),
                                   "dilation_h": (6, I32, 1)}),
    5: ("Pool2DOptions", {**_STRIDES, "filter_w": (3, I32, 0), "filter_h": (4, I32, 0),
                          "activation": (5, I8, 0)}),
    8: ("FullyConnectedOptions", {"activation": (0, I8, 0), "weights_format": (1, I8, 0),
                                  "keep_num_dims": (2, BOOL8, False)}),
    9: ("SoftmaxOptions", {"beta": (0, F32, 0.0)}),
    10: ("ConcatenationOptions", {"axis": (0, I32, 0), "activation": (1, I8, 0)}),
    11: ("AddOptions", {"activation": (0, I8, 0), "pot_scale_int16": (1, BOOL8, True)}),
    15: ("ResizeBilinearOptions", {"align_corners": (2, BOOL8, False),
                                   "half_pixel_centers": (3, BOOL8, False)}),
    17: ("ReshapeOptions", {}),  # new_shape (field 0) is read as a vector below
    19: ("SpaceToDepthOptions", {"block_size": (0, I32, 0)}),
    21: ("MulOptions", {"activation": (0, I8, 0)}),
    22: ("PadOptions", {}),
    23: ("GatherOptions", {"axis": (0, I32, 0), "batch_dims": (1, I32, 0)}),
    26: ("TransposeOptions", {}),
    27: ("ReducerOptions", {"keep_dims": (0, BOOL8, False)}),
    28: ("SubOptions", {"activation": (0, I8, 0), "pot_scale_int16": (1, BOOL8, True)}),
    29: ("DivOptions", {"activation": (0, I8, 0)}),
    30: ("SqueezeOptions", {}),  # squeeze_dims (field 0) is read as a vector below
    32: ("StridedSliceOptions", {"begin_mask": (0, I32, 0), "end_mask": (1, I32, 0),
                                 "ellipsis_mask": (2, I32, 0), "new_axis_mask": (3, I32, 0),
                                 "shrink_axis_mask": (4, I32, 0), "offset": (5, BOOL8, False)}),
    33: ("ExpOptions", {}),
    37: ("CastOptions", {"in_type": (0, I8, 0), "out_type": (1, I8, 0)}),
    38: ("DequantizeOptions", {}),
    39: ("MaximumMinimumOptions", {}),
    42: ("NegOptions", {}),
    44: ("GreaterOptions", {}),
    46: ("LessEqualOptions", {}),
    47: ("SelectOptions", {}),
    51: ("TileOptions", {}),
    52: ("ExpandDimsOptions", {}),
    53: ("EqualOptions", {}),
    55: ("ShapeOptions", {"out_type": (0, I8, 0)}),
    59: ("PackOptions", {"values_count": (0, I32, 0), "axis": (1, I32, 0)}),
    60: ("LogicalOrOptions", {}),
    62: ("LogicalAndOptions", {}),
    63: ("LogicalNotOptions", {}),
    64: ("UnpackOptions", {"num": (0, I32, 0), "axis": (1, I32, 0)}),
    65: ("FloorDivOptions", {}),
    73: ("RangeOptions", {}),
    94: ("DepthToSpaceOptions", {"block_size": (0, I32, 0)}),
    98: ("SelectV2Options", {}),
    101: ("BatchMatMulOptions", {"adj_x": (0, BOOL8, False), "adj_y": (1, BOOL8, False),
                                "asymmetric_quantize_inputs": (2, BOOL8, False)}),
    104: ("BroadcastToOptions", {}),
}
# Options tables with a vector field: type -> (option name, field).
_VECTOR_OPTIONS = {17: ("new_shape", 0), 30: ("squeeze_dims", 0)}


SMALL_BUFFER = 256  # bytes of a buffer read along (the values of shape operands)


class Buffer(NamedTuple):
    size: int  # bytes of data (0: none)
    start: int  # where the data starts in the file
    external: bool  # held past the flatbuffer (offset, size) rather than in it
    both: bool = False  # inline data and an offset at once
    data: bytes | None = None  # the bytes of a buffer of at most SMALL_BUFFER inside the file


class Quantization(NamedTuple):
    scale: int  # entries of each vector
    zero_point: int
    min: int
    max: int
    dimension: int  # quantized_dimension
    details: bool  # custom quantization details (a union)


class Tensor(NamedTuple):
    name: str
    type: int
    shape: tuple
    signature: tuple | None  # shape_signature (-1: dynamic), when given
    buffer: int
    quantization: Quantization | None
    extras: tuple = ()  # fields present that no runtime path of ours uses

    @property
    def declared(self) -> tuple:
        return self.signature if self.signature is not None else self.shape


class Operator(NamedTuple):
    opcode: int  # index into Graph.codes
    inputs: tuple
    outputs: tuple
    options_type: int
    options: dict | None  # OPTION_FIELDS' values, None for an options table not listed
    extras: tuple = ()  # fields present beyond the builtin ones (custom options, ...)


class OpCode(NamedTuple):
    builtin: int  # max(deprecated_builtin_code, builtin_code), as the runtime reads it
    custom: str | None
    version: int


class SubGraph(NamedTuple):
    name: str | None
    tensors: tuple
    inputs: tuple
    outputs: tuple
    operators: tuple


class SignatureDef(NamedTuple):
    """A SignatureDef of the schema (what a file declares; signatures.Signature is the
    contract it is checked against)."""
    key: str
    subgraph: int
    inputs: tuple  # ((name, tensor index), ...)
    outputs: tuple


class Graph(NamedTuple):
    size: int  # the file's bytes
    codes: tuple
    subgraphs: tuple
    buffers: tuple
    signatures: tuple
    metadata: tuple  # ((name, buffer index), ...)
    unread: tuple = ()  # Model fields present that are not modelled


def read_graph(source) -> Graph:
    """The graph of a .tflite path (or flatbuffer bytes); TFLiteFileError if unreadable."""
    with model_table(source) as model:
        return Graph(
            size=len(model.buf),
            codes=tuple(_code(c) for c in model.tables(1)),
            subgraphs=tuple(_subgraph(s) for s in model.tables(2)),
            buffers=tuple(_buffer(b) for b in model.tables(4)),
            signatures=tuple(_signature(s) for s in model.tables(7)),
            metadata=tuple((m.string(0), m.scalar(1, U32)) for m in model.tables(6)),
            unread=_set(model, {8: VECTOR, 9: VECTOR}, ("external_buffer_groups",
                                                        "external_buffers")))


VECTOR, TABLE = "vector", "table"


def _set(table: Table, kinds: dict, names) -> tuple:
    """The names of the fields (number: VECTOR, TABLE or scalar flags) that hold something:
    a vector with entries, a table, a scalar other than 0."""
    found = []
    for (number, kind), name in zip(kinds.items(), names):
        if not table.present(number):
            continue
        if kind == VECTOR:
            held = table.length(number) > 0
        elif kind == TABLE:
            held = table.present(number)
        else:
            held = table.scalar(number, kind) != 0
        if held:
            found.append(name)
    return tuple(found)


def _code(table: Table) -> OpCode:
    return OpCode(max(table.scalar(0, I8), table.scalar(3, I32)), table.string(1),
                  table.scalar(2, I32, 1))


def _buffer(table: Table) -> Buffer:
    offset, size = table.scalar(1, U64), table.scalar(2, U64)
    inline = table.span(0)
    if inline is not None:
        start, size, external = inline[0], inline[1], False
    else:
        start, size, external = offset, size if offset > 1 else 0, offset > 1
    small = 0 < size <= SMALL_BUFFER and start + size <= len(table.buf)
    return Buffer(size, start, external, both=inline is not None and offset > 1,
                  data=bytes(table.buf[start:start + size]) if small else None)


def _signature(table: Table) -> SignatureDef:
    def tensors(number):
        return tuple((m.string(0), m.scalar(1, U32)) for m in table.tables(number))
    return SignatureDef(table.string(2), table.scalar(4, U32), tensors(0), tensors(1))


def _subgraph(table: Table) -> SubGraph:
    return SubGraph(table.string(4), tuple(_tensor(t) for t in table.tables(0)),
                    tuple(table.ints(1) or ()), tuple(table.ints(2) or ()),
                    tuple(_operator(o) for o in table.tables(3)))


def _tensor(table: Table) -> Tensor:
    quantization = table.table(4)
    signature = table.ints(7)
    return Tensor(table.string(3), table.scalar(1, I8), tuple(table.ints(0) or ()),
                  None if signature is None else tuple(signature), table.scalar(2, U32),
                  None if quantization is None else _quantization(quantization),
                  _set(table, {5: BOOL8, 6: TABLE, 9: VECTOR, 10: U32},
                       ("is_variable", "sparsity", "variant_tensors", "external_buffer")))


def _quantization(table: Table) -> Quantization:
    return Quantization(table.length(2), table.length(3), table.length(0), table.length(1),
                        table.scalar(6, I32), table.present(5))


def _operator(table: Table) -> Operator:
    kind = table.scalar(3, U8)
    options, body = None, table.table(4)
    if kind in OPTION_FIELDS:
        options = {} if body is None else {
            name: body.scalar(number, flags, default)
            for name, (number, flags, default) in OPTION_FIELDS[kind][1].items()}
        if kind in _VECTOR_OPTIONS and body is not None:
            name, number = _VECTOR_OPTIONS[kind]
            options[name] = body.ints(number)
    extras = _set(table, {5: VECTOR, 7: VECTOR, 8: VECTOR, 9: U64, 11: U8, 12: TABLE},
                  ("custom_options", "mutating_variable_inputs", "intermediates",
                   "large_custom_options", "builtin_options_2", "builtin_options_2"))
    return Operator(table.scalar(0, U32), tuple(table.ints(1) or ()),
                    tuple(table.ints(2) or ()), kind, options, extras)
