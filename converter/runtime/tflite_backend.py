"""TFLite files of a bundle (DIR/tflite/<model>[.static][.fp16|.int8].tflite) on
ai_edge_litert.

Imports neither torch nor tensorflow. Each model file gets one Interpreter (XNNPACK is
applied by default; `threads` sets its thread count); calls go through the named signature
runners, cached per (model, signature). The interpreters are prepared when the backend is
made (XNNPACK packs every subgraph's weights into copies of its own then), and the model
files' pages are handed back to the kernel right after: packed, the weights are hardly
read again, yet their pages stayed resident in the process's private memory (vox-256
float32: 273 of 1037 MB, bench/memory.py); a page read later faults in from the file. A
signature runner resizes its inputs to the shapes it is given on every call (and
re-allocates only when they changed), so any batch works, including a source batch of 1
beside a driving batch of N. The static files (batch 1) are called once per example
(runtime.batching).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ..errors import one_line
from ..formats import tflite_filename
from ..signatures import MODELS, signatures
from .base import SignatureBackend
from .batching import call_per_example

MADV_DONTNEED = 4  # Linux


def _interpreter(path: Path, threads):
    """A prepared Interpreter, its file's pages released; a file it cannot load is a
    one-line ValueError naming it."""
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()  # applies XNNPACK to every subgraph
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: LiteRT cannot load it "
                         f"({one_line(exc)})") from None
    release_file_pages(path)
    return interpreter


def release_file_pages(path: Path, maps: str = "/proc/self/maps"):
    """madvise(MADV_DONTNEED) on this process's read-only mappings of `path`: their pages
    leave the process (and its private memory) for the page cache, and are read from the
    file again when touched. A mapping without write permission holds no modified page,
    so nothing is lost. Without /proc (not Linux) it does nothing."""
    if not os.path.exists(maps):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    target = os.path.realpath(path)
    with open(maps) as lines:
        mappings = [line.split(None, 5) for line in lines]
    for fields in mappings:
        if len(fields) == 6 and fields[5].strip() == target and "w" not in fields[1]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if libc.madvise(start, end - start, MADV_DONTNEED) != 0:
                raise OSError(ctypes.get_errno(), f"{path}: madvise failed")


class TFLiteBackend(SignatureBackend):
    def __init__(self, spec, bundle, precision: str = "fp32", static: bool = False,
                 threads: int | None = None):
        self.num_kp = spec.num_kp
        self.estimate_jacobian = spec.estimate_jacobian
        self.frame_shape = spec.frame_shape
        self.precision, self.static = precision, static
        self.signatures = signatures(spec)
        root = Path(bundle) / "tflite"
        self.paths = {m: root / tflite_filename(m, precision, static) for m in MODELS}
        missing = [p.name for p in self.paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{root}: no {', '.join(missing)}")
        self.interpreters = {m: _interpreter(p, threads) for m, p in self.paths.items()}
        self._runners = {}

    def runner(self, model: str, signature: str):
        key = (model, signature)
        if key not in self._runners:
            self._runners[key] = self.interpreters[model].get_signature_runner(signature)
        return self._runners[key]

    def call(self, model, signature, inputs):
        args = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        runner = self.runner(model, signature)
        if self.static:
            return call_per_example(lambda one: self._run(runner, one),
                                    self.signatures[model][signature], args)
        return self._run(runner, args)

    @staticmethod
    def _run(runner, args):
        # The runner hands back copies of its output tensors; own them regardless.
        return {k: np.asarray(v) for k, v in runner(**args).items()}
