"""TFLite files of a bundle (DIR/tflite/<model>[.static][.fp16|.int8].tflite) on
ai_edge_litert.

Imports neither torch nor tensorflow. Each model file gets one Interpreter (XNNPACK is
applied by default; `threads` sets its thread count); calls go through the named signature
runners, cached per (model, signature). A signature runner resizes its inputs to the shapes
it is given on every call (and re-allocates only when they changed), so any batch works,
including a source batch of 1 beside a driving batch of N. The static files (batch 1) are
called once per example (runtime.batching).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ..errors import one_line
from ..formats import tflite_filename
from ..signatures import MODELS, signatures
from .base import SignatureBackend
from .batching import call_per_example


def _interpreter(path: Path, threads):
    """An Interpreter; a file it cannot load is a one-line ValueError naming the file."""
    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: LiteRT cannot load it "
                         f"({one_line(exc)})") from None


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
