"""The .tflite files of a bundle against what our exporter writes (models_check).

A .tflite file is run by LiteRT with our arrays as its output buffers (zero copy), so a
file whose shapes follow its data, or whose outputs are not what the contract sizes,
makes the runtime write past them. Each file is read with our own reader (no runtime,
export/tflite_graph.py) and must be, in full:

- builtin ops of our exporter only (tflite_shapes.RULES), with their options and inputs:
  no CUSTOM, control flow (IF, WHILE, CALL, CALL_ONCE) or StableHLO op, no custom or second
  options, no variable, sparse, variant or externally held tensor;
- one subgraph per signature of the contract (signatures.py) and no other, whose inputs
  and outputs are the signature's, named and declared as the contract says (float32);
  no signature output is a constant, an input or left unwritten;
- ops in an order where each reads only constants, inputs and earlier ops' outputs, and
  writes tensors no other op, constant or input holds;
- every buffer inside the file, every constant's bytes its shape times its type's size,
  quantization vectors the size of their axis;
- float16 and int8 tensors are weights: constants, read only by a DEQUANTIZE or (int8)
  as a convolution's weights (WEIGHT_READERS); int8 ones alone quantized;
- shapes proven from the input shapes alone (tflite_shapes.infer) for every batch from 1
  to limits.TFLITE_MAX_CALL_BATCH, with each group of source inputs of batch 1 or the
  batch (the runtime backend calls nothing else: runtime.batching.check_shapes): the
  outputs are the contract's for the call's batch. Static files are proven for batch 1,
  their only one.

A file that fails is one ModelFileError line naming the file, the op (index and type) or
tensor, and the rule.
"""
from __future__ import annotations

import functools
import itertools
import struct

import numpy as np

from ...errors import one_line
from ...export.tflite_graph import FLOAT16, FLOAT32, INT8
from ...formats import METADATA_NAME, tflite_filename
from ...families import family_of
from ...signatures import DRIVING, SOURCE
from . import ModelFileError
from .tflite_dims import BATCH
from .tflite_rules import INTEGER, Arg, ShapeError, shown
from .tflite_shapes import RULES, infer, steps

# Tensor types our files hold, with their sizes: float32, float16 (fp16 weights), int32,
# int64 (none yet; shape vectors may take it), bool, int8 (int8 weights).
TYPE_SIZES = {0: 4, 1: 2, 2: 4, 4: 8, 6: 1, 9: 1}
# The reduced-precision weights: constants only, read only as (op, input) here: by a
# DEQUANTIZE into float32 (the converter's float16 pass, export/tflite_reduced.py), or,
# int8 and quantized, as the weights of the converter's dynamic-range (hybrid) kernels.
WEIGHT_READERS = {FLOAT16: {("DEQUANTIZE", 0)},
                  INT8: {("DEQUANTIZE", 0), ("CONV_2D", 1), ("DEPTHWISE_CONV_2D", 1),
                         ("FULLY_CONNECTED", 1)}}
TYPE_NAMES = {FLOAT16: "float16", INT8: "int8"}
_STRUCT = {2: "i", 4: "q"}  # int32, int64
# Metadata entries of our files: the converter's own and ours (formats.METADATA_NAME);
# `reduced_precision_support` comes with float16 weights. LiteRT reads some entries by
# name, so no other is admitted.
METADATA = frozenset({"min_runtime_version", "CONVERSION_METADATA",
                      "reduced_precision_support", METADATA_NAME})
CUSTOM = "CUSTOM"
CONTROL_FLOW = frozenset({"IF", "WHILE", "CALL", "CALL_ONCE"})


def check_format(bundle, spec, fmt) -> None:
    """Every .tflite file of format `fmt` in `bundle` (ModelFileError, one line)."""
    contract = family_of(spec).signatures(spec)
    for model in contract:
        check_file(bundle / "tflite" / tflite_filename(model, fmt.precision, fmt.static),
                   contract[model], fmt.static)


def check_file(path, contract: dict, static: bool) -> None:
    """One file against its model's contract ({signature name: signatures.Signature})."""
    from ...export.tflite_file import TFLiteFileError
    from ...export.tflite_graph import read_graph
    try:
        graph = read_graph(path)
    except TFLiteFileError as exc:
        raise ModelFileError(one_line(exc)) from None
    try:
        _check(graph, contract, static)
    except _Refused as exc:
        raise ModelFileError(f"{path}: {exc}") from None


class _Refused(Exception):
    pass


def _refuse(condition, message):
    if not condition:
        raise _Refused(message)


@functools.lru_cache(maxsize=None)
def _op_names() -> dict:
    from ai_edge_litert.schema_py_generated import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def op_name(code) -> str:
    return _op_names().get(code.builtin, f"BUILTIN_{code.builtin}")


def _check(graph, contract: dict, static: bool):
    _refuse(not graph.unread, f"holds {', '.join(graph.unread)} (ours hold none)")
    for name, buffer in graph.metadata:
        _refuse(name in METADATA, f"metadata entry {name!r} is not one our files hold")
        _refuse(buffer < len(graph.buffers), f"metadata entry {name!r}: no buffer {buffer}")
    _refuse(not graph.buffers or graph.buffers[0].size == 0, "buffer 0 is not empty")
    for index, buffer in enumerate(graph.buffers):
        _refuse(not buffer.both, f"buffer {index} holds data and an offset")
        _refuse(buffer.start + buffer.size <= graph.size, f"buffer {index} ({buffer.start}"
                f"+{buffer.size} bytes) lies outside the file ({graph.size} bytes)")
    by_key = {s.key: s for s in graph.signatures}
    _refuse(sorted(by_key) == sorted(contract) and len(by_key) == len(graph.signatures),
            f"signatures {sorted(by_key)}, not {sorted(contract)}")
    owners = [s.subgraph for s in graph.signatures]
    _refuse(len(set(owners)) == len(owners), "two signatures share a subgraph")
    for index in range(len(graph.subgraphs)):
        _refuse(index in owners, f"subgraph {index} belongs to no signature")
    for key, want in contract.items():
        signature = by_key[key]
        _refuse(signature.subgraph < len(graph.subgraphs),
                f"signature {key}: no subgraph {signature.subgraph}")
        _Subgraph(graph, signature, want, static).check()
    for index, code in enumerate(graph.codes):  # those no op uses
        _refuse(_op_rule(op_name(code)) is None, f"operator code {index}: "
                f"{_op_rule(op_name(code))}")


def _op_rule(name: str) -> str | None:
    """Why an op type is refused (None: it is one of ours)."""
    if name in RULES:
        return None
    if name == CUSTOM:
        return "a CUSTOM op (ours are builtin only)"
    if name in CONTROL_FLOW:
        return f"{name} is control flow (ours have none)"
    if name.startswith("STABLEHLO_"):
        return f"{name} is a StableHLO op (ours have none)"
    return f"{name} is not an op our exporter emits"


class _Subgraph:
    """One signature's subgraph: its structure, tensors and shape proof."""

    def __init__(self, graph, signature, contract, static):
        self.graph, self.signature, self.contract = graph, signature, contract
        self.static = static
        self.subgraph = graph.subgraphs[signature.subgraph]
        self.tensors = self.subgraph.tensors
        self.where = f"signature {signature.key}"

    def refuse(self, condition, message, op=None):
        if not condition:
            self.fail(message, op)

    def fail(self, message, op=None):
        """The refusal, naming the op (by its index) or else the signature."""
        where = self.where if op is None else f"op {op} ({self.names[op]}) of {self.where}"
        raise _Refused(f"{where}: {message}")

    def check(self):
        buffers = self.graph.buffers
        self.constant = {index for index, tensor in enumerate(self.tensors)
                         if tensor.buffer < len(buffers) and buffers[tensor.buffer].size}
        self.check_signature()
        self.check_tensors()
        self.check_ops()
        self.prove_shapes()

    def tensor(self, index, what):
        self.refuse(0 <= index < len(self.tensors), f"{what} is tensor {index}, not one of "
                                                     f"its {len(self.tensors)}")
        return self.tensors[index]

    def check_tensors(self):
        buffers = self.graph.buffers
        for index, tensor in enumerate(self.tensors):
            if tensor.extras:
                self.fail(f"{_tensor(index, tensor)} holds {', '.join(tensor.extras)} (ours "
                          f"hold none)")
            if tensor.type not in TYPE_SIZES:
                self.fail(f"{_tensor(index, tensor)} has type {tensor.type}, not one of ours")
            if tensor.buffer >= len(buffers):
                self.fail(f"{_tensor(index, tensor)}: no buffer {tensor.buffer}")
            if not (len(tensor.declared) == len(tensor.shape) and min(tensor.shape, default=0)
                    >= 0 and min(tensor.declared, default=0) >= -1):
                self.fail(f"{_tensor(index, tensor)} declares shape {list(tensor.declared)}")
            held = buffers[tensor.buffer].size
            if held:
                size = TYPE_SIZES[tensor.type]
                for d in tensor.shape:
                    size *= d
                if tuple(tensor.declared) != tuple(tensor.shape):
                    self.fail(f"{_tensor(index, tensor)} is a constant declared "
                              f"{list(tensor.declared)}")
                if held != size:
                    self.fail(f"{_tensor(index, tensor)} is a constant of "
                              f"{list(tensor.shape)} x {TYPE_SIZES[tensor.type]} bytes held "
                              f"in {held} bytes")
            q = tensor.quantization
            if q is not None and not (not q.details and q.scale == q.zero_point and (
                    q.scale <= 1 or 0 <= q.dimension < len(tensor.shape)
                    and q.scale == tensor.shape[q.dimension])):
                self.fail(f"{_tensor(index, tensor)}: its quantization does not fit its shape")
            quantized = q is not None and q.scale > 0
            if tensor.type in WEIGHT_READERS and index not in self.constant:
                self.fail(f"{_tensor(index, tensor)} is {TYPE_NAMES[tensor.type]} and not a "
                          f"constant (ours hold weights only)")
            if quantized != (tensor.type == INT8):
                self.fail(f"{_tensor(index, tensor)} is of type {tensor.type} and "
                          f"{'' if quantized else 'not '}quantized (ours: int8 weights only)")

    def check_signature(self):
        sides = (("input", self.signature.inputs, self.subgraph.inputs, self.contract.inputs),
                 ("output", self.signature.outputs, self.subgraph.outputs,
                  self.contract.outputs))
        tensors = {}
        for side, maps, _, want in sides:
            names = [name for name, _ in maps]
            self.refuse(sorted(names) == sorted(t.name for t in want),
                        f"{side}s {sorted(names)}, not {sorted(t.name for t in want)}")
            tensors[side] = {index: info for info in want
                             for name, index in maps if name == info.name}
            self.refuse(len(tensors[side]) == len(maps), f"two {side}s are one tensor")
            for index, info in tensors[side].items():
                self.tensor(index, f"{side} {info.name}")
                self.refuse(index not in self.constant, f"{side} {info.name} is a constant")
        self.inputs, self.outputs = tensors["input"], tensors["output"]
        self.refuse(not set(self.inputs) & set(self.outputs), "an output is an input")
        batch = 1 if self.static else -1
        for side, _, graph_side, _ in sides:
            for index, info in tensors[side].items():
                tensor = self.tensors[index]
                self.refuse(tensor.type == FLOAT32 and list(tensor.declared) ==
                            info.full_shape(batch), f"{side} {info.name} is declared "
                            f"{list(tensor.declared)} of type {tensor.type}, not "
                            f"{info.full_shape(batch)} float32")
            self.refuse(sorted(tensors[side]) == sorted(graph_side),
                        f"its {side}s are not its subgraph's")

    def check_ops(self):
        codes = self.graph.codes
        self.names = []
        written = set(self.inputs) | self.constant
        for index, op in enumerate(self.subgraph.operators):
            self.names.append("?")
            self.refuse(op.opcode < len(codes), f"no operator code {op.opcode}", index)
            name = self.names[index] = op_name(codes[op.opcode])
            self.refuse(_op_rule(name) is None, _op_rule(name), index)
            rule = RULES[name]
            if op.extras:
                self.fail(f"holds {', '.join(op.extras)}", index)
            if op.options_type != rule.options:
                self.fail(f"options of type {op.options_type}, not {rule.options}", index)
            if not (len(op.inputs) == rule.inputs if rule.inputs else op.inputs):
                self.fail(f"{len(op.inputs)} inputs", index)
            if not op.outputs:
                self.fail("no output", index)
            for position, t in enumerate(op.inputs):
                if t not in written:  # written holds tensor indices only
                    self.fail(f"input {position} is tensor {t}, which nothing wrote before",
                              index)
                kind = self.tensors[t].type
                if kind in WEIGHT_READERS and (name, position) not in WEIGHT_READERS[kind]:
                    self.fail(f"input {position} is a {TYPE_NAMES[kind]} tensor (ours "
                              f"read those as weights only: {_readers(kind)})", index)
                if name == "DEQUANTIZE" and kind not in WEIGHT_READERS:
                    self.fail(f"input {position} is of type {kind} (ours dequantize "
                              f"float16 and int8 weights only)", index)
            for t in op.outputs:
                if t in written or not 0 <= t < len(self.tensors):
                    self.fail(f"writes tensor {t}, which is a constant, an input or written "
                              f"before", index)
                written.add(t)
        for t, info in self.outputs.items():
            self.refuse(t in written, f"output {info.name} is written by no op")
        self.plan = steps(self.subgraph.operators, self.names)

    def prove_shapes(self):
        """The contract's output shapes for every batch (and source batches 1 or it).
        The first case runs every op; the others, only those a source input reaches."""
        groups = {}  # source inputs that share a batch (signatures.py: one call made them)
        for t, info in self.inputs.items():
            if info.batch == SOURCE:
                groups.setdefault(info.group or info.name, []).append(t)
        driving = any(info.batch == DRIVING for info in self.inputs.values())
        batch = 1 if self.static else BATCH
        sources = {t for members in groups.values() for t in members}
        base, memo, reached = self.constants(), {}, self.reached(sources)
        for ones in itertools.product(*([(False, True)] * (0 if self.static else len(groups)))):
            single = {t for one, members in zip(ones, groups.values()) if one for t in members}
            state = self.run(dict(base), single, memo, reached if any(ones) else None)
            if not any(ones):
                base = state
            called = batch if driving or single != sources else 1
            for t, info in self.outputs.items():
                want = tuple(info.full_shape(called))
                self.refuse(state[t].shape == want, f"output {info.name} would be "
                            f"{shown(state[t].shape)}, not {shown(want)}"
                            f"{_case(single, self.inputs)}")

    def constants(self) -> dict:
        """{tensor: Arg} of the constants, with the values of the small integer ones."""
        state = {}
        for t in self.constant:
            tensor = self.tensors[t]
            value = self.constant_value(tensor)
            state[t] = Arg(tuple(tensor.shape), None if value is None else
                           np.array(value, dtype=object).reshape(tensor.shape), tensor.type)
        return state

    def reached(self, tensors: set) -> list:
        """The indices of the ops that depend on any of `tensors`, in order."""
        reached, order = set(tensors), []
        for index, op in enumerate(self.subgraph.operators):
            if any(t in reached for t in op.inputs):
                reached.update(op.outputs)
                order.append(index)
        return order

    def run(self, state: dict, single: set, memo=None, order=None) -> dict:
        """`state` with the inputs (those in `single` of batch 1, the others of the batch)
        and every tensor the ops in `order` (default: all) write (tflite_shapes.infer)."""
        batch = 1 if self.static else BATCH
        for t, info in self.inputs.items():
            state[t] = Arg(tuple(info.full_shape(1 if t in single else batch)), None, FLOAT32)
        try:
            return infer(self.plan, [t.type for t in self.tensors], state, memo, order)
        except ShapeError as exc:
            self.refuse(False, f"{exc}{_case(single, self.inputs)}", exc.op)

    def constant_value(self, tensor):
        """The values of a small integer constant (the shape operands'), else None."""
        data = self.graph.buffers[tensor.buffer].data
        if tensor.type not in INTEGER or data is None:
            return None
        count = len(data) // TYPE_SIZES[tensor.type]
        return list(struct.unpack(f"<{count}{_STRUCT[tensor.type]}", data))


def signature_shapes(graph, key: str, contract, static: bool, ones=()) -> dict:
    """{tensor: proven shape} of signature `key` of a graph that passes the checks, with
    the source inputs named in `ones` of batch 1 (shapes are polynomials in the batch)."""
    signature = next(s for s in graph.signatures if s.key == key)
    checked = _Subgraph(graph, signature, contract, static)
    checked.check()
    single = {t for t, info in checked.inputs.items() if info.name in ones}
    return {t: arg.shape for t, arg in checked.run(checked.constants(), single).items()}


def _readers(kind: int) -> str:
    return ", ".join(f"input {p} of {op}" for op, p in sorted(WEIGHT_READERS[kind]))


def _tensor(index: int, tensor) -> str:
    return f"tensor {index} ({tensor.name})"


def _case(single: set, inputs: dict) -> str:
    if not single:
        return ""
    return " (with " + ", ".join(inputs[t].name for t in sorted(single)) + " of batch 1)"
