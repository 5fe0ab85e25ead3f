"""The shape rules of TFLite's tensor ops (reshaping, slicing, broadcasting, reducing):
each gives an op's output shapes from its inputs', as the kernel's Prepare does, and
refuses what the kernel would refuse or ours never write (tflite_shapes runs them).

A rule takes (options, args, number of outputs): the op's options (with its type under
"op"), one Arg per input (shape, and the values of an integer tensor computed from
constants and input shapes alone) and returns [(shape, values or None)] per output.
Dimensions are ints or polynomials in the batch (tflite_dims).
"""
from __future__ import annotations

import numpy as np

from .tflite_dims import Undecided, clamp, floordiv, le, maximum, minimum, show

INT32, INT64 = 2, 4
INTEGER = (INT32, INT64)


class ShapeError(ValueError):
    """A shape not proven: the rule broken, and the index of the op (None: not yet known)."""

    def __init__(self, message: str, op: int | None = None):
        super().__init__(message)
        self.op = op


class Arg:
    """A tensor during the proof: its shape, its values when known (an object array of
    ints and Polys; `key`: them as a tuple), its type."""
    __slots__ = ("shape", "value", "type", "key")

    def __init__(self, shape, value, type_):
        self.shape, self.value, self.type = shape, value, type_
        self.key = None if value is None else tuple(value.reshape(-1).tolist())


def need(condition, message):
    """ShapeError(message) unless condition; message: text, or a function making it (the
    shapes are only formatted for a refusal)."""
    if not condition:
        raise ShapeError(message() if callable(message) else message)


def shown(shape) -> str:
    return "[" + ", ".join(show(d) for d in shape) + "]"


def count(shape):
    total = 1
    for d in shape:
        total = total * d
    return total


def values(arg: Arg, what: str) -> list:
    need(arg.type in INTEGER, lambda: f"its {what} is not an integer tensor")
    return arg.value.reshape(-1).tolist()


def axis_of(axis: int, rank: int, what="axis") -> int:
    need(-rank <= axis < rank, lambda: f"{what} {axis} is outside a rank-{rank} tensor")
    return axis + rank if axis < 0 else axis


def broadcast(*shapes) -> tuple:
    if all(s == shapes[0] for s in shapes[1:]):
        return shapes[0]
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        need(len(dims) <= 1, lambda: f"shapes {', '.join(shown(s) for s in shapes)} do not "
                             f"broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


# Each takes (options, args, number of outputs) and returns [(shape, value or None)].
def same(options, args, n):
    return [(args[0].shape, None)]


def elementwise(options, args, n):
    shape = broadcast(*(a.shape for a in args))
    if options["op"] in _ARITHMETIC and all(a.value is not None for a in args):
        return [(shape, _ARITHMETIC[options["op"]](args[0].value, args[1].value))]
    return [(shape, None)]


_ARITHMETIC = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply,
               "FLOOR_DIV": np.frompyfunc(floordiv, 2, 1),
               "MAXIMUM": np.frompyfunc(maximum, 2, 1), "MINIMUM": np.frompyfunc(minimum, 2, 1)}


def negate(options, args, n):
    value = args[0].value
    return [(args[0].shape, None if value is None else -value)]


def cast(options, args, n):
    return [(args[0].shape, args[0].value)]  # values are followed for integer types only


def shape_of(options, args, n):
    return [((len(args[0].shape),), np.array(args[0].shape, dtype=object))]


def select(options, args, n):
    condition, x, y = (a.shape for a in args)
    if options["op"] == "SELECT_V2":
        return [(broadcast(condition, x, y), None)]
    need(x == y, lambda: f"SELECT of {shown(x)} and {shown(y)}")
    need(condition == x or condition == () or condition == (x[0],),
         lambda: f"SELECT condition {shown(condition)} for {shown(x)}")
    return [(x, None)]


def concatenation(options, args, n):
    rank = len(args[0].shape)
    axis = axis_of(options["axis"], rank)
    for a in args[1:]:
        need(len(a.shape) == rank and all(d == e for i, (d, e) in
                                          enumerate(zip(a.shape, args[0].shape)) if i != axis),
             lambda: f"concatenates {', '.join(shown(a.shape) for a in args)} along axis {axis}")
    shape = list(args[0].shape)
    shape[axis] = sum((a.shape[axis] for a in args[1:]), args[0].shape[axis])
    value = None
    if all(a.value is not None for a in args):
        value = np.concatenate([a.value for a in args], axis=axis)
    return [(tuple(shape), value)]


def pack(options, args, n):
    need(options["values_count"] == len(args), "PACK values_count is not its inputs' count")
    need(all(a.shape == args[0].shape for a in args), "PACK of tensors of different shapes")
    axis = axis_of(options["axis"], len(args[0].shape) + 1)
    shape = args[0].shape[:axis] + (len(args),) + args[0].shape[axis:]
    value = None
    if all(a.value is not None for a in args):
        value = np.stack([a.value for a in args], axis=axis)
    return [(shape, value)]


def unpack(options, args, n):
    shape = args[0].shape
    axis = axis_of(options["axis"], len(shape))
    need(shape[axis] == options["num"] == n, lambda: f"UNPACK of {shown(shape)} into {n} outputs "
                                              f"along axis {axis}")
    return [(shape[:axis] + shape[axis + 1:], None)] * n


def reshape(options, args, n):
    need(len(args) == 2 and len(args[1].shape) == 1 and args[1].type == INT32,
         "RESHAPE without an int32 shape vector")
    target = values(args[1], "shape")
    need(target.count(-1) <= 1 and all(d == -1 or le(1, d) for d in target),
         lambda: f"RESHAPE to {shown(target)}")
    total = count(args[0].shape)
    if -1 in target:
        try:
            target[target.index(-1)] = floordiv(total, count(d for d in target if d != -1))
        except Undecided:
            raise ShapeError(f"RESHAPE of {shown(args[0].shape)} to {shown(target)}") from None
    need(count(target) == total, lambda: f"RESHAPE of {shown(args[0].shape)} to {shown(target)}")
    value = None
    if args[0].value is not None and all(isinstance(d, int) for d in target):
        value = args[0].value.reshape(target)
    return [(tuple(target), value)]


def tile(options, args, n):
    multiples = values(args[1], "multiples")
    need(len(multiples) == len(args[0].shape) and all(le(1, m) for m in multiples),
         lambda: f"TILE of {shown(args[0].shape)} by {shown(multiples)}")
    return [(tuple(d * m for d, m in zip(args[0].shape, multiples)), None)]


def broadcast_to(options, args, n):
    shape = tuple(values(args[1], "shape"))
    need(len(shape) >= len(args[0].shape) and all(le(1, d) for d in shape)
         and broadcast(args[0].shape, shape) == shape,
         lambda: f"BROADCAST_TO of {shown(args[0].shape)} to {shown(shape)}")
    return [(shape, None)]


def transpose(options, args, n):
    perm = values(args[1], "permutation")
    need(sorted(perm) == list(range(len(args[0].shape))),
         lambda: f"TRANSPOSE of {shown(args[0].shape)} by {perm}")
    return [(tuple(args[0].shape[p] for p in perm), None)]


def strided_slice(options, args, n):
    need(not (options["ellipsis_mask"] or options["new_axis_mask"] or options["offset"]),
         "STRIDED_SLICE with an ellipsis, new axes or offset")
    shape = args[0].shape
    begin, end, strides = (values(a, what) for a, what in
                           zip(args[1:], ("begins", "ends", "strides")))
    need(len(begin) == len(end) == len(strides) == len(shape),
         lambda: f"STRIDED_SLICE of {shown(shape)} with {len(begin)} bounds")
    out, index = [], []
    for axis, dim in enumerate(shape):
        stride, bit = strides[axis], 1 << axis
        need(isinstance(stride, int) and stride >= 1, lambda: f"STRIDED_SLICE stride {stride}")
        start = 0 if options["begin_mask"] & bit else _index(begin[axis], dim)
        need(le(0, start) and le(start + 1, dim),
             lambda: f"STRIDED_SLICE begins at {show(begin[axis])} of an axis of {show(dim)}")
        if options["shrink_axis_mask"] & bit:
            index.append(start)
            continue
        stop = dim if options["end_mask"] & bit else clamp(_index(end[axis], dim), 0, dim)
        size = maximum(stop - start, 0)
        if stride > 1:
            need(isinstance(size, int), "STRIDED_SLICE of a batch axis with a stride")
            size = -(-size // stride)
        out.append(size)
        index.append(slice(start, stop, stride))
    value = None
    if args[0].value is not None:
        value = np.asarray(args[0].value[tuple(index)], dtype=object)
    return [(tuple(out), value)]


def _index(i, dim):
    return i + dim if isinstance(i, int) and i < 0 else i


def slice_(options, args, n):
    shape = args[0].shape
    begin, size = values(args[1], "begins"), values(args[2], "sizes")
    need(len(begin) == len(size) == len(shape), lambda: f"SLICE of {shown(shape)} with "
                                                f"{len(begin)} bounds")
    out = []
    for b, s, dim in zip(begin, size, shape):
        s = dim - b if s == -1 else s
        need(le(0, b) and le(0, s) and le(b + s, dim),
             lambda: f"SLICE [{show(b)}, +{show(s)}) of an axis of {show(dim)}")
        out.append(s)
    value = None
    if args[0].value is not None:
        value = args[0].value[tuple(slice(b, b + s) for b, s in zip(begin, out))]
    return [(tuple(out), value)]


def gather(options, args, n):
    params, indices = args
    need(options["batch_dims"] == 0, "GATHER with batch_dims")
    need(indices.type in INTEGER, "GATHER indices are not integers")
    axis = axis_of(options["axis"], len(params.shape))
    shape = params.shape[:axis] + indices.shape + params.shape[axis + 1:]
    value = None
    if params.value is not None and indices.value is not None:
        taken = indices.value.reshape(-1).tolist()
        need(all(isinstance(i, int) and 0 <= i < params.shape[axis] for i in taken),
             lambda: f"GATHER indices {taken} outside {show(params.shape[axis])}")
        value = np.take(params.value, indices.value.astype(np.int64), axis=axis)
    return [(shape, value)]


def pad(options, args, n):
    shape = args[0].shape
    paddings = values(args[1], "paddings")
    need(args[1].shape == (len(shape), 2) and all(le(0, p) for p in paddings),
         lambda: f"PAD of {shown(shape)} by {shown(paddings)}")
    return [(tuple(d + paddings[2 * i] + paddings[2 * i + 1]
                   for i, d in enumerate(shape)), None)]


def range_(options, args, n):
    need(all(a.shape == () for a in args), "RANGE of non-scalars")
    start, limit, delta = (values(a, what)[0] for a, what in
                           zip(args, ("start", "limit", "delta")))
    need(isinstance(delta, int) and delta > 0 and le(start, limit),
         lambda: f"RANGE({show(start)}, {show(limit)}, {show(delta)})")
    span = limit - start
    size = span if delta == 1 else floordiv(span + delta - 1, delta)
    return [((size,), None)]




def reduce(options, args, n):
    shape = args[0].shape
    axes = {axis_of(a, len(shape)) for a in values(args[1], "axes")}
    if options["keep_dims"]:
        return [(tuple(1 if i in axes else d for i, d in enumerate(shape)), None)]
    return [(tuple(d for i, d in enumerate(shape) if i not in axes), None)]
