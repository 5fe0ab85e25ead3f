"""TFLite export: every signature of the three SavedModels, builtin ops only, with metadata.

    sources = tflite_sources(savedmodel_dir, kp_detector, scratch)     # needs tensorflow
    paths = export_tflite(sources, out_dir, "fp16", metadata)
    read_tflite_metadata(paths["generator"])                           # flatbuffers only
    tflite_signatures(path); op_report(path); op_report_markdown({model: rows})

Files: out_dir/<model>.tflite (float32), <model>.fp16.tflite (float16 weights, computed
in float32 on CPU) and, opt-in, <model>.int8.tflite (dynamic-range int8 weights; the
weight-free process_kp_driving stays float32 in every variant). Each file
carries the SavedModel's signatures with the same signature, input and output names, and
the caller's metadata as UTF-8 JSON in a named `Model.metadata` entry ("fomm_convert.json")
which interpreters ignore. The TFLite converter is deterministic for a given SavedModel
(the `CONVERSION_METADATA` it adds holds the TF version and a structural hash, no time;
`min_runtime_version` is derived from the ops; both are kept), and so is our rewrite of
the flatbuffer: the same SavedModel and metadata give byte-identical files. Files are
written atomically.

Only `export_tflite` imports tensorflow; the readers need nothing but `flatbuffers` (op
names come from ai_edge_litert's copy of the schema).
"""
from __future__ import annotations

import functools
import json
import mmap
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping

import flatbuffers
import numpy as np

from ..bundle import write_atomic

MODELS = ("kp_detector", "process_kp_driving", "generator")
PRECISIONS = {"fp32": "", "fp16": ".fp16", "int8": ".int8"}
METADATA_NAME = "fomm_convert.json"
# Entries the converter itself writes; kept as they are.
CONVERTER_METADATA = ("min_runtime_version", "CONVERSION_METADATA")
FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16  # schema.fbs: Buffer.data (force_align: 16)
CUSTOM = 32  # BuiltinOperator.CUSTOM
# Models kept in float32 per variant. process_kp_driving has no weights to shrink, and the
# float16 pass rounds every float constant, including its hull grid scale 2**16 (-> 65504):
# normalised keypoints moved by 3e-2 on the tiny oracle. In the int8 variant the detector
# stays float too: its keypoints drive every pixel, int8 moved them by 0.075 on vox-256
# (fp16: 1e-3), and it is 2.6 of the pipeline's ~110 GFLOP per frame.
FLOAT32_ONLY = {"fp32": frozenset(), "fp16": frozenset({"process_kp_driving"}),
                "int8": frozenset({"process_kp_driving", "kp_detector"})}


def effective_precision(model: str, precision: str) -> str:
    """What a model's file in a variant really holds."""
    return "fp32" if model in FLOAT32_ONLY[precision] else precision


class TFLiteExportError(RuntimeError):
    """A conversion that would not give a builtin-ops-only file with the right signatures."""


def tflite_filename(model: str, precision: str = "fp32") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    return f"{model}{PRECISIONS[precision]}.tflite"


# ------------------------------------------------------------------------------ export
def tflite_sources(savedmodel_dir: Path, kp_detector, scratch: Path) -> dict[str, Path]:
    """The SavedModels the TFLite files are converted from: savedmodel_dir/<model>/, but for
    the keypoint detector, which is written under scratch with its convolutions summed in
    chunks (tf_model/accumulation.py: TFLite's kernels accumulate term by term, and the
    detector's keypoints need every digit). kp_detector: the reference-structured model
    the SavedModel's was made from (its variables are shared, not copied)."""
    from ..tf_model.accumulation import KP_DETECTOR_CHUNK, chunked_accumulation
    from .savedmodel import export_savedmodels

    detector = chunked_accumulation(kp_detector, KP_DETECTOR_CHUNK)
    sources = {model: Path(savedmodel_dir) / model for model in MODELS}
    sources.update(export_savedmodels(
        {"kp_detector": (detector, {"serving_default": detector.serving_function()})},
        Path(scratch)))
    return sources



def export_tflite(sources: Path | Mapping[str, Path], out_dir: Path, precision: str,
                  metadata: Mapping[str, dict]) -> dict[str, Path]:
    """Convert each model's SavedModel into out_dir/<model>[.fp16|.int8].tflite.

    sources: {model: SavedModel directory} (tflite_sources), or one directory holding
    <model>/ for each model.

    `metadata[model]` (JSON-able) is embedded as "fomm_convert.json", with `variant` (the
    file's precision suffix) and `precision` (what the file really holds: float32 for the
    FLOAT32_ONLY models) added unless the caller set them. Raises TFLiteExportError when a
    model would need select-TF (Flex) or custom ops, or when the file's signatures differ
    from the SavedModel's.
    """
    tflite_filename(MODELS[0], precision)  # validates the precision
    if not isinstance(sources, Mapping):
        sources = {model: Path(sources) / model for model in MODELS}
    missing = [m for m in MODELS if m not in metadata or m not in sources]
    if missing:
        raise ValueError(f"no metadata or SavedModel for {', '.join(missing)}")
    effective = {m: effective_precision(m, precision) for m in MODELS}
    payloads = {m: metadata_bytes({"variant": precision, "precision": effective[m],
                                   **metadata[m]}) for m in MODELS}
    converted = {}
    for model in MODELS:  # convert all before writing any
        source = Path(sources[model])
        flatbuffer = convert_savedmodel(source, effective[model])
        flatbuffer = with_metadata(flatbuffer, {METADATA_NAME: payloads[model]})
        expected, found = savedmodel_signatures(source), tflite_signatures(flatbuffer)
        differ = sorted(k for k in set(expected) | set(found)
                        if _canonical(found.get(k)) != _canonical(expected.get(k)))
        if differ:
            raise TFLiteExportError(
                f"{model}: TFLite signatures differ from the SavedModel's: " + "; ".join(
                    f"{k}: {found.get(k)} != {expected.get(k)}" for k in differ))
        converted[model] = flatbuffer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {model: write_atomic(out_dir / tflite_filename(model, precision), flatbuffer)
            for model, flatbuffer in converted.items()}


def convert_savedmodel(path: Path, precision: str) -> bytes:
    """One SavedModel (all its signatures) -> TFLite flatbuffer, builtin ops only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(path), signature_keys=sorted(savedmodel_signatures(path)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":  # dynamic range: int8 weights, float activations
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # ConverterError; the message lists the offending ops
        raise TFLiteExportError(f"{path.name}: conversion with builtin ops only failed: "
                                f"{exc}") from exc
    foreign = sorted({row["op"] for row in op_report(flatbuffer) if not row["builtin"]})
    if foreign:
        raise TFLiteExportError(f"{path.name}: non-builtin ops {', '.join(foreign)}")
    return flatbuffer


def savedmodel_signatures(path: Path) -> dict:
    """{signature: {"inputs": [(name, shape)], "outputs": [...]}} from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())

    def tensors(infos):
        return [(name, tuple(d.size for d in info.tensor_shape.dim))
                for name, info in sorted(infos.items())]
    return {key: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
            for key, sig in sorted(saved.meta_graphs[0].signature_def.items())
            if not key.startswith("__")}


def _canonical(signature: dict | None):
    """Inputs and outputs as sorted (name, shape) lists: the order in a file is no contract."""
    return None if signature is None else {k: sorted(v) for k, v in signature.items()}


def metadata_bytes(metadata: dict) -> bytes:
    """Canonical UTF-8 JSON (sorted keys, no whitespace): the same dict, the same bytes."""
    try:
        text = json.dumps(metadata, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata is not JSON-able: {exc}") from exc
    return text.encode("utf-8")


def with_metadata(flatbuffer: bytes, entries: Mapping[str, bytes]) -> bytes:
    """The model with named metadata buffers added (or replaced), re-serialised with every
    buffer 16-byte aligned as the schema asks (the converter's own Python rewrite, which adds
    CONVERSION_METADATA, does not align them). Build time only: uses TF's schema classes."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    model.metadata = list(model.metadata or [])
    model.buffers = list(model.buffers or [])
    by_name = {entry.name.decode(): entry for entry in model.metadata}
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        if name in by_name:
            model.buffers[by_name[name].buffer] = buffer
        else:
            entry = schema.MetadataT()
            entry.name = name
            entry.buffer = len(model.buffers)
            model.buffers.append(buffer)
            model.metadata.append(entry)
    model.buffers = [_aligned(b, schema) for b in model.buffers]
    builder = flatbuffers.Builder(max(1024, len(flatbuffer) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


@functools.lru_cache(maxsize=None)
def _aligned_buffer_class(schema):
    class AlignedBufferT(schema.BufferT):
        def Pack(self, builder):
            if self.data is not None:
                self.data = np.ascontiguousarray(self.data, np.uint8).reshape(-1)
                # Pad so that the bytes (written next, back to front) start aligned.
                builder.Prep(BUFFER_ALIGNMENT, self.data.size)
            return super().Pack(builder)
    return AlignedBufferT


def _aligned(buffer, schema):
    out = _aligned_buffer_class(schema)()
    out.data, out.offset, out.size = buffer.data, buffer.offset, buffer.size
    return out


# ------------------------------------------------------------------------------ reading
# A small reader over the flatbuffer (schema.fbs, table fields by index), so that bundles
# can be inspected without tensorflow or an interpreter.

class _Table:
    def __init__(self, buf, pos):
        self.tab = flatbuffers.table.Table(buf, pos)

    def _offset(self, field):
        return self.tab.Offset(4 + 2 * field)

    def scalar(self, field, flags, default=0):
        o = self._offset(field)
        return self.tab.Get(flags, self.tab.Pos + o) if o else default

    def string(self, field):
        o = self._offset(field)
        return self.tab.String(self.tab.Pos + o).decode("utf-8") if o else None

    def tables(self, field):
        o = self._offset(field)
        if not o:
            return []
        start = self.tab.Vector(o)
        return [_Table(self.tab.Bytes, self.tab.Indirect(start + 4 * i))
                for i in range(self.tab.VectorLen(o))]

    def ints(self, field, flags=flatbuffers.number_types.Int32Flags):
        o = self._offset(field)
        return self.tab.GetVectorAsNumpy(flags, o).tolist() if o else None

    def length(self, field):
        o = self._offset(field)
        return self.tab.VectorLen(o) if o else 0

    def bytes(self, field):
        o = self._offset(field)
        if not o:
            return None
        start = self.tab.Vector(o)
        return bytes(self.tab.Bytes[start:start + self.tab.VectorLen(o)])


_U32 = flatbuffers.number_types.Uint32Flags
_I32 = flatbuffers.number_types.Int32Flags
_I8 = flatbuffers.number_types.Int8Flags
_U64 = flatbuffers.number_types.Uint64Flags


@contextmanager
def _model(source):
    """The root Model table of a path or of flatbuffer bytes (files are memory-mapped)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield _root(source)
        return
    with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        yield _root(buf)


def _root(buf):
    if bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    return _Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def _metadata(model: _Table) -> dict[str, bytes]:
    buffers = model.tables(4)
    out = {}
    for entry in model.tables(6):
        buffer = buffers[entry.scalar(1, _U32)]
        data = buffer.bytes(0)
        if data is None:  # large models keep buffers after the flatbuffer (offset, size)
            offset, size = buffer.scalar(1, _U64), buffer.scalar(2, _U64)
            data = bytes(model.tab.Bytes[offset:offset + size])
        out[entry.string(0)] = data
    return out


def tflite_metadata_names(path) -> list[str]:
    """Names of every `Model.metadata` entry, in file order."""
    with _model(path) as model:
        return [entry.string(0) for entry in model.tables(6)]


def read_tflite_metadata(path, name: str = METADATA_NAME) -> dict:
    """Our JSON metadata entry of a .tflite file (or flatbuffer bytes), without tensorflow."""
    with _model(path) as model:
        entries = _metadata(model)
    if name not in entries:
        raise KeyError(f"{path if not isinstance(path, bytes) else 'model'}: no metadata "
                       f"entry {name!r} (found: {', '.join(entries) or 'none'})")
    return json.loads(entries[name].decode("utf-8"))


def _shape(tensor: _Table) -> tuple:
    signature = tensor.ints(7)  # shape_signature: -1 for dynamic dimensions
    return tuple(signature if signature is not None else tensor.ints(0) or [])


def tflite_signatures(path) -> dict:
    """{signature: {"inputs": [(name, shape)], "outputs": [(name, shape)]}} (-1: dynamic)."""
    with _model(path) as model:
        subgraphs = model.tables(2)
        out = {}
        for sig in model.tables(7):
            tensors = subgraphs[sig.scalar(4, _U32)].tables(0)
            out[sig.string(2)] = {
                kind: [(m.string(0), _shape(tensors[m.scalar(1, _U32)]))
                       for m in sig.tables(field)]
                for kind, field in (("inputs", 0), ("outputs", 1))}
        return out


# ------------------------------------------------------------------------------ op report
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
    with _model(path) as model:
        codes = []
        for code in model.tables(1):
            builtin = max(code.scalar(0, _I8), code.scalar(3, _I32))
            codes.append(f"CUSTOM:{code.string(1)}" if builtin == CUSTOM
                         else names.get(builtin, f"BUILTIN_{builtin}"))
        signatures = {sig.scalar(4, _U32): sig.string(2) for sig in model.tables(7)}
        constant = [b.length(0) > 0 or b.scalar(2, _U64) > 0 for b in model.tables(4)]
        rows = []
        for index, subgraph in enumerate(model.tables(2)):
            tensors = [{"shape": _shape(t), "type": t.scalar(1, _I8),
                        "const": constant[t.scalar(2, _U32)]} for t in subgraph.tables(0)]
            counts, verdicts, notes = Counter(), {}, {}
            for op in subgraph.tables(3):
                name = codes[op.scalar(0, _U32)]
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
