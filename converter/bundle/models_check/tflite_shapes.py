"""Every tensor's shape in a TFLite subgraph from its inputs' shapes alone: the shape proof.

    shapes = infer(ops, names, types, {tensor: Arg of each input and constant})

RULES holds the builtin ops our exporter emits, the allowlist of models_check.tflite: for
each, its shape rule (tflite_rules, tflite_windows: written from TFLite's kernels'
Prepare, and stricter where ours never need the freedom), its options type, its input
count and its shape operands. An operand that sets a shape (TILE multiples, RESHAPE
shape, PAD paddings, slice bounds, RANGE limits, reduction axes, ...) must have known
values: a constant, or integer arithmetic (VALUE_OPS) on the outputs of SHAPE. So no
shape depends on the data, and the runtime writes only into buffers sized from the
contract. Dimensions are ints or polynomials in the batch (tflite_dims), so one pass
proves a shape for every batch. Anything else is a ShapeError naming the op and the rule.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from .tflite_dims import INT32_MAX, Poly, Undecided, fits_int32, le, show
from .tflite_rules import (INTEGER, Arg, ShapeError, broadcast_to, cast, concatenation,
                           elementwise, gather, need, negate, pack, range_, reduce, reshape,
                           same, select, shape_of, slice_, strided_slice, tile, transpose,
                           unpack, pad)
from .tflite_windows import (batch_matmul, conv, depth_to_space, depthwise, fully_connected,
                             pool, resize, space_to_depth)

VALUE_MAX = 64  # entries of a tensor whose values are followed (shape vectors hold <= 8)
_MALFORMED = (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError)


class Rule(NamedTuple):
    shapes: Callable  # (options, args, number of outputs) -> [(shape, value or None)]
    inputs: int | None  # how many (None: one or more)
    options: int  # the BuiltinOptions type our exporter writes (0: none)
    operands: dict  # {input: what it sets}: the shape operands, whose values must be known


def _rules(names, *rest):
    return {name: Rule(*rest) for name in names.split()}


# The builtin ops our exporter emits, each with its shape rule: the allowlist. Derived
# from the files `build` writes for every spec and test config in every TFLite variant
# (the tiny configs cover each spec's structural options; vox-256 adds the Winograd
# rewrites' ops at its sizes), listed with each op's options type and input count.
RULES = {
    **_rules("FLOOR LOGISTIC ROUND SQRT TANH LOGICAL_NOT DEQUANTIZE", same, 1, 0, {}),
    **_rules("EXP", same, 1, 33, {}), **_rules("SOFTMAX", same, 1, 9, {}),
    **_rules("FLOOR_DIV MAXIMUM MINIMUM EQUAL GREATER LESS_EQUAL LOGICAL_AND LOGICAL_OR",
             elementwise, 2, 0, {}),
    **_rules("ADD", elementwise, 2, 11, {}), **_rules("SUB", elementwise, 2, 28, {}),
    **_rules("MUL", elementwise, 2, 21, {}), **_rules("DIV", elementwise, 2, 29, {}),
    **_rules("NEG", negate, 1, 42, {}), **_rules("CAST", cast, 1, 0, {}),
    **_rules("SHAPE", shape_of, 1, 55, {}), **_rules("SELECT", select, 3, 47, {}),
    **_rules("SELECT_V2", select, 3, 98, {}),
    **_rules("CONCATENATION", concatenation, None, 10, {}),
    **_rules("PACK", pack, None, 59, {}), **_rules("UNPACK", unpack, 1, 64, {}),
    **_rules("RESHAPE", reshape, 2, 0, {1: "shape"}),
    **_rules("TILE", tile, 2, 0, {1: "multiples"}),
    **_rules("BROADCAST_TO", broadcast_to, 2, 0, {1: "shape"}),
    **_rules("TRANSPOSE", transpose, 2, 0, {1: "permutation"}),
    **_rules("STRIDED_SLICE", strided_slice, 4, 32, {1: "begins", 2: "ends", 3: "strides"}),
    **_rules("SLICE", slice_, 3, 0, {1: "begins", 2: "sizes"}),
    **_rules("GATHER", gather, 2, 23, {}), **_rules("PAD", pad, 2, 22, {1: "paddings"}),
    **_rules("RANGE", range_, 3, 0, {0: "start", 1: "limit", 2: "delta"}),
    **_rules("RESIZE_BILINEAR", resize, 2, 15, {1: "size"}),
    **_rules("SUM REDUCE_MAX REDUCE_MIN", reduce, 2, 27, {1: "axes"}),
    **_rules("CONV_2D", conv, 3, 1, {}), **_rules("DEPTHWISE_CONV_2D", depthwise, 3, 2, {}),
    **_rules("AVERAGE_POOL_2D", pool, 1, 5, {}),
    **_rules("DEPTH_TO_SPACE", depth_to_space, 1, 94, {}),
    **_rules("SPACE_TO_DEPTH", space_to_depth, 1, 19, {}),
    **_rules("BATCH_MATMUL", batch_matmul, 2, 101, {}),
    # TPSMM's (families.py), in its files only: the TPS kernel r^2 log r^2 (LOG); the
    # solve's partial pivoting, which picks the largest |candidate| (ABS, GREATER_EQUAL)
    # and the first row holding it (LESS); the converter's folded BatchNorm of the AVD
    # network (RSQRT); resnet18's stem (MAX_POOL_2D, AVERAGE_POOL_2D's windows) and its fc
    # and the AVD network's Linear layers (FULLY_CONNECTED).
    **_rules("ABS LOG RSQRT", same, 1, 0, {}),
    **_rules("GREATER_EQUAL LESS", elementwise, 2, 0, {}),
    **_rules("MAX_POOL_2D", pool, 1, 5, {}),
    **_rules("FULLY_CONNECTED", fully_connected, 3, 8, {}),
}
# The ops whose integer outputs carry known values from known inputs (shape arithmetic).
VALUE_OPS = frozenset({"ADD", "SUB", "MUL", "FLOOR_DIV", "MAXIMUM", "MINIMUM", "NEG", "CAST",
                       "SHAPE", "CONCATENATION", "PACK", "RESHAPE", "STRIDED_SLICE",
                       "SLICE", "GATHER"})


class Step(NamedTuple):
    """One op, ready to be run by infer."""
    name: str
    rule: Rule
    options: dict  # its options, with its type under "op"
    inputs: tuple
    outputs: tuple


def steps(ops, names) -> list:
    """The Steps of a subgraph's Operators in execution order (names[i]: op i's type)."""
    return [Step(name, RULES[name], dict(op.options or {}, op=name), op.inputs, op.outputs)
            for op, name in zip(ops, names)]


def infer(plan, types, state: dict, memo: dict | None = None, order=None) -> dict:
    """`state` ({tensor: Arg} of the inputs and constants, the values of small integer
    constants known) with every tensor `plan` (steps()) writes added, shapes proven;
    types[t]: tensor t's type; order: the indices of the steps to run (default: all).
    ShapeError(the rule broken, the op's index) for an op whose shapes are not proven.
    `memo`, kept across calls on one plan, holds each op's outputs by its inputs' shapes
    and values: the same inputs make the same outputs, so a call with other input shapes
    recomputes only what they change."""
    for index in range(len(plan)) if order is None else order:
        step = plan[index]
        args = [state[i] for i in step.inputs]
        key = (index, *((a.shape, a.key) for a in args)) if memo is not None else None
        seen = memo.get(key) if memo is not None else None
        if seen is not None:
            state.update(zip(step.outputs, seen))
            continue
        try:
            for position, what in step.rule.operands.items():
                need(args[position].value is not None,
                     lambda: f"its {what} (input {position}) is neither a constant nor "
                     f"computed from the input shapes")
            results = step.rule.shapes(step.options, args, len(step.outputs))
            need(len(results) == len(step.outputs), lambda: f"{len(step.outputs)} outputs")
            for t, (shape, value) in zip(step.outputs, results):
                _check_shape(shape)
                # A fused activation (RELU on an ADD, ...) clamps what the rule computed.
                keep = (value is not None and step.name in VALUE_OPS and types[t] in INTEGER
                        and not step.options.get("activation") and np.size(value) <= VALUE_MAX)
                if keep:
                    value = np.asarray(value, dtype=object)
                    _check_values(value)
                state[t] = Arg(shape, value if keep else None, types[t])
        except (ShapeError, Undecided) as exc:
            raise ShapeError(str(exc), index) from None
        except _MALFORMED as exc:  # shapes a rule does not expect (a rank too small, ...)
            raise ShapeError(f"its inputs are not what {step.name} takes "
                             f"({type(exc).__name__})", index) from None
        if memo is not None:
            memo[key] = [state[t] for t in step.outputs]
    return state


def _check_shape(shape):
    for d in shape:
        if not (0 <= d <= INT32_MAX if type(d) is int else _fits(d)):
            raise ShapeError(f"makes a dimension {show(d)}")


@functools.lru_cache(maxsize=1024)
def _fits(d) -> bool:
    return le(0, d) and fits_int32(d)


def _check_values(value):
    for v in value.reshape(-1).tolist():
        if not (isinstance(v, (int, Poly)) and fits_int32(v)):
            raise ShapeError(f"makes a value {show(v)} outside int32")
