"""A worker of animate-many: a bundle opened and checked against its manifest and its
backend loaded once, then job after job, each as `animate` (or `reconstruct`) runs it, with
the last source picture's encoding kept for the next job (encode once per source).

A job is a plain dict (it crosses a pipe or Ray's object store):
    {"key", "kind": "animate" | "reconstruct", "inputs": {role: path}, "out": path | None,
     "options": {...}, "force": bool}
and its result one too: {"status": "ok" | "failed", "frames", "seconds", "error",
"warnings", and "output_sha256" or "l1", "l1_per_frame"}. A job's failure, whatever it is,
is its own: the worker goes on with the next.
"""
from __future__ import annotations

import os
import time
import warnings

from ..animation.jobs import animate, prepare, run_reconstruct
from ..errors import FommError, FommWarning, one_line
from .results import output_sha256


class Worker:
    def __init__(self, bundle, backend: str, checkpoint=None, threads=None,
                 batch_size: int | None = None):
        self.prepared = prepare(bundle, backend, checkpoint, threads)
        self.prepared.backend  # loaded now: a runtime that cannot load fails the worker
        self.batch_size = batch_size
        self.sources: dict = {}

    def run(self, job: dict) -> dict:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught, open(os.devnull, "w") as quiet:
            warnings.simplefilter("always")
            try:
                result = {"status": "ok", **self._run(job, quiet)}
            except Exception as exc:  # noqa: BLE001 - a job's failure is its own
                result = {"status": "failed", "error": describe(exc)}
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["warnings"] = [str(w.message) for w in caught
                              if issubclass(w.category, FommWarning)]
        return result

    def _run(self, job: dict, quiet) -> dict:
        inputs = job["inputs"]
        if job["kind"] == "reconstruct":
            rec = run_reconstruct(self.prepared, inputs["video"], batch_size=self.batch_size,
                                  stream=quiet)
            return {"frames": rec.frames, "l1": rec.l1, "l1_per_frame": rec.per_frame}
        summary = animate(self.prepared, out=job["out"], **inputs, **job["options"],
                          batch_size=self.batch_size, force=job["force"],
                          notify=lambda text: None, stream=quiet, sources=self.sources)
        return {"frames": summary["frames"], "output_sha256": output_sha256(job["out"])}


def describe(exc: BaseException) -> str:
    """A job's error as one line: a FommError's own message, a file's OSError with the
    file, anything else (a bug) with its type."""
    if isinstance(exc, FommError):
        return one_line(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {one_line(exc)}"
