"""`fomm-convert bench`: per-frame speed of every backend of a bundle, side by side with
PyTorch eager on the same checkpoint, on this machine.

    fomm-convert bench --bundle DIR --checkpoint CKPT [--threads 1,2] [--repeats 5]
                       [--json PATH] [--backends tflite,onnx,...] [--quality-media DIR]

What is measured, per backend and thread count (each (backend, threads) in its own
subprocess, so that its peak RSS and thread settings are its own):
- kp_detector (one driving frame), process_kp_driving (relative, adapted scale),
  generator (the full serving_default with its diagnostics: no encode-once) and
  generator_encoded (`generate` from the source encoded once);
- frame: the per-frame pipeline an application runs with encode-once, timed as one unit
  (kp_detector on the driving frame + process_kp_driving + generate); frames/s = 1000 /
  frame_ms;
- peak RSS of the worker (VmHWM, after loading, warm-up and every run) and the size of
  the files the backend loads.
Timing: batch 1, after `--warmup` runs of everything; then `--repeats` rounds, each round
timing every item once in every worker of a thread count, the workers' order rotated
from round to round (interleaved: a slow spell of a shared machine hits every backend);
the median of the rounds is reported. Thread counts run one after the other, so only one
thread count's workers are alive at a time.

The floor: FLOPs per frame counted analytically from the spec (`flop_counts`: 2 x the
multiply-adds of every convolution and matrix product, plus the elementwise work of
BatchNorm, activations, pooling and grid_sample), divided by this machine's float32
matmul throughput on one core (numpy/OpenBLAS, 2048^3, best of several, with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that measurement only: they select
slower kernels). `flop_floor_ms` is the reference function's encode-once frame on one
thread; each result also has the floor of the graph its backend runs at its thread count.

`int8_quality` (also `--quality-media DIR`, with DIR/source.png and DIR/driving.mp4)
states what the dynamic-range int8 TFLite generator costs in quality against float32
TFLite: PSNR of the predicted frames and keypoint drift on real media.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from .architecture import use_phase_conv, winograd_tile

# Backends in table order; torch is the baseline, run from the checkpoint.
BENCH_BACKENDS = ("torch", "tflite", "tflite-fp16", "tflite-int8", "onnx", "savedmodel")
TFLITE_SUFFIX = {"tflite": "", "tflite-fp16": ".fp16", "tflite-int8": ".int8"}
MODELS = ("kp_detector", "process_kp_driving", "generator")
ITEMS = ("frame", "kp_detector", "process_kp_driving", "generator_encoded", "generator")
# The Winograd target (tf_model/algebra.py) of each graph flop_counts counts.
WINOGRAD_TARGET = {"reference": None, "xnnpack": "xnnpack", "mlas": "mlas"}
# Which graph each backend runs, for its FLOP floor (see flop_counts).
GRAPH_OF = {"torch": "reference", "tflite": "xnnpack", "tflite-fp16": "xnnpack",
            "tflite-int8": "xnnpack", "savedmodel": "xnnpack", "onnx": "mlas"}
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS")


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------------------ FLOPs
def _conv(h, w, k, cin, cout, pad):
    """(FLOPs, output size) of a stride-1 conv: 2 x multiply-adds, plus the bias."""
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    return 2 * oh * ow * k * k * cin * cout + oh * ow * cout, (oh, ow)


def _conv3x3(h, w, cin, cout, tile: int, graph: str):
    """FLOPs of a 3x3 pad-1 conv, directly (tile 0) or by Winograd F(m x m, 3x3) (tile m):
    (m+2)^2 products of (cin x cout) per m x m output tile, plus the transforms: adds in
    the TF graph (F(2x2, 3x3): 32 per input tile and channel, 24 per output tile and
    channel), dense products in the ONNX graph ((m+2)^4 per input tile and channel,
    m^2 (m+2)^2 per output tile and channel)."""
    if not tile:
        return _conv(h, w, 3, cin, cout, 1)[0]
    a, tiles = tile + 2, (h // tile) * (w // tile)
    if graph == "mlas":
        transforms = 2 * a ** 4 * cin + 2 * tile ** 2 * a ** 2 * cout
    else:
        transforms = 32 * cin + 24 * cout
    return tiles * (2 * a * a * cin * cout + transforms) + h * w * cout


def _up(h, w, cin, cout, fast: bool):
    """An UpBlock2d at input (h, w): nearest x2 + 3x3 conv (+ BN + ReLU); fast: the phase
    conv, a 2x2 conv with 4*cout channels over (h+1) x (w+1) positions, where it is used."""
    if fast and use_phase_conv((h, w)):
        return 2 * (h + 1) * (w + 1) * 4 * cin * 4 * cout + 2 * 4 * h * w * cout
    return _conv(2 * h, 2 * w, 3, cin, cout, 1)[0] + 3 * 4 * h * w * cout


def _hourglass(h, w, block_expansion, in_features, num_blocks, max_features, graph):
    target = WINOGRAD_TARGET[graph]
    fast = graph != "reference"

    def width(i):
        return min(max_features, block_expansion * 2 ** i)
    flops, sizes, size = 0, [], (h, w)
    for i in range(num_blocks):
        cin, cout = (in_features if i == 0 else width(i)), width(i + 1)
        tile = winograd_tile((3, 3, cin, cout), 1, size, target)
        flops += _conv3x3(*size, cin, cout, tile, graph)
        flops += size[0] * size[1] * cout * (1 if fast else 3)
        sizes.append(size)
        size = (size[0] // 2, size[1] // 2)
        flops += size[0] * size[1] * cout * 4  # average pool
    for i in reversed(range(num_blocks)):
        cin = (1 if i == num_blocks - 1 else 2) * width(i + 1)
        flops += _up(*size, cin, width(i), fast)
        size = sizes[i]
    return flops


def _downsampled(frame, scale):
    step = 1 if scale == 1 else int(1 / scale)
    return -(-frame[0] // step), -(-frame[1] // step), step


def _anti_alias(h, w, channels, scale):
    """Depthwise blur at the strided outputs: 2 * k^2 per output value."""
    if scale == 1:
        return 0
    k = 2 * round((1 / scale - 1) / 2 * 4) + 1  # docs/semantics.md, AntiAliasInterpolation2d
    return 2 * k * k * h * w * channels


def flop_counts(spec, graph: str = "reference") -> dict:
    """FLOPs per call of each model of a spec at batch 1, for the reference function
    ("reference") or a fast graph ("xnnpack": TFLite/SavedModel, "mlas": ONNX).

    Keys: kp_detector, process_kp_driving, encode_source, generator_encoded (generate
    from encoded features), generator (the full generator, which also computes the
    diagnostic `deformed`), frame (kp_detector + process_kp_driving + generator_encoded).
    """
    if graph not in WINOGRAD_TARGET:
        raise ValueError(f"unknown graph {graph!r}")
    fast = graph != "reference"
    height, width, channels = spec.frame_shape
    k = spec.num_kp
    jac = spec.estimate_jacobian
    kpp, gp, dp = spec.kp_detector, spec.generator, spec.dense_motion

    # Keypoint detector.
    kh, kw, _ = _downsampled((height, width), kpp["scale_factor"])
    kp = _anti_alias(kh, kw, channels, kpp["scale_factor"])
    # Every exported graph keeps the detector's reference structure (converter/build.py).
    kp += _hourglass(kh, kw, kpp["block_expansion"], channels, kpp["num_blocks"],
                     kpp["max_features"], "reference")
    features = kpp["block_expansion"] + channels
    pad = kpp["pad"]
    head, (hh, hw) = _conv(kh, kw, 7, features, k, pad)
    kp += head + 4 * hh * hw * k  # softmax (exp, sum, divide) + expected coordinates
    if jac:
        maps = 1 if kpp["single_jacobian_map"] else k
        kp += _conv(kh, kw, 7, features, 4 * maps, pad)[0] + 2 * hh * hw * 4 * k
    process = 200 * k  # hull area and the 2x2 algebra: negligible

    # Generator: source encoder.
    be, n_down = gp["block_expansion"], gp["num_down_blocks"]

    def gwidth(i):
        return min(gp["max_features"], be * 2 ** i)
    first = _conv(height, width, 7, channels, be, 3)[0] + height * width * be * (1 if fast else 3)
    encode, size = first, (height, width)
    target = WINOGRAD_TARGET[graph]
    for i in range(n_down):
        cin, cout = gwidth(i), gwidth(i + 1)
        encode += _conv3x3(*size, cin, cout, winograd_tile((3, 3, cin, cout), 1, size, target),
                           graph)
        encode += size[0] * size[1] * cout * (1 if fast else 3)
        size = (size[0] // 2, size[1] // 2)
        encode += size[0] * size[1] * cout * 4
    dh, dw, _ = _downsampled((height, width), dp["scale_factor"])
    encode += _anti_alias(dh, dw, channels, dp["scale_factor"])

    # Dense motion (per frame).
    n = k + 1
    dense = 2 * dh * dw * k * 12  # two gaussians per keypoint
    dense += dh * dw * k * (12 if jac else 4)  # sparse motions
    dense += dh * dw * n * (channels * 8 + 20)  # grid_sample of the K+1 motions
    dense += _hourglass(dh, dw, dp["block_expansion"], n * (channels + 1), dp["num_blocks"],
                        dp["max_features"], graph)
    dfeatures = dp["block_expansion"] + n * (channels + 1)
    dense += _conv(dh, dw, 7, dfeatures, n, 3)[0] + 4 * dh * dw * n  # mask + softmax
    dense += 4 * dh * dw * n  # deformation = sum of mask * motions
    if gp["estimate_occlusion_map"]:
        dense += _conv(dh, dw, 7, dfeatures, 1, 3)[0] + 4 * dh * dw

    # Decoder (per frame).
    fh, fw = size
    bottleneck = gwidth(n_down)
    decode = fh * fw * (bottleneck * 8 + 20)  # warp the features
    decode += fh * fw * bottleneck if gp["estimate_occlusion_map"] else 0
    for _ in range(gp["num_bottleneck_blocks"]):
        tile = winograd_tile((3, 3, bottleneck, bottleneck), 1, size, target)
        decode += 2 * _conv3x3(fh, fw, bottleneck, bottleneck, tile, graph)
        decode += fh * fw * bottleneck * (4 if fast else 6)  # norm1 (+ norm2), ReLUs, add
    for i in range(n_down):
        cin, cout = gwidth(n_down - i), gwidth(n_down - i - 1)
        decode += _up(fh, fw, cin, cout, fast)
        fh, fw = 2 * fh, 2 * fw
    if fast and fh % 2 == 0 and fw % 2 == 0:  # the stride-2 final conv, 8x8 on 12 channels
        decode += 2 * (fh // 2) * (fw // 2) * 64 * be * 4 * channels
    else:
        decode += _conv(fh, fw, 7, be, channels, 3)[0]
    decode += 4 * fh * fw * channels  # sigmoid

    deformed = height * width * (channels * 8 + 20)
    generate = dense + decode
    return {"kp_detector": kp, "process_kp_driving": process, "encode_source": encode,
            "generator_encoded": generate, "generator": encode + generate + deformed,
            "frame": kp + process + generate}


# ------------------------------------------------------------------------------ machine
def matmul_gflops(size: int = 2048, repeats: int = 5) -> dict:
    """float32 matmul throughput of one core (numpy/OpenBLAS), measured in a subprocess
    with one BLAS thread and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (there only)."""
    code = f"""
import ctypes, json, time, numpy as np
a = np.random.default_rng(0).standard_normal(({size}, {size})).astype(np.float32)
b = np.random.default_rng(1).standard_normal(({size}, {size})).astype(np.float32)
a @ b
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - start)
core = None
for line in open("/proc/self/maps"):
    if "openblas" in line.lower():
        lib = ctypes.CDLL(line.split()[-1])
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, name):
                getattr(lib, name).restype = ctypes.c_char_p
                core = getattr(lib, name)().decode()
                break
        break
print(json.dumps({{"gflops": 2 * {size} ** 3 / min(times) / 1e9, "openblas_core": core}}))
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update({name: "1" for name in THREAD_ENV})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(size=size, repeats=repeats, statistic="best")
    return result


def machine_info() -> dict:
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "torch", "tensorflow", "ai-edge-litert", "onnxruntime"):
        try:
            from importlib.metadata import version
            versions[package] = version(package)
        except Exception:  # not installed
            versions[package] = None
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "simd": sorted(f for f in flags if f.startswith(("avx", "fma", "amx"))),
            "python": platform.python_version(), "versions": versions,
            "load_average": list(os.getloadavg())}


# ------------------------------------------------------------------------------ bundle
def bundle_backends(bundle: Path) -> list[str]:
    """The artifact backends a bundle holds, in table order."""
    bundle = Path(bundle)
    found = []
    for name in BENCH_BACKENDS[1:]:
        if name in TFLITE_SUFFIX:
            ok = all((bundle / "tflite" / f"{m}{TFLITE_SUFFIX[name]}.tflite").is_file()
                     for m in MODELS)
        elif name == "onnx":
            from .runtime.onnx_backend import ARTIFACT_FILES
            ok = all((bundle / "onnx" / f).is_file() for f in ARTIFACT_FILES)
        else:
            ok = all((bundle / "savedmodel" / m / "saved_model.pb").is_file() for m in MODELS)
        if ok:
            found.append(name)
    return found


def artifact_bytes(backend: str, bundle: Path, checkpoint: Path) -> int:
    """Bytes of the files a backend loads (torch: the checkpoint file)."""
    bundle = Path(bundle)
    if backend == "torch":
        return Path(checkpoint).stat().st_size
    if backend in TFLITE_SUFFIX:
        files = [bundle / "tflite" / f"{m}{TFLITE_SUFFIX[backend]}.tflite" for m in MODELS]
    elif backend == "onnx":
        from .runtime.onnx_backend import ARTIFACT_FILES
        files = [bundle / "onnx" / f for f in ARTIFACT_FILES]
    else:
        files = [p for p in (bundle / "savedmodel").rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def _spec_of(bundle: Path):
    from .bundle import read_manifest
    from .verify import bundle_spec
    return bundle_spec(bundle, read_manifest(bundle))


# ------------------------------------------------------------------------------ worker
def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(backend_name: str, threads: int, bundle: str, checkpoint: str, warmup: int):
    """Load one backend, warm it up, then time one round per 'round' line on stdin.

    Protocol (one JSON line each, on the original stdout; anything the frameworks print
    goes to stderr): {"ready": ...}, then per round {"times": {item: seconds}}, and on
    'quit' {"peak_rss_mb": ...}."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if backend_name == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    from .fixtures import demo_inputs
    from .runtime import load_backend
    start = time.perf_counter()
    spec = _spec_of(Path(bundle))
    if backend_name == "torch":
        from .checkpoint import load_checkpoint
        backend = load_backend("torch", spec=spec, checkpoint=load_checkpoint(checkpoint),
                               threads=threads)
    else:
        backend = load_backend(backend_name, spec=spec, bundle=bundle, threads=threads)
    source, driving = demo_inputs(spec.frame_shape, frames=4)
    frame = driving[2:3]
    kp_source = backend.kp_detector(source)
    kp_initial = backend.kp_detector(driving[:1])
    encoded = backend.encode_source(source)

    def normalise(kp):
        return backend.process_kp_driving(kp, kp_initial, kp_source, True, True, True)
    kp_norm = normalise(backend.kp_detector(frame))
    items = {
        "frame": lambda: backend.generate(encoded, normalise(backend.kp_detector(frame)),
                                          kp_source),
        "kp_detector": lambda: backend.kp_detector(frame),
        "process_kp_driving": lambda: normalise(kp_norm),
        "generator_encoded": lambda: backend.generate(encoded, kp_norm, kp_source),
        "generator": lambda: backend.generator(source, kp_norm, kp_source),
    }
    for _ in range(warmup):
        for run in items.values():
            run()
    protocol.write(json.dumps({"ready": True, "load_s": time.perf_counter() - start}) + "\n")
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = {}
        for name in ITEMS:
            t0 = time.perf_counter()
            items[name]()
            times[name] = time.perf_counter() - t0
        protocol.write(json.dumps({"times": times}) + "\n")
    protocol.write(json.dumps({"peak_rss_mb": _peak_rss_mb()}) + "\n")


class _Worker:
    def __init__(self, backend: str, threads: int, bundle: Path, checkpoint: Path,
                 warmup: int):
        self.backend, self.threads = backend, threads
        env = dict(os.environ)
        env.update({name: str(threads) for name in THREAD_ENV})
        env["TF_NUM_INTEROP_THREADS"] = "1"
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fomm_convert.bench", "--worker", backend, str(threads),
             str(bundle), str(checkpoint), str(warmup)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, bufsize=1)
        self.samples = {name: [] for name in ITEMS}
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            tail = "\n".join(self.log.read().strip().splitlines()[-15:])
            raise BenchError(f"{self.backend} ({self.threads} threads) worker died "
                             f"(exit {self.proc.returncode}):\n{tail}")
        return json.loads(line)

    def round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        for name, seconds in self._read()["times"].items():
            self.samples[name].append(seconds)

    def finish(self) -> float:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        peak = self._read()["peak_rss_mb"]
        self.proc.wait(timeout=120)
        self.log.close()
        return peak

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------ bench
def bench(bundle: Path, checkpoint: Path, threads=(1, 2), repeats: int = 5, warmup: int = 1,
          backends=None, echo=None) -> dict:
    """Run the benchmark; returns the JSON-able report (see the module docstring)."""
    bundle, checkpoint = Path(bundle), Path(checkpoint)
    spec = _spec_of(bundle)
    available = ["torch"] + bundle_backends(bundle)
    if backends is None:
        backends = available
    missing = [b for b in backends if b not in available]
    if missing:
        raise BenchError(f"{bundle}: no {', '.join(missing)} (it has "
                         f"{', '.join(available[1:]) or 'no artifacts'})")
    if repeats < 1 or warmup < 0:
        raise BenchError("repeats must be >= 1 and warmup >= 0")
    say = echo or (lambda text: None)
    machine = machine_info()
    # A build usually precedes the bench (make bench): its gigabytes of files would be
    # written back to disk during the timings.
    os.sync()
    say(f"matmul throughput (1 core, OpenBLAS) ...")
    matmul = matmul_gflops()
    machine["matmul_gflops_per_core"] = round(matmul["gflops"], 1)
    machine["openblas_core"] = matmul["openblas_core"]
    flops = {graph: flop_counts(spec, graph) for graph in ("reference", "xnnpack", "mlas")}
    rate = matmul["gflops"] * 1e9
    results = []
    for count in threads:
        workers = []
        try:
            for name in backends:
                say(f"{name}, {count} thread(s): loading and warming up ...")
                workers.append(_Worker(name, count, bundle, checkpoint, warmup))
            for r in range(repeats):
                say(f"{count} thread(s): round {r + 1}/{repeats}")
                for worker in workers[r % len(workers):] + workers[:r % len(workers)]:
                    worker.round()
            peaks = [worker.finish() for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
        for worker, peak in zip(workers, peaks):
            ms = {name: 1000 * statistics.median(values)
                  for name, values in worker.samples.items()}
            graph = GRAPH_OF[worker.backend]
            results.append({
                "backend": worker.backend, "threads": count,
                "frames_per_second": 1000 / ms["frame"], "frame_ms": ms["frame"],
                "kp_detector_ms": ms["kp_detector"],
                "process_kp_driving_ms": ms["process_kp_driving"],
                "generator_ms": ms["generator"], "generator_encoded_ms": ms["generator_encoded"],
                "peak_rss_mb": peak,
                "artifact_mb": artifact_bytes(worker.backend, bundle, checkpoint) / 2 ** 20,
                "graph": graph, "graph_gflop_per_frame": flops[graph]["frame"] / 1e9,
                "flop_floor_ms": 1000 * flops[graph]["frame"] / (rate * count),
                "samples_ms": {k: [1000 * v for v in values]
                               for k, values in worker.samples.items()}})
    baseline = {r["threads"]: r["frames_per_second"] for r in results if r["backend"] == "torch"}
    for r in results:
        if r["threads"] in baseline:
            r["speedup_vs_torch"] = r["frames_per_second"] / baseline[r["threads"]]
    machine["load_average_end"] = list(os.getloadavg())
    return {
        "machine": machine, "bundle": str(bundle), "checkpoint": str(checkpoint),
        "spec": spec.name, "frame_shape": list(spec.frame_shape), "batch": 1,
        "repeats": repeats, "warmup": warmup, "statistic": "median",
        "flops": {g: {k: v / 1e9 for k, v in c.items()} for g, c in flops.items()},
        "flops_unit": "GFLOP per call, batch 1",
        "flop_floor_ms": 1000 * flops["reference"]["frame"] / rate,
        "results": results,
    }


def markdown(report: dict) -> str:
    """The report as a Markdown table (and the floor) for people."""
    m = report["machine"]
    lines = [f"# fomm-convert bench: {report['spec']} {'x'.join(map(str, report['frame_shape']))}",
             "",
             f"{m['cpu']}, {m['cores']} cores; float32 matmul {m['matmul_gflops_per_core']} "
             f"GFLOP/s per core (OpenBLAS {m['openblas_core']}); load average at start "
             f"{m['load_average'][0]:.2f}, at end {m['load_average_end'][0]:.2f}.",
             f"Batch 1, median of {report['repeats']} interleaved rounds after "
             f"{report['warmup']} warm-up run(s). Frame = kp_detector + process_kp_driving + "
             "generate (source encoded once). generator = the full generator without "
             "encode-once.",
             f"FLOPs per frame (encode-once): reference "
             f"{report['flops']['reference']['frame']:.1f} G, TFLite/SavedModel graph "
             f"{report['flops']['xnnpack']['frame']:.1f} G, ONNX graph "
             f"{report['flops']['mlas']['frame']:.1f} G; floor of the reference frame on one "
             f"core: {report['flop_floor_ms']:.0f} ms.", "",
             "| backend | threads | frames/s | frame ms | vs torch | kp_detector ms | "
             "process_kp ms | generator ms | generate (encoded) ms | floor ms | "
             "peak RSS MB | size MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(
            f"| {r['backend']} | {r['threads']} | {r['frames_per_second']:.2f} | "
            f"{r['frame_ms']:.1f} | {r.get('speedup_vs_torch', float('nan')):.2f}x | "
            f"{r['kp_detector_ms']:.1f} | {r['process_kp_driving_ms']:.2f} | "
            f"{r['generator_ms']:.1f} | {r['generator_encoded_ms']:.1f} | "
            f"{r['flop_floor_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['artifact_mb']:.1f} |")
    if "int8_quality" in report:
        q = report["int8_quality"]
        lines += ["", f"int8 TFLite vs float32 TFLite on {q['frames']} frames of "
                      f"{q['driving']}: PSNR mean {q['psnr_db_mean']:.2f} dB (min "
                      f"{q['psnr_db_min']:.2f}), max pixel difference {q['max_abs']:.3f}, "
                      f"keypoint drift max {q['keypoint_drift_max']:.2e}."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ int8 quality
def psnr(a, b, peak: float = 1.0) -> float:
    import numpy as np
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def int8_quality(bundle: Path, source_path: Path, driving_path: Path, frames: int = 32,
                 threads: int | None = None) -> dict:
    """Dynamic-range int8 TFLite against float32 TFLite of the same bundle, animating a
    real source with a real driving video as the demo does (see variant_quality)."""
    import numpy as np

    from .media import open_video, read_image
    from .runtime import load_backend
    bundle = Path(bundle)
    spec = _spec_of(bundle)
    size = tuple(spec.frame_shape[:2])
    source = read_image(source_path, size)[None]
    driving = []
    for frame in open_video(driving_path).frames(size):
        driving.append(frame)
        if len(driving) == frames:
            break
    backends = [load_backend(name, spec=spec, bundle=bundle, threads=threads)
                for name in ("tflite", "tflite-int8")]
    return {"source": str(source_path), "driving": str(driving_path),
            **variant_quality(spec, *backends, source, np.stack(driving))}


def variant_quality(spec, reference, candidate, source, driving) -> dict:
    """A lower-precision variant against float32 (relative motion, adapted scale,
    encode-once, as the demo animates): PSNR (peak 1) of each predicted frame, and the
    keypoint drift (max |candidate - reference| of the detector's keypoint values on the
    source and every driving frame; the int8 variant keeps the detector float, so 0)."""
    import numpy as np
    outputs = []
    for backend in (reference, candidate):
        kp_source = backend.kp_detector(source)
        kps = [backend.kp_detector(driving[i:i + 1]) for i in range(len(driving))]
        encoded = backend.encode_source(source)
        predictions = []
        for kp in kps:
            norm = backend.process_kp_driving(kp, kps[0], kp_source, spec.relative,
                                              spec.relative, spec.adapt_scale)
            predictions.append(backend.generate(encoded, norm, kp_source)[0])
        values = np.concatenate([kp_source["value"]] + [kp["value"] for kp in kps])
        outputs.append((np.stack(predictions), values))
    fp32, low = outputs
    scores = [psnr(a, b) for a, b in zip(fp32[0], low[0])]
    return {"reference": "tflite (float32)", "candidate": "tflite-int8", "frames": len(scores),
            "psnr_db_mean": float(np.mean(scores)), "psnr_db_min": float(np.min(scores)),
            "psnr_db_median": float(np.median(scores)),
            "max_abs": float(np.abs(fp32[0] - low[0]).max()),
            "mean_abs": float(np.abs(fp32[0] - low[0]).mean()),
            "keypoint_drift_max": float(np.abs(fp32[1] - low[1]).max()),
            "keypoint_drift_mean": float(np.abs(fp32[1] - low[1]).mean())}


# ------------------------------------------------------------------------------ command
def _threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise click.BadParameter("thread counts must be >= 1")
    return values


@click.command("bench")
@click.option("--bundle", required=True, type=click.Path(exists=True, file_okay=False),
              help="A bundle directory (fomm-convert build).")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The bundle's checkpoint, for the PyTorch eager baseline.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the report as JSON here.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts.")
@click.option("--repeats", default=5, show_default=True, type=int,
              help="Interleaved timed rounds (the median is reported).")
@click.option("--warmup", default=1, show_default=True, type=int,
              help="Untimed runs of everything before the rounds.")
@click.option("--backends", help="Comma-separated subset of: " + ", ".join(BENCH_BACKENDS)
              + " (default: torch and every format of the bundle).")
@click.option("--quality-media", type=click.Path(file_okay=False),
              help="Directory with source.png and driving.mp4: also measure int8 vs fp32.")
@click.option("--quality-frames", default=32, show_default=True, type=int)
def bench_command(bundle, checkpoint, json_path, threads, repeats, warmup, backends,
                  quality_media, quality_frames):
    """Frames per second of every backend of a bundle vs PyTorch eager, on this machine."""
    chosen = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
    try:
        report = bench(Path(bundle), Path(checkpoint), _threads(threads), repeats, warmup,
                       chosen, echo=lambda text: click.echo(text, err=True))
        if quality_media:
            media = Path(quality_media)
            if "tflite-int8" in bundle_backends(Path(bundle)) and "tflite" in \
                    bundle_backends(Path(bundle)):
                click.echo("int8 quality ...", err=True)
                report["int8_quality"] = int8_quality(
                    Path(bundle), media / "source.png", media / "driving.mp4", quality_frames)
    except BenchError as exc:
        raise click.ClickException(str(exc))
    click.echo(markdown(report), nl=False)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        raise SystemExit("usage: fomm-convert bench --help")
