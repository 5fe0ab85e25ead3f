"""Hostile .tflite files (issue 19): the gate refuses them before LiteRT sees them; the
runtime's outputs end at guard pages; only the pinned LiteRT is loaded.

Each case rewrites one model file of a tiny bundle (tflite and tflite-static) with the
schema's object API, as an attacker would, and makes the manifest's file table match it
again (the version digest covers no file). Every rule of models_check.tflite is broken by
at least one case; each is refused with its one line by verify, predict, animate and the
API, each in a process of its own, with exit status 1, no traceback, no signal, and
nothing written. The shape proof is compared with LiteRT's own shapes on every tensor of
the real files.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import textwrap
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from fomm_convert.bundle.models_check.tflite import check_file
from fomm_convert.bundle.open import checked_manifest
from fomm_convert.formats import FORMATS, tflite_filename
from fomm_convert.signatures import signatures

from conftest import ROOT, build_synthetic, builds, demo_media
from test_hostile_bundle import (command, manifest_of, python, refresh, snapshot,
                                 write_manifest)

OP = schema.BuiltinOperator
INT32, FLOAT32 = schema.TensorType.INT32, schema.TensorType.FLOAT32


@pytest.fixture(scope="module")
@builds
def built(tmp_path_factory):
    """A tiny synthetic bundle of both TFLite kinds, and inputs for predict and animate."""
    built = build_synthetic(tmp_path_factory.mktemp("hostile-tflite"), "tflite,tflite-static")
    built.inputs = demo_media(built.cwd.parent / "inputs", 3)
    return built


# ------------------------------------------------------------------ rewriting a model
def rewrite(path: Path, edit):
    """The file at `path` unpacked, edited in place by edit(model), packed again."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    edit(model)
    builder = flatbuffers.Builder(path.stat().st_size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def code(model, builtin: int, custom: str | None = None) -> int:
    entry = schema.OperatorCodeT()
    entry.builtinCode, entry.deprecatedBuiltinCode = builtin, min(builtin, 127)
    entry.customCode, entry.version = custom, 1
    model.operatorCodes.append(entry)
    return len(model.operatorCodes) - 1


def tensor(model, sub, shape, kind=FLOAT32, data: np.ndarray | None = None,
           signature=None) -> int:
    """A new tensor of `sub` (a constant when `data` is given)."""
    t = schema.TensorT()
    t.shape, t.type, t.name = list(shape), kind, f"evil{len(sub.tensors)}"
    t.hasRank = True
    t.shapeSignature = list(signature) if signature is not None else None
    t.buffer = 0
    if data is not None:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        model.buffers.append(buffer)
        t.buffer = len(model.buffers) - 1
    sub.tensors.append(t)
    return len(sub.tensors) - 1


def op(sub, opcode: int, inputs, outputs, options_type=0, options=None):
    o = schema.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = opcode, list(inputs), list(outputs)
    o.builtinOptionsType, o.builtinOptions = options_type, options
    sub.operators.append(o)


def options(kind, **fields):
    made = kind()
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def signature(model, key="serving_default"):
    found = next(s for s in model.signatureDefs if s.signatureKey.decode() == key)
    return found, model.subgraphs[found.subgraphIndex]


def output(sig, name: str) -> int:
    return next(m.tensorIndex for m in sig.outputs if m.name.decode() == name)


def set_output(sig, sub, name: str, index: int):
    """Signature output `name` (and its subgraph's output) becomes tensor `index`."""
    entry = next(m for m in sig.outputs if m.name.decode() == name)
    sub.outputs = [index if t == entry.tensorIndex else t for t in sub.outputs]
    entry.tensorIndex = index


def code_of(model, builtin: int) -> int:
    found = [i for i, c in enumerate(model.operatorCodes)
             if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin]
    return found[0] if found else code(model, builtin)


# ------------------------------------------------------------------ the cases
def _op0_is(builtin, custom=None):
    def edit(model):
        model.subgraphs[0].operators[0].opcodeIndex = code(model, builtin, custom)
    return edit


def _extra_subgraph(model):
    model.subgraphs.append(model.subgraphs[0])


def _data_tile(model):
    """The issue's first heap write: SUM, MUL, ADD (one XNNPACK node), CAST, TILE by
    multiples made from the image, ADD: the output's batch follows the data."""
    sig, sub = signature(model)
    image = sig.inputs[0].tensorIndex
    value = output(sig, "value")
    axes = tensor(model, sub, [4], INT32, np.arange(4, dtype=np.int32))
    total = tensor(model, sub, [], signature=[])
    op(sub, code_of(model, OP.SUM), [image, axes], [total], schema.BuiltinOptions.ReducerOptions,
       options(schema.ReducerOptionsT, keepDims=False))
    zero = tensor(model, sub, [], data=np.zeros((), np.float32))
    one = tensor(model, sub, [], data=np.ones((), np.float32))
    scaled, shifted = tensor(model, sub, []), tensor(model, sub, [])
    op(sub, code_of(model, OP.MUL), [total, zero], [scaled], schema.BuiltinOptions.MulOptions,
       schema.MulOptionsT())
    op(sub, code_of(model, OP.ADD), [scaled, one], [shifted], schema.BuiltinOptions.AddOptions,
       schema.AddOptionsT())
    count = tensor(model, sub, [], INT32)
    op(sub, code_of(model, OP.CAST), [shifted], [count])
    shape1 = tensor(model, sub, [1], INT32, np.array([1], np.int32))
    count1 = tensor(model, sub, [1], INT32)
    op(sub, code_of(model, OP.RESHAPE), [count, shape1], [count1])
    rest = tensor(model, sub, [2], INT32, np.array([1, 1], np.int32))
    multiples = tensor(model, sub, [3], INT32)
    op(sub, code_of(model, OP.CONCATENATION), [count1, rest], [multiples],
       schema.BuiltinOptions.ConcatenationOptions, options(schema.ConcatenationOptionsT, axis=0))
    tiled = tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2])
    op(sub, code_of(model, OP.TILE), [value, multiples], [tiled])
    final = tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2])
    op(sub, code_of(model, OP.ADD), [tiled, zero], [final], schema.BuiltinOptions.AddOptions,
       schema.AddOptionsT())
    set_output(sig, sub, "value", final)


def _relu_tile(model):
    """Shape arithmetic through a fused RELU: relu(1 - B) + B is 1 in plain arithmetic and
    B in the runtime's, so a proof that ignored the activation would see [B, 5, 2] where
    the runtime makes [B*B, 5, 2]."""
    sig, sub = signature(model)
    image = sig.inputs[0].tensorIndex
    shape = tensor(model, sub, [4], INT32)
    op(sub, code_of(model, OP.SHAPE), [image], [shape], schema.BuiltinOptions.ShapeOptions,
       options(schema.ShapeOptionsT, outType=INT32))
    bounds = [tensor(model, sub, [1], INT32, np.array([v], np.int32)) for v in (0, 1, 1)]
    batch = tensor(model, sub, [1], INT32)
    op(sub, code_of(model, OP.STRIDED_SLICE), [shape, *bounds], [batch],
       schema.BuiltinOptions.StridedSliceOptions, schema.StridedSliceOptionsT())
    one = tensor(model, sub, [1], INT32, np.array([1], np.int32))
    clamped, multiple = tensor(model, sub, [1], INT32), tensor(model, sub, [1], INT32)
    op(sub, code_of(model, OP.SUB), [one, batch], [clamped], schema.BuiltinOptions.SubOptions,
       options(schema.SubOptionsT, fusedActivationFunction=schema.ActivationFunctionType.RELU))
    op(sub, code_of(model, OP.ADD), [clamped, batch], [multiple],
       schema.BuiltinOptions.AddOptions, schema.AddOptionsT())
    rest = tensor(model, sub, [2], INT32, np.array([1, 1], np.int32))
    multiples = tensor(model, sub, [3], INT32)
    op(sub, code_of(model, OP.CONCATENATION), [multiple, rest], [multiples],
       schema.BuiltinOptions.ConcatenationOptions, options(schema.ConcatenationOptionsT, axis=0))
    tiled = tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2])
    op(sub, code_of(model, OP.TILE), [output(sig, "value"), multiples], [tiled])
    set_output(sig, sub, "value", tiled)


def _const_tile(model):
    """Every op is ours and every operand constant, but the output has twice the rows."""
    sig, sub = signature(model)
    multiples = tensor(model, sub, [3], INT32, np.array([2, 1, 1], np.int32))
    tiled = tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2])
    op(sub, code_of(model, OP.TILE), [output(sig, "value"), multiples], [tiled])
    set_output(sig, sub, "value", tiled)


def _static_tile(model):
    sig, sub = signature(model)
    multiples = tensor(model, sub, [3], INT32, np.array([2, 1, 1], np.int32))
    tiled = tensor(model, sub, [1, 5, 2])
    op(sub, code_of(model, OP.TILE), [output(sig, "value"), multiples], [tiled])
    set_output(sig, sub, "value", tiled)


def _constant_output(model):
    """The issue's second: an output that is a constant stored [1, 5, 2], declared
    [-1, 5, 2] (LiteRT copied the batch's bytes out of it, past its end)."""
    sig, sub = signature(model)
    set_output(sig, sub, "value", tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2],
                                         data=np.zeros((1, 5, 2), np.float32)))


def _output_is_input(model):
    sig, sub = signature(model)
    kp = next(m.tensorIndex for m in sig.inputs if m.name.decode() == "kp_driving")
    set_output(sig, sub, "value", kp)


def _buffer_outside(model):
    sig, sub = signature(model)
    weight = next(t for t in sub.tensors if model.buffers[t.buffer].data is not None
                  and len(model.buffers[t.buffer].data) > 64)
    buffer = model.buffers[weight.buffer]
    buffer.offset, buffer.size = 1 << 40, len(buffer.data)
    buffer.data = None


def _constant_bytes(model):
    sig, sub = signature(model)
    weight = next(t for t in sub.tensors if model.buffers[t.buffer].data is not None
                  and len(t.shape) == 4)
    weight.shape = [weight.shape[0] * 2, *weight.shape[1:]]


def _data_reshape(model):
    """A RESHAPE whose shape is the keypoints' sums, cast to integers."""
    sig, sub = signature(model)
    value = output(sig, "value")
    axes = tensor(model, sub, [2], INT32, np.array([1, 2], np.int32))
    sums = tensor(model, sub, [1], signature=[-1])
    op(sub, code_of(model, OP.SUM), [value, axes], [sums], schema.BuiltinOptions.ReducerOptions,
       options(schema.ReducerOptionsT, keepDims=False))
    shape = tensor(model, sub, [1], INT32, signature=[-1])
    op(sub, code_of(model, OP.CAST), [sums], [shape])
    reshaped = tensor(model, sub, [1, 5, 2], signature=[-1, 5, 2])
    op(sub, code_of(model, OP.RESHAPE), [value, shape], [reshaped])
    set_output(sig, sub, "value", reshaped)


def _last_op_first(model):
    sub = model.subgraphs[0]
    sub.operators.insert(0, sub.operators.pop())


def _writes_constant(model):
    sub = model.subgraphs[0]
    constant = next(i for i, t in enumerate(sub.tensors)
                    if model.buffers[t.buffer].data is not None)
    sub.operators[0].outputs = [constant]


def _variable(model):
    model.subgraphs[0].tensors[0].isVariable = True


def _metadata(model):
    entry = schema.MetadataT()
    entry.name, entry.buffer = "litert_npu_bytecode", 0
    model.metadata.append(entry)


def _options(model):
    sub = model.subgraphs[0]
    conv = next(o for o in sub.operators
                if o.builtinOptionsType == schema.BuiltinOptions.Conv2DOptions)
    conv.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
    conv.builtinOptions = schema.DepthwiseConv2DOptionsT()


def _quantization(model):
    sub = model.subgraphs[0]
    weight = next(t for t in sub.tensors if model.buffers[t.buffer].data is not None
                  and len(t.shape) == 4)
    weight.quantization = options(schema.QuantizationParametersT, scale=[1.0, 1.0, 1.0],
                                  zeroPoint=[0, 0, 0], quantizedDimension=0)


def _conv_weight(model):
    """A convolution's float32 weight constant of kp_detector's serving_default."""
    sub = model.subgraphs[0]
    conv = next(o for o in sub.operators
                if o.builtinOptionsType == schema.BuiltinOptions.Conv2DOptions)
    return sub.tensors[conv.inputs[1]]


def _float16_conv_weight(model):
    """float16 weights read by the convolution itself, not through a DEQUANTIZE."""
    weight = _conv_weight(model)
    values = np.frombuffer(bytes(model.buffers[weight.buffer].data), np.float32)
    model.buffers[weight.buffer].data = np.frombuffer(values.astype(np.float16).tobytes(),
                                                      np.uint8)
    weight.type = schema.TensorType.FLOAT16


def _unquantized_int8(model):
    """int8 weights with no scale: a DEQUANTIZE of them would read raw codes."""
    sub = model.subgraphs[0]
    weight = _conv_weight(model)
    values = np.frombuffer(bytes(model.buffers[weight.buffer].data), np.float32)
    stored = tensor(model, sub, weight.shape, schema.TensorType.INT8,
                    np.clip(np.rint(values * 100), -127, 127).astype(np.int8))
    weight.buffer = 0
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs = code(model, OP.DEQUANTIZE), [stored]
    op.outputs = [sub.tensors.index(weight)]
    sub.operators.insert(0, op)


def _int8_activation(model):
    sub = model.subgraphs[0]
    sub.tensors[sub.operators[0].outputs[0]].type = schema.TensorType.INT8


def _dequantized_float32(model):
    """A DEQUANTIZE of float32 weights (a no-op no converter writes)."""
    sub = model.subgraphs[0]
    weight = _conv_weight(model)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs = code(model, OP.DEQUANTIZE), [sub.tensors.index(weight)]
    op.outputs = [tensor(model, sub, weight.shape)]
    sub.operators.insert(0, op)


# (id, model, format, edit, the refusal after "<file>: ")
RULES = [
    ("custom-op", "kp_detector", "tflite", _op0_is(OP.CUSTOM, "Evil"),
     r"op 0 \(CUSTOM\) of signature serving_default: a CUSTOM op \(ours are builtin only\)"),
    ("control-flow", "kp_detector", "tflite", _op0_is(OP.WHILE),
     r"op 0 \(WHILE\) of signature serving_default: WHILE is control flow \(ours have none\)"),
    ("stablehlo", "kp_detector", "tflite", _op0_is(OP.STABLEHLO_ADD),
     r"op 0 \(STABLEHLO_ADD\) of signature serving_default: STABLEHLO_ADD is a StableHLO op"),
    ("not-our-op", "kp_detector", "tflite", _op0_is(OP.MIRROR_PAD),
     r"op 0 \(MIRROR_PAD\) of signature serving_default: MIRROR_PAD is not an op our "
     r"exporter emits"),
    ("extra-subgraph", "kp_detector", "tflite", _extra_subgraph,
     r"subgraph 1 belongs to no signature"),
    ("data-dependent-tile", "kp_detector", "tflite", _data_tile,
     r"op \d+ \(TILE\) of signature serving_default: its multiples \(input 1\) is neither a "
     r"constant nor computed from the input shapes"),
    ("shape-arithmetic-through-relu", "kp_detector", "tflite", _relu_tile,
     r"op \d+ \(TILE\) of signature serving_default: its multiples \(input 1\) is neither a "
     r"constant nor computed from the input shapes"),
    ("wrong-output-shape", "kp_detector", "tflite", _const_tile,
     r"signature serving_default: output value would be \[2\*B, 5, 2\], not \[B, 5, 2\]"),
    ("wrong-static-output-shape", "kp_detector", "tflite-static", _static_tile,
     r"signature serving_default: output value would be \[2, 5, 2\], not \[1, 5, 2\]"),
    ("constant-output", "kp_detector", "tflite", _constant_output,
     r"signature serving_default: output value is a constant"),
    ("output-is-input", "process_kp_driving", "tflite", _output_is_input,
     r"signature serving_default: an output is an input"),
    ("buffer-outside-the-file", "kp_detector", "tflite", _buffer_outside,
     r"buffer \d+ \(1099511627776\+\d+ bytes\) lies outside the file \(\d+ bytes\)"),
    ("constant-bytes", "kp_detector", "tflite", _constant_bytes,
     r"signature serving_default: tensor \d+ \(.+\) is a constant of \[\d+, \d+, \d+, \d+\] "
     r"x 4 bytes held in \d+ bytes"),
]
# More of the gate's rules, refused by verify (the commands share one gate, see above).
MORE_RULES = [
    ("unused-custom-code", "kp_detector", "tflite", lambda m: code(m, OP.CUSTOM, "Evil"),
     r"operator code \d+: a CUSTOM op \(ours are builtin only\)"),
    ("data-dependent-reshape", "kp_detector", "tflite", _data_reshape,
     r"op \d+ \(RESHAPE\) of signature serving_default: its shape \(input 1\) is neither "
     r"a constant nor computed from the input shapes"),
    ("ops-out-of-order", "kp_detector", "tflite", _last_op_first,
     r"op 0 \(\w+\) of signature serving_default: input \d is tensor \d+, which nothing "
     r"wrote before"),
    ("writes-a-constant", "kp_detector", "tflite", _writes_constant,
     r"op 0 \(\w+\) of signature serving_default: writes tensor \d+, which is a constant, "
     r"an input or written before"),
    ("variable-tensor", "kp_detector", "tflite", _variable,
     r"signature serving_default: tensor 0 \(.+\) holds is_variable \(ours hold none\)"),
    ("metadata-entry", "kp_detector", "tflite", _metadata,
     r"metadata entry 'litert_npu_bytecode' is not one our files hold"),
    ("options-type", "kp_detector", "tflite", _options,
     r"op \d+ \(CONV_2D\) of signature serving_default: options of type 2, not 1"),
    ("quantization", "kp_detector", "tflite", _quantization,
     r"signature serving_default: tensor \d+ \(.+\): its quantization does not fit its "
     r"shape"),
    ("float16-weights-read-by-a-conv", "kp_detector", "tflite", _float16_conv_weight,
     r"op \d+ \(CONV_2D\) of signature serving_default: input 1 is a float16 tensor \(ours "
     r"read those as weights only: input 0 of DEQUANTIZE\)"),
    ("unquantized-int8", "kp_detector", "tflite", _unquantized_int8,
     r"signature serving_default: tensor \d+ \(evil\d+\) is of type 9 and not quantized"),
    ("int8-activation", "kp_detector", "tflite", _int8_activation,
     r"signature serving_default: tensor \d+ \(.+\) is int8 and not a constant \(ours hold "
     r"weights only\)"),
    ("dequantized-float32", "kp_detector", "tflite", _dequantized_float32,
     r"op 0 \(DEQUANTIZE\) of signature serving_default: input 0 is of type 0 \(ours "
     r"dequantize float16 and int8 weights only\)"),
]


def hostile_copy(built, tmp_path, model, fmt, edit) -> tuple[Path, Path]:
    bundle = tmp_path / "b"
    shutil.copytree(built.bundle, bundle)
    rel = f"tflite/{tflite_filename(model, FORMATS[fmt].precision, FORMATS[fmt].static)}"
    rewrite(bundle / rel, edit)
    manifest = manifest_of(bundle)
    refresh(bundle, manifest, rel)
    write_manifest(bundle, manifest)
    return bundle, bundle / rel


API = textwrap.dedent("""
    import sys
    import fomm_convert
    from fomm_convert.errors import FommError
    try:
        fomm_convert.open_bundle(sys.argv[1]).backend(sys.argv[2])
    except FommError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    """)


def refused(result, path: Path, expected: str):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert re.fullmatch(rf"Error: {re.escape(str(path))}: {expected}.*", lines[-1]), lines[-1]


@pytest.mark.parametrize("model, fmt, edit, expected", [c[1:] for c in RULES],
                         ids=[c[0] for c in RULES])
def test_every_command_refuses_the_file(built, tmp_path, model, fmt, edit, expected):
    bundle, path = hostile_copy(built, tmp_path, model, fmt, edit)
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    inputs = built.inputs
    def state():
        # predict and animate take their output's lock in cwd before the gate refuses
        return {**snapshot(bundle.parent, inputs), **snapshot(cwd, tmp, folder_times=False)}
    before = state()
    env = {"TMPDIR": str(tmp)}
    runs = {
        "verify": command("verify", bundle, cwd=cwd, env=env),
        "predict": command("predict", "--bundle", bundle, "--backend", fmt, "--inputs",
                           inputs / "in.npz", "--out", cwd / "out.npz", cwd=cwd, env=env),
        "animate": command("animate", "--bundle", bundle, "--backend", fmt, "--source",
                           inputs / "face.png", "--driving", inputs / "talk.mp4", "--out",
                           cwd / "out.gif", cwd=cwd, env=env),
        "api": python("-c", API, bundle, fmt, cwd=cwd, env=env),
    }
    for name, result in runs.items():
        assert result.returncode != -signal.SIGSEGV, name
        refused(result, path, expected)
    assert state() == before


@pytest.mark.parametrize("model, fmt, edit, expected", [c[1:] for c in MORE_RULES],
                         ids=[c[0] for c in MORE_RULES])
def test_verify_refuses_the_file(built, tmp_path, model, fmt, edit, expected):
    bundle, path = hostile_copy(built, tmp_path, model, fmt, edit)
    (tmp_path / "cwd").mkdir()
    refused(command("verify", bundle, cwd=tmp_path / "cwd"), path, expected)


def test_a_file_rewritten_unchanged_passes(built, tmp_path):
    """The cases' rewriting alone breaks no rule: their refusals are their edits'."""
    _, spec = checked_manifest(built.bundle)
    for model in ("kp_detector", "process_kp_driving", "generator"):
        _, path = hostile_copy(built, tmp_path / model, model, "tflite", lambda m: None)
        check_file(path, signatures(spec)[model], static=False)


def test_the_proof_is_what_litert_computes(built):
    """On every tensor of the real dynamic files, the proven shapes (a polynomial in the
    batch) at batch 3, with the source inputs of batch 1, are the shapes LiteRT gives them
    after a run (the wheel's Interpreter, every tensor kept)."""
    script = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from ai_edge_litert.interpreter import Interpreter
        from fomm_convert.bundle.open import checked_manifest
        from fomm_convert.bundle.models_check.tflite import signature_shapes
        from fomm_convert.bundle.models_check.tflite_dims import coefficients
        from fomm_convert.export.tflite_graph import read_graph
        from fomm_convert.signatures import SOURCE, signatures
        def feed(t):  # images and features 0.5, keypoints apart, jacobians the identity
            shape = t.full_shape(1 if t.batch == SOURCE else 3)
            if "jacobian" in t.name and t.shape:
                return np.broadcast_to(np.eye(2, dtype=np.float32), shape).copy()
            if t.shape[-1:] == (2,) and len(t.shape) == 2:
                ramp = np.linspace(-0.5, 0.5, int(np.prod(shape)), dtype=np.float32)
                return ramp.reshape(shape)
            return np.full(shape, 0.5, np.float32)
        bundle = Path({str(built.bundle)!r})
        _, spec = checked_manifest(bundle)
        compared = 0
        for model in ("kp_detector", "process_kp_driving", "generator"):
            path = bundle / "tflite" / f"{{model}}.tflite"
            graph = read_graph(path)
            runtime = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
            for sig in graph.signatures:
                contract = signatures(spec)[model][sig.key]
                ones = [t.name for t in contract.inputs if t.batch == SOURCE]
                shapes = signature_shapes(graph, sig.key, contract, False, ones)
                feeds = {{t.name: feed(t) for t in contract.inputs}}
                runtime.get_signature_runner(sig.key)(**feeds)
                for index, shape in shapes.items():
                    mine = [sum(c * 3 ** i for i, c in enumerate(coefficients(d)))
                            for d in shape]
                    real = runtime._get_tensor_details(index, sig.subgraph)["shape"].tolist()
                    assert mine == real, (model, sig.key, index, mine, real)
                    compared += 1
        print(compared)
        """)
    result = python("-c", script, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 2000  # of the 2579 tensors the tiny files give shapes


# ------------------------------------------------------------------ the runtime's side
def test_a_write_past_an_output_faults(tmp_path):
    """An output array ends at a no-access page: writing within it and reading the 16
    bytes XNNPACK may read past it work; writing past it kills the process (SIGSEGV)
    instead of corrupting anything."""
    script = textwrap.dedent("""
        import ctypes, sys
        from fomm_convert.runtime.guarded import READ_SLACK, guarded_empty
        array = guarded_empty((3, 5, 7))  # 420 bytes: the guard page starts 448 bytes in
        array[...] = 1.0
        end = array.ctypes.data + array.nbytes
        assert array.ctypes.data % 64 == 0 and ctypes.string_at(end, READ_SLACK)
        print("written and read", flush=True)
        ctypes.memset(array.ctypes.data + int(sys.argv[1]), 0, 1)
        print("wrote past the end", flush=True)
        """)
    # the first byte of the guard page; the data's end + 79, in it for any size
    for offset in (448, 420 + 79):
        result = python("-c", script, offset, cwd=tmp_path)
        assert result.returncode == -signal.SIGSEGV, result
        assert result.stdout == "written and read\n"


FAKE_LITERT = """Metadata-Version: 2.1
Name: ai-edge-litert
Version: 2.1.4
"""


def fake_litert(site: Path, version: str = "2.1.4") -> Path:
    """A site folder whose ai_edge_litert holds a libLiteRt.so (junk: loading it would
    fail with an ELF error, not our line) that ai-edge-litert `version` installed."""
    import base64
    import hashlib
    package = site / "ai_edge_litert"
    package.mkdir(parents=True)
    shutil.copy(Path(schema.__file__), package / "schema_py_generated.py")
    (package / "__init__.py").write_text("")
    library = package / "libLiteRt.so"
    library.write_bytes(b"not a shared object")
    digest = base64.urlsafe_b64encode(hashlib.sha256(library.read_bytes()).digest())
    info = site / f"ai_edge_litert-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(FAKE_LITERT.replace("2.1.4", version))
    (info / "RECORD").write_text(f"ai_edge_litert/libLiteRt.so,sha256="
                                 f"{digest.rstrip(b'=').decode()},{library.stat().st_size}\n")
    return library


def test_another_litert_is_refused_before_it_is_loaded(built, tmp_path):
    """ai-edge-litert 2.1.4 first on the path: predict and the API refuse with one line
    naming both versions and the fix, before loading the library."""
    from fomm_convert.runtime.litert_library import pinned_version
    library = fake_litert(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"),
                                          os.environ.get("PYTHONPATH", "")])}
    pinned = pinned_version()
    expected = (f"{library} is from ai-edge-litert 2.1.4, not the pinned {pinned} that this "
                f"code calls; install it: pip install 'ai-edge-litert=={pinned}'")
    (tmp_path / "cwd").mkdir()
    for result in (command("predict", "--bundle", built.bundle, "--backend", "tflite",
                           "--inputs", built.inputs / "in.npz", "--out",
                           tmp_path / "cwd" / "out.npz", cwd=tmp_path / "cwd", env=env),
                   python("-c", API, built.bundle, "tflite", cwd=tmp_path / "cwd", env=env)):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert expected in lines[-1], lines[-1]
    assert list((tmp_path / "cwd").iterdir()) == []


def test_a_library_no_distribution_installed_is_refused(tmp_path):
    """A libLiteRt.so whose bytes its distribution's RECORD does not list: refused too."""
    from fomm_convert.runtime.litert_library import LiteRtError, check_library, pinned_version
    library = fake_litert(tmp_path / "site", pinned_version())
    check_library(library)  # the fake, as recorded, is the pinned version's
    library.write_bytes(b"another build")
    with pytest.raises(LiteRtError, match=rf"^{re.escape(str(library))} is from no "
                                          rf"ai-edge-litert distribution, not the pinned"):
        check_library(library)


def test_struct_layouts_are_checked_against_the_library(tmp_path):
    """Our ctypes structs must be read by the library as we lay them out: a tensor type
    whose dimensions were int64 (a header change) is refused before any model is read."""
    script = textwrap.dedent("""
        import ctypes
        from fomm_convert.runtime import litert_library as lib

        class Layout(ctypes.Structure):
            _fields_ = [("bits", ctypes.c_uint32), ("dimensions", ctypes.c_int64 * 8),
                        ("strides", ctypes.c_uint32 * 8)]

        class TensorType(ctypes.Structure):
            _fields_ = [("element_type", ctypes.c_int), ("layout", Layout)]

        lib.RankedTensorType = TensorType
        lib._PROTOTYPES["LiteRtCreateTensorBufferFromHostMemory"][0] = ctypes.POINTER(TensorType)
        try:
            lib.runtime()
        except lib.LiteRtError as exc:
            print(exc)
        """)
    result = python("-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        "libLiteRt.so: reads our structs otherwise than we lay them out (an option read back "
        "as type 2 value 3, a 2x3x5 float32 tensor as 4 bytes)"), result.stdout
