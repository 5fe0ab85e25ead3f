"""export/tflite_reduced.py: a float32 .tflite file with only the given weights stored as
float16, or their kernels as int8 per output channel (TPSMM's fp16 and int8 generators:
the inpainting network's), every other constant float32 bit for bit, the file computing
what the float32 graph computes with those weights rounded (float16: in ops the GPU
delegate takes)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fomm_convert.export.tflite import convert_savedmodel
from fomm_convert.export.tflite_reduced import FLOAT16, FLOAT32, INT8, reduced_weights
from fomm_convert.export.tflite_graph import read_graph
from fomm_convert.export.tflite_ops import op_report

RNG = np.random.default_rng(3)
# Two "networks" of a conv and a bias each, and a constant of neither.
FIRST = {"kernel": RNG.normal(0, 0.3, (3, 3, 4, 8)).astype(np.float32),
         "bias": RNG.normal(0, 0.1, (8,)).astype(np.float32)}
SECOND = {"kernel": RNG.normal(0, 0.3, (3, 3, 8, 5)).astype(np.float32),
          "bias": RNG.normal(0, 0.1, (5,)).astype(np.float32)}
OFFSET = np.float32(0.01)  # not a float16 number: rounded by the converter's float16 pass


def forward(x, first, second):
    hidden = tf.nn.relu(tf.nn.conv2d(x + OFFSET, first["kernel"], 1, "SAME") + first["bias"])
    return tf.nn.conv2d(hidden, second["kernel"], 1, "SAME") + second["bias"]


@pytest.fixture(scope="module")
def float32_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-networks")
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": forward(x, FIRST, SECOND)},
                           input_signature=[tf.TensorSpec([1, 6, 6, 4], tf.float32)])
    tf.saved_model.save(module, str(folder), signatures=module.f.get_concrete_function())
    return convert_savedmodel(folder, "fp32")


def constants(flatbuffer) -> dict:
    """{tensor name: (type, its bytes)} of the constant tensors of the one subgraph."""
    graph = read_graph(flatbuffer)
    data = bytes(flatbuffer)
    out = {}
    for tensor in graph.subgraphs[0].tensors:
        buffer = graph.buffers[tensor.buffer]
        if buffer.size:
            out[tensor.name] = tensor.type, data[buffer.start:buffer.start + buffer.size]
    return out


def run(flatbuffer, x):
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_content=flatbuffer).get_signature_runner()(x=x)["y"]


def test_only_the_given_weights_are_float16(float32_file):
    ours = reduced_weights(float32_file, SECOND.values(), "fp16")
    before, after = constants(float32_file), constants(ours)
    halved = {name for name, (kind, _) in after.items() if kind == FLOAT16}
    assert len(halved) == 2  # the second conv's kernel (transposed in the file) and bias
    halved_values = sorted(np.frombuffer(after[name][1], np.float16).size for name in halved)
    assert halved_values == sorted(w.size for w in SECOND.values())
    kept = {name: value for name, value in after.items() if name not in halved}
    # every other constant as the float32 file holds it, byte for byte (OFFSET included)
    assert kept and all(kind == FLOAT32 for kind, _ in kept.values())
    assert set(kept.values()) <= set(before.values())
    assert OFFSET.tobytes() in {value for _, value in kept.values()}
    rows = op_report(ours)
    assert sum(r["count"] for r in rows if r["op"] == "DEQUANTIZE") == 2
    assert all(r["gpu"] == "yes" for r in rows), rows


def test_the_file_computes_the_graph_with_those_weights_rounded(float32_file):
    x = RNG.uniform(0, 1, (1, 6, 6, 4)).astype(np.float32)
    rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in SECOND.items()}
    expected = forward(x, FIRST, rounded).numpy()
    exact = forward(x, FIRST, SECOND).numpy()
    got = run(reduced_weights(float32_file, SECOND.values(), "fp16"), x)
    assert np.abs(got - expected).max() < 2e-6
    assert np.abs(exact - expected).max() > 1e-4  # the rounding is there to see
    assert np.array_equal(run(float32_file, x), run(float32_file, x))


def test_weights_the_file_does_not_hold_are_refused(float32_file):
    with pytest.raises(ValueError, match="none of the weights"):
        reduced_weights(float32_file, [np.ones((3, 3, 4, 8), np.float32) * 0.3], "int8")


def per_channel_int8(kernel):
    """A TF kernel [..., O] stored symmetric int8 per output channel, as its float32
    values: scale max |kernel[..., o]| / 127, codes rint(kernel / scale)."""
    scale = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0) / 127
    return (np.clip(np.rint(kernel / scale), -127, 127) * scale).astype(np.float32), scale


def test_only_the_given_kernels_are_int8_per_output_channel(float32_file):
    from ai_edge_litert.interpreter import Interpreter
    ours = reduced_weights(float32_file, SECOND.values(), "int8")
    before, after = constants(float32_file), constants(ours)
    (name,) = [name for name, (kind, _) in after.items() if kind == INT8]
    # the second conv's kernel alone: its bias, as every other constant, float32 as it was
    kept = {k: v for k, v in after.items() if k != name}
    assert all(kind == FLOAT32 for kind, _ in kept.values())
    assert set(kept.values()) <= set(before.values())
    assert SECOND["bias"].tobytes() in {value for _, value in kept.values()}
    _, scale = per_channel_int8(SECOND["kernel"])
    (details,) = [d for d in Interpreter(model_content=ours).get_tensor_details()
                  if d["name"] == name]
    q = details["quantization_parameters"]
    assert details["shape"].tolist() == [5, 3, 3, 8]  # [O, H, W, I]: output channels first
    assert q["quantized_dimension"] == 0 and not q["zero_points"].any()
    np.testing.assert_allclose(q["scales"], scale, rtol=1e-7)
    assert sum(r["count"] for r in op_report(ours) if r["op"] == "DEQUANTIZE") == 1


def test_the_int8_file_computes_the_graph_with_those_kernels_rounded(float32_file):
    x = RNG.uniform(0, 1, (1, 6, 6, 4)).astype(np.float32)
    rounded = {**SECOND, "kernel": per_channel_int8(SECOND["kernel"])[0]}
    expected = forward(x, FIRST, rounded).numpy()
    exact = forward(x, FIRST, SECOND).numpy()
    got = run(reduced_weights(float32_file, SECOND.values(), "int8"), x)
    assert np.abs(got - expected).max() < 2e-6
    assert np.abs(exact - expected).max() > 1e-3  # the rounding is there to see
