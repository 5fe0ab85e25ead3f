"""Which ops the TFLite/LiteRT GPU delegate takes, from its documented rules, evaluated on
each op instance's tensors and options (tflite_ops.op_report calls gpu_verdict per op).

Lite: no tensorflow.
"""
from __future__ import annotations

import flatbuffers

from .tflite_file import I8, I32

F32 = flatbuffers.number_types.Float32Flags

# Builtin ops the TFLite/LiteRT GPU delegate accepts, from its own compatibility check:
# tensorflow/lite/tools/versioning/gpu_compatibility.cc, CheckGpuDelegateCompatibility()
# (the IsSupported logic of tensorflow/lite/delegates/gpu/common/model_builder.cc, moved
# there; the list on https://ai.google.dev/edge/litert/performance/gpu is an older subset).
# The same error strings ("Only support 1D indices", "Tensor dimensions must be less than
# 5.") are in ai_edge_litert 2.3.0's GPU accelerator (libLiteRtWebGpuAccelerator.so).
# Anything not listed (GATHER_ND, SHAPE, RANGE, EXPAND_DIMS, BROADCAST_TO, ZEROS_LIKE,
# LOGICAL_OR, ROUND, ...) makes the delegate leave the op to the CPU. Dynamic-range int8
# ops (int8 weights, float activations) run on CPU only (LiteRT post-training quantization
# guide, https://ai.google.dev/edge/litert/models/post_training_quantization: "Dynamic
# range quantization ... Hardware: CPU"; float16 weights: "CPU, GPU").
# Value: None when the op is accepted as such, else the condition it must meet; _CHECKS
# evaluates each condition on the op's tensors and options (all but LSTM's and ONE_HOT's).
GPU_DELEGATE_OPS: dict[str, str | None] = {
    **dict.fromkeys([
        "BATCH_MATMUL", "CONCATENATION", "DENSIFY", "DEPTH_TO_SPACE", "HARD_SWISH",
        "PACK", "PRELU", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU",
        "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V"]),
    **dict.fromkeys(["AVERAGE_POOL_2D", "MAX_POOL_2D"], "one runtime input"),
    **dict.fromkeys(["CONV_2D", "TRANSPOSE_CONV"], "at most 2 runtime inputs"),
    **dict.fromkeys(["RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "TILE",
                     "TRANSPOSE"], "one runtime input"),
    # one-input elementwise
    **dict.fromkeys(["ABS", "CEIL", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC",
                     "NEG", "RSQRT", "SIGN", "SIN", "SQRT", "SQUARE", "TANH"],
                    "one runtime input, no constant"),
    # two-input elementwise
    **dict.fromkeys(["ATAN2", "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER",
                     "GREATER_EQUAL", "LOGICAL_AND", "LESS", "LESS_EQUAL", "MAXIMUM",
                     "MINIMUM", "NOT_EQUAL", "POW", "SQUARED_DIFFERENCE", "SUB"],
                    "two runtime inputs, or one and a constant"),
    "ADD": "2 inputs; of different ranks (both above 1-D) only as 3-D to 4-D at batch 1, "
           "[1, 1] or [b, c] to [b, x, y, c]",
    "ADD_N": "exactly 2 inputs",
    "CAST": "bool<->float, or float32/int32 <-> float32/int32",
    "CUMSUM": "float input, constant int32 axis",
    "DEPTHWISE_CONV_2D": "4-D tensors; depth_multiplier 1 unless the input has 1 channel",
    "DEQUANTIZE": "not from int16",
    "FULLY_CONNECTED": "default weights format, non-constant input, at most 2 runtime inputs",
    "GATHER": "1-D int32 indices and non-int32 params",
    "LSTM": "basic kernel with tanh, or full kernel with sigmoid/tanh",
    "MEAN": "constant int32 axes",
    "MIRROR_PAD": "REFLECT mode; 3x2 or 4x2 paddings",
    "MUL": "same ranks: one input at least as large as the other in every dimension; "
           "else ADD's broadcasts",
    "ONE_HOT": "int32 indices on the last axis, constant scalar float on/off values",
    "PAD": "3x2 or 4x2 constant paddings",
    "PADV2": "3x2 or 4x2 constant paddings",
    "REDUCE_MAX": "constant int32 axes",
    "REDUCE_MIN": "constant int32 axes",
    "REDUCE_PROD": "constant int32 axes",
    "SELECT": "float branches, each the output's shape or a scalar",
    "SELECT_V2": "float branches, each the output's shape or a scalar",
    "SLICE": "3-D or 4-D input",
    "SOFTMAX": "beta 1",
    "STRIDED_SLICE": "3-D or 4-D input; no ellipsis, new-axis or shrink-axis masks",
    "SUM": "constant int32 axes",
}
GPU_MAX_RANK = 4  # "Tensor dimensions must be less than 5."
GPU_SOURCE = ("tensorflow/lite/tools/versioning/gpu_compatibility.cc "
              "(CheckGpuDelegateCompatibility)")

# TensorType values used by the instance checks below (schema.fbs).
_FLOAT32, _FLOAT16, INT32, _INT64, _BOOL, _INT16, _INT8 = 0, 1, 2, 4, 6, 7, 9
_FLOATS = {_FLOAT32, _FLOAT16}


def _runtime(inputs) -> int:
    return sum(not t["const"] for t in inputs)


def _broadcastable(a: tuple, b: tuple) -> bool:
    """ADD/MUL operands of different ranks, as the delegate broadcasts them at run time
    (CheckAddMulBroadcastCompatibility without the offline 'enhanced broadcast' flag)."""
    if len(a) <= 1 or len(b) <= 1 or len(a) == len(b):
        return True
    long, short = (a, b) if len(a) > len(b) else (b, a)
    if len(long) != 4:
        return False
    return ((len(short) == 3 and long[0] == 1)
            or (len(short) == 2 and long[0] == 1 and short == (1, 1))
            or (len(short) == 2 and long[0] == short[0] and long[3] == short[1]))


def _add(ins, outs, options):
    if len(ins) != 2:
        return "not 2 inputs"
    a, b = ins[0]["shape"], ins[1]["shape"]
    return None if _broadcastable(a, b) else f"broadcast {list(a)} with {list(b)}"


def _mul(ins, outs, options):
    # LiteRT.js 2.5.3's WebGPU delegate took a MUL whose inputs both broadcast (measured on
    # [1, 5, 676, 1] * [1, 1, 676, 2]); the documented rule stands for the other delegates.
    if len(ins) != 2:
        return "not 2 inputs"
    a, b = ins[0]["shape"], ins[1]["shape"]
    if len(a) == len(b):  # a dynamic dimension (-1) is smaller than nothing
        known = [(x, y) for x, y in zip(a, b) if x >= 0 and y >= 0]
        if any(x < y for x, y in known) and any(y < x for x, y in known):
            return f"both inputs broadcast ({list(a)} * {list(b)})"
        return None
    return _add(ins, outs, options)


def _gather(ins, outs, options):
    params, indices = ins[0], ins[1]
    if _runtime(ins) == 0:
        return "constant params and indices"
    if params["type"] == INT32:
        return "int32 params"
    if len(indices["shape"]) != 1:
        return f"{len(indices['shape'])}-D indices (the GPU delegate takes 1-D only)"
    return None if indices["type"] == INT32 else "indices not int32"


def _cast(ins, outs, options):
    pair = (ins[0]["type"], outs[0]["type"])
    numbers = {_FLOAT32, INT32}
    if (pair[0] == _BOOL and pair[1] in _FLOATS) or (pair[0] in _FLOATS and pair[1] == _BOOL) \
            or (pair[0] in numbers and pair[1] in numbers):
        return None
    return f"cast type {pair[0]} -> {pair[1]}"


def _depthwise(ins, outs, options):
    if any(len(t["shape"]) != 4 for t in (ins[0], ins[1], outs[0])):
        return "not 4-D"
    channels, out = ins[0]["shape"][3], outs[0]["shape"][3]
    return None if out == channels or channels == 1 else "depth_multiplier > 1"


def _axes(ins, outs, options):
    axes = ins[1] if len(ins) > 1 else None
    return None if axes and axes["const"] and axes["type"] == INT32 else \
        "axes not a constant int32 tensor"


def _pad(ins, outs, options):
    paddings = ins[1]["shape"] if len(ins) > 1 else ()
    if _runtime(ins) != 1:
        return "paddings not constant"
    return None if paddings in ((3, 2), (4, 2)) else f"paddings {list(paddings)}"


def _mirror_pad(ins, outs, options):
    mode = options.scalar(0, I8) if options else 0  # MirrorPadOptions.mode: 0 REFLECT
    return "not REFLECT mode" if mode != 0 else _pad(ins, outs, options)


def _rank_3_or_4(ins, outs, options):
    rank = len(ins[0]["shape"])
    return None if rank in (3, 4) else f"{rank}-D input"


def _strided_slice(ins, outs, options):
    # StridedSliceOptions: 1 end_mask, 2 ellipsis_mask, 3 new_axis_mask, 4 shrink_axis_mask
    masks = [name for field, name in ((2, "ellipsis"), (3, "new-axis"), (4, "shrink-axis"))
             if options and options.scalar(field, I32)]
    if masks:
        return f"{', '.join(masks)} mask"
    if len(ins) < 4:
        return "not 4 inputs"
    # Measured in LiteRT.js WebGPU: an end past the input's size ("Output shape mismatch").
    end_mask = options.scalar(1, I32) if options else 0
    ends = ins[2].get("values")
    if ends is not None and any(not end_mask >> axis & 1 and 0 <= size < end
                                for axis, (end, size) in enumerate(zip(ends, ins[0]["shape"]))):
        return "an end past the input's size"
    return _rank_3_or_4(ins, outs, options)


def _softmax(ins, outs, options):
    beta = options.scalar(0, F32) if options else 0.0
    return None if beta == 1.0 else f"beta {beta}"


def _select(ins, outs, options):
    if len(ins) != 3 or ins[0]["type"] not in _FLOATS | {_BOOL} \
            or any(t["type"] not in _FLOATS for t in ins[1:]):
        return "condition or branches of an unsupported type"
    out = outs[0]["shape"]
    for branch in ins[1:]:
        shape = branch["shape"]
        if shape and shape != out and (len(shape) > 1 or shape[0] > 1):
            return "a branch neither the output's shape nor a scalar"
        if branch["const"] and len(shape) == 2:
            return "a 2-D constant branch"
    return None


def _fully_connected(ins, outs, options):
    if options and options.scalar(1, I8):  # FullyConnectedOptions.weights_format
        return "shuffled weights format"
    if _runtime(ins) > 2:
        return "more than 2 runtime inputs"
    if ins[0]["const"]:
        return "constant input"
    keep_dims = options.scalar(2, I8) if options else 0
    if keep_dims and len(ins[0]["shape"]) != len(outs[0]["shape"]):
        return "keep_num_dims with a change of rank"
    return None


def _cumsum(ins, outs, options):
    ok = (len(ins) == 2 and ins[0]["type"] in _FLOATS and outs[0]["type"] == ins[0]["type"]
          and ins[1]["type"] == INT32 and ins[1]["const"])
    return None if ok else "not a float input with a constant int32 axis"


def _inputs(runtime: int, const: int | None = None, at_most: bool = False):
    def check(ins, outs, options):
        found = _runtime(ins)
        if (found > runtime) if at_most else (found != runtime):
            return f"{found} runtime inputs"
        if const is not None and len(ins) - found != const:
            return f"{len(ins) - found} constant inputs"
        return None
    return check


def _one_or_two(ins, outs, options):
    found = _runtime(ins)
    return None if (found, len(ins) - found) in ((2, 0), (1, 1)) else \
        f"{found} runtime and {len(ins) - found} constant inputs"


# One check per op with a condition: the reason the delegate refuses it, or None.
_CHECKS = {
    "ADD": _add, "MUL": _mul, "GATHER": _gather, "CAST": _cast,
    "DEPTHWISE_CONV_2D": _depthwise, "STRIDED_SLICE": _strided_slice, "SLICE": _rank_3_or_4,
    "SOFTMAX": _softmax, "SELECT": _select, "SELECT_V2": _select, "PAD": _pad,
    "PADV2": _pad, "MIRROR_PAD": _mirror_pad, "FULLY_CONNECTED": _fully_connected,
    "CUMSUM": _cumsum, "ADD_N": lambda ins, outs, options: (
        None if len(ins) == 2 else f"{len(ins)} inputs"),
    "DEQUANTIZE": lambda ins, outs, options: "from int16" if ins[0]["type"] == _INT16 else None,
    **dict.fromkeys(["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"], _axes),
    **{op: _inputs(1) for op, condition in GPU_DELEGATE_OPS.items()
       if condition == "one runtime input"},
    **dict.fromkeys(["CONV_2D", "TRANSPOSE_CONV"], _inputs(2, at_most=True)),
    **{op: _inputs(1, 0) for op, condition in GPU_DELEGATE_OPS.items()
       if condition == "one runtime input, no constant"},
    **{op: _one_or_two for op, condition in GPU_DELEGATE_OPS.items()
       if condition == "two runtime inputs, or one and a constant"},
}


def gpu_verdict(op: str, inputs: list, outputs: list, options) -> tuple[str, str | None]:
    """("yes" | "no" | "conditional", reason) for one op instance."""
    if op not in GPU_DELEGATE_OPS:
        return "no", "not supported by the GPU delegate"
    tensors = inputs + outputs
    rank = max((len(t["shape"]) for t in tensors), default=0)
    if rank > GPU_MAX_RANK:
        return "no", f"{rank}-D tensors (the GPU delegate takes at most {GPU_MAX_RANK}-D)"
    if any(t["type"] == _INT64 for t in tensors):
        return "no", "int64 tensors (refused by LiteRT.js WebGPU, docs/runtimes.md)"
    if any(t["type"] == _INT8 and t["const"] for t in inputs) and op != "DEQUANTIZE" \
            and any(t["type"] == _FLOAT32 for t in outputs):
        return "no", "dynamic-range int8 weights (CPU only)"
    if op in _CHECKS:
        reason = _CHECKS[op](inputs, outputs, options)
        return ("no", reason) if reason else ("yes", None)
    condition = GPU_DELEGATE_OPS[op]
    return ("conditional", condition) if condition else ("yes", None)
