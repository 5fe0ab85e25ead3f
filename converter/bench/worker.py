"""The timing worker: one backend at one thread count in its own process, so that its
memory and thread settings are its own; and `Worker`, the parent's handle on it.

Started as `python -m fomm_convert.bench --worker BACKEND THREADS BUNDLE CHECKPOINT
WARMUP`. Loading and the warm-up are the memory pass (memory.py: stages start, loaded,
ready, and a USS sampler thread); the timed rounds run after it, without the sampler.
Protocol (one JSON line each, on the worker's original stdout; anything the frameworks
print goes to stderr): {"ready": ..., "load_s": ..., "memory": {...}} (or {"error":
message} when the backend cannot be opened), then per 'round' line on stdin {"times":
{item: seconds}}, and on 'quit' {"peak_rss_mb": ..., "uss_end_mb": ...}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..animation.jobs import animation_mode
from ..errors import FommError
from ..fixtures import demo_inputs
from . import BenchError
from .backends import loaded_files
from .machine import THREAD_ENV
from .memory import MB, Sampler, Stages, peak_rss_bytes, uss_bytes

ITEMS = ("frame", "kp_detector", "process_kp_driving", "generator_encoded", "generator")


def timed_items(backend, spec) -> dict:
    """The timed calls on the demo's drawn face, each a closure over its prepared inputs;
    the keypoints normalised in the spec's animation mode (vox: relative, adapted scale;
    TPSMM's: relative, process_kp_driving as well)."""
    source, driving = demo_inputs(spec.frame_shape, frames=4)
    frame = driving[2:3]
    kp_source = backend.kp_detector(source)
    kp_initial = backend.kp_detector(driving[:1])
    encoded = backend.encode_source(source)

    mode = animation_mode(spec)

    def normalise(kp):
        return mode.normalise(backend, kp, kp_initial, kp_source)
    kp_norm = normalise(backend.kp_detector(frame))
    return {
        "frame": lambda: backend.generate(encoded, normalise(backend.kp_detector(frame)),
                                          kp_source),
        "kp_detector": lambda: backend.kp_detector(frame),
        "process_kp_driving": lambda: normalise(kp_norm),
        "generator_encoded": lambda: backend.generate(encoded, kp_norm, kp_source),
        "generator": lambda: backend.generator(source, kp_norm, kp_source),
    }


def run_worker(backend_name: str, threads: int, bundle: str, checkpoint: str, warmup: int):
    """Load one backend, warm it up, then time one round per 'round' line on stdin."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if backend_name == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    from ..bundle.open import open_bundle
    stages = Stages(loaded_files(backend_name, bundle, checkpoint))
    stages.mark("start")
    sampler = Sampler()
    start = time.perf_counter()
    try:
        opened = open_bundle(bundle, check=False)
        backend = opened.backend(backend_name, checkpoint=checkpoint if backend_name == "torch"
                                 else None, threads=threads)
    except FommError as exc:
        sampler.stop()
        protocol.write(json.dumps({"error": str(exc)}) + "\n")
        return
    stages.mark("loaded")
    items = timed_items(backend, opened.spec)
    for _ in range(warmup):
        for run in items.values():
            run()
    stages.mark("ready")
    memory = stages.report(sampler.stop(), peak_rss_bytes())
    protocol.write(json.dumps({"ready": True, "load_s": time.perf_counter() - start,
                               "memory": memory}) + "\n")
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = {}
        for name in ITEMS:
            t0 = time.perf_counter()
            items[name]()
            times[name] = time.perf_counter() - t0
        protocol.write(json.dumps({"times": times}) + "\n")
    protocol.write(json.dumps({"peak_rss_mb": peak_rss_bytes() / MB,
                               "uss_end_mb": uss_bytes() / MB}) + "\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 6 or argv[0] != "--worker":
        raise SystemExit("usage: fomm-convert bench --help")
    run_worker(argv[1], int(argv[2]), argv[3], argv[4], int(argv[5]))


class Worker:
    """A running worker: its samples per item, filled one round at a time."""

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
        if "error" in self.ready:
            self.proc.wait()
            raise BenchError(self.ready["error"])

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

    def finish(self) -> dict:
        """Quit; the memory figures of the pass, with peak RSS and peak USS over the whole
        run (the timed rounds included: VmHWM, and the USS at the end)."""
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        end = self._read()
        self.proc.wait(timeout=120)
        self.log.close()
        memory = dict(self.ready["memory"], peak_rss_mb=end["peak_rss_mb"])
        memory["uss_peak_mb"] = max(memory["uss_peak_mb"], end["uss_end_mb"])
        return memory

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
