"""The benchmark's orchestration: one worker per (backend, threads), interleaved rounds,
medians, FLOP floors and the JSON-able report (the package docstring describes it)."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from ..animation.jobs import animation_mode
from ..bundle.open import open_bundle
from ..parity.quality import media_quality
from . import BenchError
from .backends import DEFAULT_BACKENDS, GRAPH_OF, artifact_bytes, bundle_backends
from .flops import GRAPHS, counted, flop_counts
from .machine import machine_info, matmul_gflops
from .worker import Worker

QUALITY_SOURCE, QUALITY_DRIVING = "source.png", "driving.mp4"


def bench(bundle: Path, checkpoint: Path, threads=(1, 2), repeats: int = 5, warmup: int = 1,
          backends=None, echo=None, quality_media: Path | None = None,
          quality_frames: int = 32) -> dict:
    """Run the benchmark; returns the JSON-able report. With `quality_media` (a directory
    with source.png and driving.mp4) and both TFLite float32 and int8 in the bundle, it
    also holds int8_quality."""
    bundle, checkpoint = Path(bundle), Path(checkpoint)
    spec = open_bundle(bundle, check=False).spec
    available = ["torch"] + bundle_backends(bundle)
    if backends is None:
        backends = [b for b in available if b in DEFAULT_BACKENDS]
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
    say("matmul throughput (1 core, OpenBLAS) ...")
    matmul = matmul_gflops()
    machine["matmul_gflops_per_core"] = round(matmul["gflops"], 1)
    machine["openblas_core"] = matmul["openblas_core"]
    flops = {graph: flop_counts(spec, graph) for graph in GRAPHS} if counted(spec) else None
    rate = matmul["gflops"] * 1e9
    results = []
    for count in threads:
        for worker, memory in _time_thread_count(backends, count, bundle, checkpoint,
                                                 repeats, warmup, say):
            results.append(_result(worker, memory, flops, rate, bundle, checkpoint))
    baseline = {r["threads"]: r["frames_per_second"] for r in results if r["backend"] == "torch"}
    for r in results:
        if r["threads"] in baseline:
            r["speedup_vs_torch"] = r["frames_per_second"] / baseline[r["threads"]]
    machine["load_average_end"] = list(os.getloadavg())
    report = {
        "machine": machine, "bundle": str(bundle), "checkpoint": str(checkpoint),
        "spec": spec.name, "frame_shape": list(spec.frame_shape), "batch": 1,
        "repeats": repeats, "warmup": warmup, "statistic": "median",
        "flops": flops and {g: {k: v / 1e9 for k, v in c.items()} for g, c in flops.items()},
        "flops_unit": "GFLOP per call, batch 1",
        "flop_floor_ms": flops and 1000 * flops["reference"]["frame"] / rate,
        "results": results,
    }
    if quality_media and {"tflite", "tflite-int8"} <= set(available):
        say("int8 quality ...")
        media = Path(quality_media)
        report["int8_quality"] = int8_quality(bundle, media / QUALITY_SOURCE,
                                              media / QUALITY_DRIVING, quality_frames)
    return report


def _time_thread_count(backends, count, bundle, checkpoint, repeats, warmup, say):
    """[(worker, its memory figures)] of every backend at one thread count, timed
    interleaved."""
    workers = []
    try:
        for name in backends:
            say(f"{name}, {count} thread(s): loading and warming up ...")
            workers.append(Worker(name, count, bundle, checkpoint, warmup))
        for r in range(repeats):
            say(f"{count} thread(s): round {r + 1}/{repeats}")
            for worker in workers[r % len(workers):] + workers[:r % len(workers)]:
                worker.round()
        memory = [worker.finish() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    return list(zip(workers, memory))


def _result(worker, memory, flops, rate, bundle, checkpoint) -> dict:
    """One row of the report: medians in ms, memory (bench/memory.py), size and the FLOP
    floor (None where the FLOPs are not counted)."""
    ms = {name: 1000 * statistics.median(values) for name, values in worker.samples.items()}
    graph = GRAPH_OF[worker.backend]
    return {
        "backend": worker.backend, "threads": worker.threads,
        "frames_per_second": 1000 / ms["frame"], "frame_ms": ms["frame"],
        "kp_detector_ms": ms["kp_detector"],
        "process_kp_driving_ms": ms["process_kp_driving"],
        "generator_ms": ms["generator"], "generator_encoded_ms": ms["generator_encoded"],
        **memory,
        "artifact_mb": artifact_bytes(worker.backend, bundle, checkpoint) / 2 ** 20,
        "graph": graph, "graph_gflop_per_frame": flops and flops[graph]["frame"] / 1e9,
        "flop_floor_ms": flops and 1000 * flops[graph]["frame"] / (rate * worker.threads),
        "samples_ms": {k: [1000 * v for v in values] for k, values in worker.samples.items()}}


def int8_quality(bundle: Path, source_path: Path, driving_path: Path, frames: int = 32,
                 threads: int | None = None) -> dict:
    """Dynamic-range int8 TFLite against float32 TFLite of the same bundle, animating a
    real source with a real driving video as the demo does (parity.quality)."""
    opened = open_bundle(bundle, check=False)
    reference, candidate = (opened.backend(name, threads=threads)
                            for name in ("tflite", "tflite-int8"))
    return media_quality(opened.spec, animation_mode(opened.spec), reference, candidate,
                         source_path, driving_path, frames)
