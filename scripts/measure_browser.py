"""Where the browser's time goes (issue 23, item 3): LiteRT.js and onnxruntime-web on wasm in
headless Chromium against native LiteRT (XNNPACK) on the same graphs, at each thread count.

`frames`: each browser runtime on a bundle's files (the browser backends, as `fomm-convert
bench --backends` drives them): which wasm binaries the page loaded (SIMD, relaxed SIMD,
threaded builds are separate files), the thread count the runtime reports, whether the page
is cross-origin isolated, and while frames run (the bench's frame item: kp_detector +
process_kp_driving + generate, source encoded once) the CPU time of every thread of
Chromium's processes: which threads really work, and how much.

`layers`: the generator's layer shapes in each form the converter can write (the micro-models
of scripts/measure_xnnpack.py, made with a static batch of 1 as LiteRT.js needs), plus a
1x1 conv (a plain GEMM: the matmul rate each runtime reaches), timed natively by
ai_edge_litert's Interpreter and in the page by LiteRT.js wasm (in-page time, without the
trip to Python), in turns round after round; each round takes the best of 3 calls, the
table gives medians over rounds and the wasm/native ratio.

    .venv/bin/python scripts/measure_browser.py frames --bundle DIR [--threads 1,2] [--frames 3]
    .venv/bin/python scripts/measure_browser.py layers [--config vox] [--threads 1,2]
                                                       [--rounds 5] [--kinds gemm,conv,up,head]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from fomm_convert.bench.worker import timed_items
from fomm_convert.bundle.open import open_bundle
from fomm_convert.runtime.browser.session import BrowserSession

from measure_xnnpack import KINDS, call, interpreter, layer_shapes

TICK = os.sysconf("SC_CLK_TCK")


def thread_times(session_id: int) -> dict[tuple[int, int], tuple[str, int]]:
    """{(pid, tid): (process:thread name, CPU ticks)} of every thread of the processes in a
    session (Chromium's browser, renderer, GPU and utility processes)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) != session_id:
                continue
            process = Path(f"/proc/{pid}/comm").read_text().strip()
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                out[int(pid), int(tid)] = (f"{process}:{name}", int(fields[11]) + int(fields[12]))
        except (OSError, ValueError):  # a process or thread that ended meanwhile
            continue
    return out


def busy_threads(before, after, seconds: float, share: float = 0.05) -> list[tuple[str, float]]:
    """(name, share of the wall time on a CPU) of the threads busy for at least `share`."""
    rows = []
    for key, (name, ticks) in after.items():
        used = (ticks - before.get(key, (name, 0))[1]) / TICK / seconds
        if used >= share:
            rows.append((name, used))
    return sorted(rows, key=lambda r: -r[1])


def measure_frames(bundle: Path, runtimes, threads, frames: int):
    opened = open_bundle(bundle, check=False)
    print("| runtime | threads | page reports | wasm loaded | frame s (median) | in-page "
          "generate s | busy threads (CPU share of the wall time) | CPU s per wall s | CPU s "
          "per frame |")
    print("|---|---:|---|---|---:|---:|---|---:|---:|")
    for runtime in runtimes:
        for n in threads:
            backend = opened.backend(runtime, threads=n)
            try:
                ready = backend.session.ready
                frame = timed_items(backend, opened.spec)["frame"]
                frame()  # warm-up
                session_id = os.getsid(backend.session.browser.process.pid)
                walls, generate = [], []
                before, start = thread_times(session_id), time.perf_counter()
                for _ in range(frames):
                    t0 = time.perf_counter()
                    frame()
                    walls.append(time.perf_counter() - t0)
                    generate.append(backend.session.last_call_ms / 1e3)
                seconds = time.perf_counter() - start
                after = thread_times(session_id)
                busy = busy_threads(before, after, seconds)
                cpu = busy_threads(before, after, frames, 0)  # every thread's CPU s per frame
            finally:
                backend.close()
            reports = (f"{ready['accelerator']['backend']}, {ready['accelerator']['threads']} "
                       f"threads, isolated: {ready['crossOriginIsolated']}")
            print(f"| {runtime} | {n} | {reports} | {', '.join(ready['wasm'])} | "
                  f"{statistics.median(walls):.2f} | {statistics.median(generate):.2f} | "
                  + ", ".join(f"{name} {used:.0%}" for name, used in busy)
                  + f" | {sum(u for _, u in busy):.2f} | {sum(u for _, u in cpu):.2f} |",
                  flush=True)


def _gemm_forms(kernel, bias):
    """A 1x1 conv: one GEMM of (H*W, IN) by (IN, OUT)."""
    k, b = tf.constant(kernel), tf.constant(bias)
    return {"1x1": lambda x: tf.nn.conv2d(x, k, 1, "VALID") + b}


LAYER_KINDS = {"gemm": ("1x1 conv (GEMM)", _gemm_forms, 1), **{
    kind: (title, forms, size) for kind, (title, forms, _, size) in KINDS.items()}}
GEMMS = [(64, 64, 256, 256), (32, 32, 512, 512)]


def static_model(function, shape) -> bytes:
    """A micro-model of batch 1 (LiteRT.js cannot resize), builtin ops only, its input
    "x" in the signature serving_default (the one LiteRT.js calls)."""
    h, w, cin, _ = shape
    module = tf.Module()  # with it, the converter writes the signature
    module.f = tf.function(function, input_signature=[tf.TensorSpec([1, h, w, cin])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.f.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def measure_layers(config: str, kinds, threads, rounds: int):
    shapes = layer_shapes(config)
    shapes["gemm"] = GEMMS
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="fomm-layers-") as folder:
        models = []  # (kind, shape, form, file name, input)
        for kind in kinds:
            _, make_forms, size = LAYER_KINDS[kind]
            for shape in shapes[kind]:
                h, w, cin, cout = shape
                kernel = (rng.standard_normal((size, size, cin, cout))
                          * np.sqrt(2 / (size * size * cin))).astype(np.float32)
                bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
                x = rng.standard_normal((1, h, w, cin)).astype(np.float32)
                for form, function in make_forms(kernel, bias).items():
                    try:
                        content = static_model(function, shape)
                    except ValueError:  # a size the form does not take (F4: not by 4)
                        continue
                    name = f"m{len(models)}"
                    Path(folder, f"{name}.tflite").write_bytes(content)
                    models.append((kind, shape, form, name, x))
        flops = {m[3]: _flops(m[0], m[1]) for m in models}
        files = {name: {"serving_default": f"{name}.tflite"} for *_, name, _ in models}
        print(f"load at start: {open('/proc/loadavg').read().strip()}")
        print("\n| layer | form | GFLOP (direct) | " + " | ".join(
            f"native ms @{n}t | wasm ms @{n}t | wasm/native @{n}t" for n in threads) + " |")
        print("|---|---|---:|" + "---:|" * 3 * len(threads))
        results = {}
        for n in threads:
            session = BrowserSession("litert-js", Path(folder), files, threads=n)
            try:
                natives = {m[3]: interpreter(Path(folder, f"{m[3]}.tflite").read_bytes(), n,
                                             m[1]) for m in models}
                for r in range(rounds):
                    for *_, name, x in models:
                        native = min(call(natives[name], x) for _ in range(3)) * 1e3
                        wasm = []
                        for _ in range(3):
                            session.run(name, "serving_default", {"x": x}, name)
                            wasm.append(session.last_call_ms)
                        if r == 0:  # the first round warms both up
                            continue
                        results.setdefault((name, n), []).append((native, min(wasm)))
            finally:
                session.close()
        for kind, shape, form, name, _ in models:
            cells = []
            for n in threads:
                native = statistics.median(t[0] for t in results[name, n])
                wasm = statistics.median(t[1] for t in results[name, n])
                cells += [f"{native:.2f}", f"{wasm:.2f}", f"{wasm / native:.2f}x"]
            print(f"| {LAYER_KINDS[kind][0]} {shape[0]}x{shape[1]} {shape[2]}->{shape[3]} | "
                  f"{form} | {flops[name]:.2f} | " + " | ".join(cells) + " |", flush=True)
        print(f"\nload at end: {open('/proc/loadavg').read().strip()}")


def _flops(kind: str, shape) -> float:
    """GFLOP of the layer as a direct convolution (the up block's: at the output size)."""
    h, w, cin, cout = shape
    size = LAYER_KINDS[kind][2]
    pixels = h * w * (4 if kind == "up" else 1)
    return 2 * pixels * size * size * cin * cout / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    frames = sub.add_parser("frames")
    frames.add_argument("--bundle", type=Path, required=True)
    frames.add_argument("--runtimes", default="litert-js,onnx-web")
    frames.add_argument("--frames", type=int, default=3)
    layers = sub.add_parser("layers")
    layers.add_argument("--config", default="vox")
    layers.add_argument("--kinds", default=",".join(LAYER_KINDS))
    layers.add_argument("--rounds", type=int, default=5)
    for p in (frames, layers):
        p.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.what == "frames":
        measure_frames(args.bundle, args.runtimes.split(","), threads, args.frames)
    else:
        measure_layers(args.config, args.kinds.split(","), threads, args.rounds)


if __name__ == "__main__":
    main()
