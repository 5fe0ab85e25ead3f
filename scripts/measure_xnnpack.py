"""Measure again what each form of the fast graph's convolutions costs on XNNPACK (TFLite),
per layer shape, as converter/tf_model/fast.py writes them, at 1 and 2 threads: 3x3 convs
direct, by Winograd F(2x2, 3x3) and F(4x4, 3x3); up blocks (nearest x2 + 3x3 conv + ReLU)
as the phase conv and as the phase conv by Winograd F(2x2, 2x2); the dense motion's 7x7
mask and occlusion heads (K+1 and 1 output channels on the same input) as two convs and
as one. The tables are what architecture.winograd_tile's and use_phase_winograd's
"xnnpack" rules and their comments rest on.

Each form of each shape is one micro-model (a batch-dynamic input, as in the bundles'
files), converted with builtin ops only and run by ai_edge_litert's Interpreter (XNNPACK
applied by default) at batch 1. The forms are timed in turns, round after round, so that
a load on the machine weighs on all alike; each round takes the best of 3 calls, and the
tables give the minimum and the median over the rounds, with the load average before and
after. Also printed: each form's largest difference from TF's direct conv (float32) on
unit-variance inputs, and the file size.

    .venv/bin/python scripts/measure_xnnpack.py [--config vox] [--threads 1,2] [--rounds 7]
                                                [--convs 64x64:256:256,...] [--ups ...]
                                                [--heads 64x64:108:12]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from fomm_convert.algebra import phase_kernels, phase_winograd_kernels, winograd_kernels
from fomm_convert.architecture import (downsampled_size, generator_channels, halved,
                                       hourglass_channels, use_phase_conv)
from fomm_convert.spec import load_spec
from fomm_convert.tf_model import ops
from fomm_convert.tf_model.winograd import (phase_upsample_conv, winograd_conv3x3,
                                            winograd_phase_conv)


def _conv_forms(kernel, bias):
    """{form: NHWC function} of a 3x3 conv (pad 1)."""
    k, b = tf.constant(kernel), tf.constant(bias)

    def winograd(tile):  # a closure of one argument: tf.function would trace defaults
        u = tf.constant(winograd_kernels(kernel, tile))
        return lambda x: winograd_conv3x3(x, u, b, False, tile)
    return {"direct": lambda x: ops.conv2d(x, k, b, 1), "F2": winograd(2), "F4": winograd(4)}


def _up_forms(kernel, bias):
    """{form: NHWC function} of nearest upsample x2 + 3x3 conv (pad 1) + ReLU."""
    b = tf.constant(np.tile(bias, 4))
    k, u = tf.constant(phase_kernels(kernel)), tf.constant(phase_winograd_kernels(kernel))
    return {"phase": lambda x: phase_upsample_conv(x, k, b),
            "phase-F2x2": lambda x: winograd_phase_conv(x, u, b)}


def _head_forms(kernel, bias):
    """{form: NHWC function} of the dense motion's 7x7 (pad 3) heads on one input, the
    mask's (all output channels but the last) and the occlusion map's (the last)."""
    mask, occlusion = (tf.constant(kernel[..., :-1]), tf.constant(bias[:-1])), \
        (tf.constant(kernel[..., -1:]), tf.constant(bias[-1:]))
    k, b = tf.constant(kernel), tf.constant(bias)
    return {"two convs": lambda x: tf.concat([ops.conv2d(x, *mask, 3),
                                              ops.conv2d(x, *occlusion, 3)], axis=-1),
            "one conv": lambda x: ops.conv2d(x, k, b, 3)}


def _conv_reference(x, kernel, bias):
    return ops.conv2d(x, kernel, bias, 1).numpy()


def _head_reference(x, kernel, bias):
    return ops.conv2d(x, kernel, bias, 3).numpy()


def _up_reference(x, kernel, bias):
    return tf.nn.relu(ops.conv2d(ops.upsample_nearest2x(x), kernel, bias, 1)).numpy()


# kind -> (title, forms, reference, kernel size)
KINDS = {"conv": ("3x3 conv", _conv_forms, _conv_reference, 3),
         "up": ("up block (input size)", _up_forms, _up_reference, 3),
         "head": ("mask + occlusion heads (7x7)", _head_forms, _head_reference, 7)}


def layer_shapes(config: str) -> dict[str, list[tuple[int, int, int, int]]]:
    """{kind: [(height, width, in, out)]}: the 3x3 convs and the phase-conv up blocks of
    the config's generator (the detector keeps its reference convs: fast.fast_models),
    once each, in graph order."""
    spec = load_spec(config)
    gp, dp = spec.generator, spec.dense_motion
    frame = tuple(spec.frame_shape[:2])
    down, up, bottleneck = generator_channels(gp["block_expansion"], gp["max_features"],
                                              gp["num_down_blocks"])
    convs = [(*halved(frame, i), cin, cout) for i, (cin, cout) in enumerate(down)]
    inner = halved(frame, len(down))
    convs.append((*inner, bottleneck, bottleneck))
    ups = [(inner[0] << i, inner[1] << i, cin, cout) for i, (cin, cout) in enumerate(up)]
    motions = (spec.num_kp + 1) * (spec.frame_shape[2] + 1)  # the hourglass's input
    encoder, decoder = hourglass_channels(dp["block_expansion"], motions,
                                          dp["num_blocks"], dp["max_features"])
    size = downsampled_size(frame, dp["scale_factor"])
    convs += [(*halved(size, i), cin, cout) for i, (cin, cout) in enumerate(encoder)]
    ups += [(*halved(size, len(decoder) - j), cin, cout)
            for j, (cin, cout) in enumerate(decoder)]
    ups = [s for s in ups if use_phase_conv(s[:2])]
    # The heads read the hourglass's output (its input and block_expansion channels).
    heads = [(*size, dp["block_expansion"] + motions, spec.num_kp + 2)
             ] if spec.generator["estimate_occlusion_map"] else []
    return {"conv": list(dict.fromkeys(convs)), "up": list(dict.fromkeys(ups)),
            "head": heads}


def micro_model(function, shape) -> bytes:
    h, w, cin, _ = shape
    function = tf.function(function, input_signature=[tf.TensorSpec([None, h, w, cin])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def interpreter(content: bytes, threads: int, shape) -> Interpreter:
    it = Interpreter(model_content=content, num_threads=threads)
    it.resize_tensor_input(it.get_input_details()[0]["index"], [1, *shape[:3]])
    it.allocate_tensors()
    return it


def builtin_ops(content: bytes, shape) -> list[str]:
    """The ops XNNPACK leaves to TFLite's own kernels (which run on one thread): with node
    fusion off, the delegate replaces each op it takes by a DELEGATE node of its outputs."""
    it = Interpreter(model_content=content, experimental_disable_delegate_node_fusion=True)
    it.resize_tensor_input(it.get_input_details()[0]["index"], [1, *shape[:3]])
    it.allocate_tensors()
    nodes = it._get_ops_details()
    delegated = {t for n in nodes if n["op_name"] == "DELEGATE" for t in n["outputs"]}
    return [n["op_name"] for n in nodes if n["op_name"] != "DELEGATE"
            and not set(n["outputs"]) <= delegated]


def call(it: Interpreter, x) -> float:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    start = time.perf_counter()
    it.invoke()
    return time.perf_counter() - start


def measure(kind: str, shape, threads, rounds) -> dict:
    """{form: {"error", "mb", threads: (min ms, median ms)}} of one layer."""
    h, w, cin, cout = shape
    _, make_forms, reference, size = KINDS[kind]
    rng = np.random.default_rng(0)
    kernel = (rng.standard_normal((size, size, cin, cout))
              * np.sqrt(2 / (size * size * cin))).astype(np.float32)
    bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    x = rng.standard_normal((1, h, w, cin)).astype(np.float32)
    expected = reference(x, kernel, bias)
    models = {}
    for form, function in make_forms(kernel, bias).items():
        try:
            models[form] = micro_model(function, shape)
        except ValueError:  # a size the form does not take (F4: not divisible by 4)
            continue
    result = {}
    for form, content in models.items():
        it = interpreter(content, 1, shape)
        call(it, x)
        error = np.abs(it.get_tensor(it.get_output_details()[0]["index"]) - expected).max()
        result[form] = {"error": float(error), "mb": len(content) / 1e6,
                        "builtin": builtin_ops(content, shape)}
    for n in threads:
        its = {f: interpreter(c, n, shape) for f, c in models.items()}
        times = {f: [] for f in its}
        for it in its.values():
            call(it, x)
        for _ in range(rounds):
            for form, it in its.items():
                times[form].append(min(call(it, x) for _ in range(3)) * 1e3)
        for form, t in times.items():
            result[form][n] = (min(t), statistics.median(t))
    return result


def _shapes(text: str):
    shapes = []
    for item in text.split(","):
        hw, cin, cout = item.split(":")
        shapes.append((*map(int, hw.split("x")), int(cin), int(cout)))
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="vox")
    parser.add_argument("--convs", help="HxW:IN:OUT,... of 3x3 convs (default: the config's)")
    parser.add_argument("--ups", help="HxW:IN:OUT,... of up blocks, input size (default: "
                                      "the config's)")
    parser.add_argument("--heads", help="HxW:IN:OUT,... of the dense motion's mask + "
                                        "occlusion heads (default: the config's)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    layers = layer_shapes(args.config)
    for kind in KINDS:
        if getattr(args, f"{kind}s"):
            layers[kind] = _shapes(getattr(args, f"{kind}s"))
    threads = [int(t) for t in args.threads.split(",")]
    print(f"load at start: {open('/proc/loadavg').read().strip()}")
    for kind, shapes in layers.items():
        title, make_forms, _, _ = KINDS[kind]
        forms = list(make_forms(np.zeros((3, 3, 1, 2), np.float32), np.zeros(2, np.float32)))
        print(f"\n| {title} | " + " | ".join(f"{f} ms @{n}t (min / median)" for n in threads
                                           for f in forms)
              + " | max error | MB | ops off XNNPACK |")
        print("|---|" + "---:|" * (len(threads) * len(forms) + 2) + "---|")
        for shape in shapes:
            r = measure(kind, shape, threads, args.rounds)
            cells = [f"{r[f][n][0]:.2f} / {r[f][n][1]:.2f}" if f in r else "-"
                     for n in threads for f in forms]
            print(f"| {shape[0]}x{shape[1]} {shape[2]}->{shape[3]} | " + " | ".join(cells)
                  + " | " + " ".join(f"{r[f]['error']:.1e}" for f in forms if f in r)
                  + " | " + " ".join(f"{r[f]['mb']:.1f}" for f in forms if f in r)
                  + " | " + (", ".join(f"{f}: {' '.join(r[f]['builtin'])}" for f in forms
                                       if f in r and r[f]["builtin"]) or "none") + " |",
                  flush=True)
    print(f"\nload at end: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
