"""Which ops a .tflite file holds, and which of them the GPU delegate takes.

    rows = op_report(path)                  # one row per (subgraph, op), with a verdict
    op_report_markdown({model: rows})       # the bundle's tflite/ops.md

Lite: reads the flatbuffer with tflite_file (no tensorflow); op names come from
ai_edge_litert's copy of the schema.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping

from .tflite_file import I8, I32, U32, U64, model_table, tensor_shape

CUSTOM = 32  # BuiltinOperator.CUSTOM

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
# Value: None when the op is accepted as such, else the condition it must meet.
GPU_DELEGATE_OPS: dict[str, str | None] = {
    **dict.fromkeys([
        "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "DENSIFY",
        "DEPTH_TO_SPACE", "HARD_SWISH", "MAX_POOL_2D", "PACK", "PRELU", "QUANTIZE",
        "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "TILE",
        "TRANSPOSE", "TRANSPOSE_CONV",
        # one-input elementwise
        "ABS", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG", "RSQRT",
        "SIGN", "SIN", "SQRT", "SQUARE", "TANH",
        # two-input elementwise (two runtime inputs, or one and a constant)
        "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LOGICAL_AND",
        "LESS", "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW",
        "SQUARED_DIFFERENCE", "SUB"]),
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
    "MUL": "one input at least as large as the other in every dimension",
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
_FLOAT32, _FLOAT16, _INT32, _BOOL, _INT16, _INT8 = 0, 1, 2, 6, 7, 9


def _gather_verdict(inputs):
    params, indices = inputs[0], inputs[1]
    if params["type"] == _INT32:
        return "no", "int32 params"
    if len(indices["shape"]) != 1:
        return "no", f"{len(indices['shape'])}-D indices (the GPU delegate takes 1-D only)"
    if indices["type"] != _INT32:
        return "no", "indices not int32"
    return "yes", None


def _cast_verdict(inputs, outputs):
    pair = (inputs[0]["type"], outputs[0]["type"])
    floats, numbers = {_FLOAT32, _FLOAT16}, {_FLOAT32, _INT32}
    if (pair[0] == _BOOL and pair[1] in floats) or (pair[0] in floats and pair[1] == _BOOL) \
            or (pair[0] in numbers and pair[1] in numbers):
        return "yes", None
    return "no", f"cast type {pair[0]} -> {pair[1]}"


def _gpu_verdict(op: str, inputs: list, outputs: list) -> tuple[str, str | None]:
    """("yes" | "no" | "conditional", reason) for one op instance."""
    if op not in GPU_DELEGATE_OPS:
        return "no", "not supported by the GPU delegate"
    rank = max((len(t["shape"]) for t in inputs + outputs), default=0)
    if rank > GPU_MAX_RANK:
        return "no", f"{rank}-D tensors (the GPU delegate takes at most {GPU_MAX_RANK}-D)"
    if any(t["type"] == _INT8 and t["const"] for t in inputs) and op != "DEQUANTIZE" \
            and any(t["type"] == _FLOAT32 for t in outputs):
        return "no", "dynamic-range int8 weights (CPU only)"
    if op == "GATHER":
        return _gather_verdict(inputs)
    if op == "CAST":
        return _cast_verdict(inputs, outputs)
    if op == "DEQUANTIZE":
        return ("no", "from int16") if inputs[0]["type"] == _INT16 else ("yes", None)
    condition = GPU_DELEGATE_OPS[op]
    return ("conditional", condition) if condition else ("yes", None)


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert.schema_py_generated import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def op_report(path) -> list[dict]:
    """Every op of every subgraph, counted, with its GPU-delegate verdict.

    One row per (subgraph, op): subgraph index, signature (or subgraph name), op name
    ("CUSTOM:<name>" for custom/Flex ops), builtin flag, count, gpu ("yes", "no",
    "conditional" - an unchecked condition applies - or "mixed" across instances), gpu_count
    (instances the delegate takes for sure) and the reasons (notes).
    """
    names = _builtin_names()
    with model_table(path) as model:
        codes = []
        for code in model.tables(1):
            builtin = max(code.scalar(0, I8), code.scalar(3, I32))
            codes.append(f"CUSTOM:{code.string(1)}" if builtin == CUSTOM
                         else names.get(builtin, f"BUILTIN_{builtin}"))
        signatures = {sig.scalar(4, U32): sig.string(2) for sig in model.tables(7)}
        constant = [b.length(0) > 0 or b.scalar(2, U64) > 0 for b in model.tables(4)]
        rows = []
        for index, subgraph in enumerate(model.tables(2)):
            tensors = [{"shape": tensor_shape(t), "type": t.scalar(1, I8),
                        "const": constant[t.scalar(2, U32)]} for t in subgraph.tables(0)]
            counts, verdicts, notes = Counter(), {}, {}
            for op in subgraph.tables(3):
                name = codes[op.scalar(0, U32)]
                ins = [tensors[i] for i in (op.ints(1) or []) if i >= 0]
                outs = [tensors[i] for i in (op.ints(2) or []) if i >= 0]
                verdict, note = _gpu_verdict(name, ins, outs)
                counts[name] += 1
                verdicts.setdefault(name, Counter())[verdict] += 1
                if note:
                    notes.setdefault(name, [])
                    if note not in notes[name]:
                        notes[name].append(note)
            for name in sorted(counts):
                kinds = verdicts[name]
                rows.append({
                    "subgraph": index,
                    "signature": signatures.get(index, subgraph.string(4)),
                    "op": name, "builtin": not name.startswith("CUSTOM"),
                    "count": counts[name],
                    "gpu": next(iter(kinds)) if len(kinds) == 1 else "mixed",
                    "gpu_count": kinds["yes"],
                    "notes": notes.get(name, [])})
        return rows


def op_report_markdown(reports: Mapping[str, list[dict]], title: str = "TFLite ops") -> str:
    """A page for the bundle: per model and signature, every op with its count and whether
    the GPU delegate takes it. `reports` maps a model (or file) name to op_report rows."""
    lines = [f"# {title}", "",
             f"GPU delegate support per {GPU_SOURCE}: yes; no; conditional (the delegate "
             "checks a condition we do not evaluate); mixed (some instances only). "
             "`gpu ops` counts the instances the delegate takes for sure.", ""]
    for model, rows in reports.items():
        lines += [f"## {model}", ""]
        for subgraph in sorted({r["subgraph"] for r in rows}):
            part = [r for r in rows if r["subgraph"] == subgraph]
            total, gpu = sum(r["count"] for r in part), sum(r["gpu_count"] for r in part)
            cpu = [f"{r['op']} ({r['count'] - r['gpu_count']})" for r in part
                   if r["gpu"] == "no" or r["gpu"] == "mixed"]
            lines += [f"### {part[0]['signature']}", "",
                      f"{total} ops, {gpu} GPU-delegable for sure; left to the CPU: "
                      f"{', '.join(cpu) or 'none'}.", "",
                      "| op | count | GPU delegate | gpu ops | note |",
                      "|---|---:|---|---:|---|"]
            lines += [f"| {r['op']} | {r['count']} | {r['gpu']} | {r['gpu_count']} | "
                      f"{'; '.join(r['notes'])} |" for r in part]
            lines.append("")
    return "\n".join(lines)
