"""The facts of an .onnx file that bundle checks and inspect need, read from its protobuf
without the onnx package or a runtime (lite): its metadata_props entries and description,
the main graph's inputs and outputs, the domain of every node, function and operator set
import (subgraphs and functions included), and every tensor's external data reference
(graph initializers, sparse ones, constants in node attributes, functions' attribute
defaults, subgraphs and functions alike).

Field numbers are onnx.proto3's. The file is memory-mapped and walked field by field:
raw tensor bytes are skipped, never copied.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field

from ..limits import ONNX_MAX_NESTING

EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class ProtoError(ValueError):
    """Not a well-formed ONNX protobuf."""


@dataclass
class TensorRef:
    name: str
    data_location: int
    external_data: dict  # key -> value (location, offset, length, checksum)


@dataclass
class OnnxFacts:
    metadata: dict  # metadata_props: key -> value
    tensors: list  # TensorRef of every tensor that has external data or says EXTERNAL
    domains: list = field(default_factory=list)  # (what, domain): nodes, functions, imports
    nodes: int = 0  # nodes seen, subgraphs' and functions' included
    description: str = ""
    inputs: list = field(default_factory=list)  # (name, shape: ints, names or None)
    outputs: list = field(default_factory=list)


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 64 bits")


def _fields(buf, start: int, end: int):
    """(field number, value): an int for varints, a (start, end) span for length-delimited
    fields; fixed-size fields are skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield field, value
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise ProtoError("a field runs past its message")
            yield field, (pos, pos + size)
            pos += size
        else:
            raise ProtoError(f"wire type {wire} (groups are not ONNX)")
        if pos > end:
            raise ProtoError("a field runs past its message")


def _text(buf, span) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8")


def _entry(buf, span) -> tuple[str, str]:
    """StringStringEntryProto: key = 1, value = 2."""
    key = value = ""
    for field, item in _fields(buf, *span):
        if field in (1, 2) and isinstance(item, tuple):
            if field == 1:
                key = _text(buf, item)
            else:
                value = _text(buf, item)
    return key, value


# message -> {field: (child message, repeated-or-not is irrelevant: each occurrence walked)}
_GRAPH = {1: "node", 5: "tensor", 15: "sparse"}
_CHILDREN = {
    "model": {7: "main_graph", 8: "opset", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 9: "opset", 11: "attribute"},
    "main_graph": {**_GRAPH, 11: "input", 12: "output"},
    "graph": _GRAPH,
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse",
                  23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "opset": {},
}
# The string fields of the messages that carry a domain: {kind: {field: name}}.
_NAMED = {"node": {3: "name", 4: "op_type", 7: "domain"}, "function": {1: "name", 10: "domain"},
          "opset": {1: "domain"}}


def _walk(buf, span, kind: str, depth: int, facts: OnnxFacts):
    if depth > ONNX_MAX_NESTING:
        raise ProtoError(f"messages nested deeper than {ONNX_MAX_NESTING}")
    if kind == "tensor":
        name, location, external = "", 0, {}
        for field, item in _fields(buf, *span):
            if field == 8 and isinstance(item, tuple):
                name = _text(buf, item)
            elif field == 13 and isinstance(item, tuple):
                key, value = _entry(buf, item)
                external[key] = value
            elif field == 14 and isinstance(item, int):
                location = item
        if external or location == EXTERNAL:
            facts.tensors.append(TensorRef(name, location, external))
        return
    if kind in ("input", "output"):
        getattr(facts, f"{kind}s").append(_value_info(buf, span))
        return
    children, named = _CHILDREN[kind], _NAMED.get(kind, {})
    strings, domains = {}, []  # every domain written is checked (a parser keeps the last)
    if kind == "node":
        index, facts.nodes = facts.nodes, facts.nodes + 1  # numbered in the order they start
    for field, item in _fields(buf, *span):
        if not isinstance(item, tuple):
            continue
        if kind == "model" and field == 6:
            facts.description = _text(buf, item)
        elif kind == "model" and field == 14:
            key, value = _entry(buf, item)
            facts.metadata[key] = value
        elif named.get(field) == "domain":
            domains.append(_text(buf, item))
        elif field in named:
            strings[named[field]] = _text(buf, item)
        elif field in children:
            _walk(buf, item, children[field], depth + 1, facts)
    if named:
        what = {"node": lambda: f"node {index} {strings.get('name', '')!r} (op "
                                f"{strings.get('op_type', '')})",
                "function": lambda: f"function {strings.get('name', '')!r}",
                "opset": lambda: "an operator set import"}[kind]()
        facts.domains += [(what, domain) for domain in domains or [""]]


def _value_info(buf, span) -> tuple:
    """(name, shape) of a ValueInfoProto: name 1, type 2 (TypeProto: tensor_type 1, its
    shape 2, whose dims 1 hold dim_value 1 or dim_param 2); shape None when not a tensor."""
    name, shape = "", None
    for field, item in _fields(buf, *span):
        if field == 1 and isinstance(item, tuple):
            name = _text(buf, item)
        elif field == 2 and isinstance(item, tuple):
            for tensor in _messages(buf, item, 1):
                shape = []
                for dims in _messages(buf, tensor, 2):
                    for dim in _messages(buf, dims, 1):
                        shape.append(_dim(buf, dim))
    return name, shape


def _messages(buf, span, number: int):
    return [item for field, item in _fields(buf, *span)
            if field == number and isinstance(item, tuple)]


def _dim(buf, span):
    value = None
    for field, item in _fields(buf, *span):
        if field == 1 and isinstance(item, int):
            value = item
        elif field == 2 and isinstance(item, tuple):
            value = _text(buf, item)
    return value


def onnx_facts(path) -> OnnxFacts:
    """Metadata and external data references of an .onnx file; ProtoError (a ValueError)
    for a file that is not a well-formed ONNX protobuf."""
    facts = OnnxFacts({}, [])
    with open(path, "rb") as f:
        if not f.seek(0, 2):
            raise ProtoError("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            _walk(buf, (0, len(buf)), "model", 0, facts)
    return facts
