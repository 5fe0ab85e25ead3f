"""One browser runtime open on a bundle's files: server + Chromium + harness page.

The page loads the files when it starts and reports its accelerator; calls are queued as
jobs and waited for with a timeout, so a hung or dead browser never hangs Python. Page
errors, load failures and a dead browser become one-line BrowserErrors naming the runtime.
"""
from __future__ import annotations

import itertools
import os
import time
import weakref
from pathlib import Path

import numpy as np

from . import BrowserError, protocol
from .chromium import Chromium
from .server import HarnessServer

# Loading compiles every file (LiteRT.js on SwiftShader WebGPU: ~10 s for the tiny
# generator); one call may be a vox-256 generator on wasm. WebGPU without a GPU is
# SwiftShader: onnx-webgpu's vox-256 generator took 955 s for 2 frames on a busy 2-core
# machine, so its calls get an hour (a dead browser still ends a wait at once).
LOAD_SECONDS = 300
CALL_SECONDS = 300
WEBGPU_CALL_SECONDS = 3600
# What the page needs under web/ (the harness and the runtimes' npm files).
WEB_FILES = ("harness.html", "harness.mjs", "fomm-runtime.mjs",
             "node_modules/onnxruntime-web/dist/ort.wasm.min.mjs",
             "node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs",
             "node_modules/@litertjs/core/dist/index.js")
WEBGPU_RUNTIMES = {"onnx-webgpu", "litert-js-webgpu"}


def web_dir() -> Path:
    """The web runtime folder: $FOMM_WEB_DIR, else the checkout's web/, installed."""
    web = Path(os.environ.get("FOMM_WEB_DIR") or Path(__file__).resolve().parents[3] / "web")
    missing = [name for name in WEB_FILES if not (web / name).is_file()]
    if missing:
        raise BrowserError(f"{web / missing[0]} is missing: run `make web` (or `npm ci "
                           f"--prefix web`) in a checkout, or set FOMM_WEB_DIR to its web/")
    return web


class BrowserSession:
    def __init__(self, runtime: str, bundle: Path, files: dict, external_data=(),
                 threads: int | None = None):
        self.runtime = runtime
        self.call_seconds = WEBGPU_CALL_SECONDS if runtime in WEBGPU_RUNTIMES else CALL_SECONDS
        config = {"runtime": runtime, "files": files, "externalData": list(external_data),
                  "threads": threads}
        self.server = HarnessServer({"web": web_dir(), "bundle": bundle}, config)
        try:
            self.browser = Chromium(f"{self.server.url}/web/harness.html",
                                    webgpu=runtime in WEBGPU_RUNTIMES)
        except Exception:
            self.server.close()
            raise
        self._ids = itertools.count()
        self.last_call_ms: float | None = None
        self._finalizer = weakref.finalize(self, _shut, self.server, self.browser)
        try:
            self.ready = self._wait(lambda: self.server.ready, LOAD_SECONDS, "loading")
        except BrowserError:
            self.close()
            raise

    @property
    def logs(self) -> list[tuple[str, str]]:
        """The page's console lines so far, as (level, text)."""
        return list(self.server.logs)

    def _wait(self, get, seconds: float, what: str):
        """get()'s value once it is not None; a page error, dead browser or timeout raises."""
        deadline = time.monotonic() + seconds
        with self.server.changed:
            while True:
                value = get()
                if value is not None:
                    return value
                if self.server.errors:
                    raise BrowserError(f"{self.runtime}: {self.server.errors[0]}")
                died = self.browser.exited()
                if died:
                    raise BrowserError(f"{self.runtime}: {died} while {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"{self.runtime}: no answer after {seconds:.0f} s "
                                       f"while {what}")
                self.server.changed.wait(min(left, 0.5))

    def run(self, model: str, signature: str, inputs: dict, file: str) -> dict:
        """One call; `file` (the bundle path it runs) names it in errors."""
        job = next(self._ids)
        self.server.jobs.put(protocol.encode(
            {"id": job, "model": model, "signature": signature},
            {name: np.asarray(value, np.float32) for name, value in inputs.items()}))
        header, outputs = self._wait(lambda: self.server.results.pop(job, None),
                                     self.call_seconds, f"running {file} {signature}")
        if "error" in header:
            raise BrowserError(f"{self.runtime} {file} {signature}: {header['error']}")
        self.last_call_ms = header["ms"]  # in the page, without the trip to it and back
        return outputs

    def close(self):
        self._finalizer()


def _shut(server: HarnessServer, browser: Chromium):
    # A finalizer (also run at exit): it must not hold the session itself.
    server.jobs.put(None)
    browser.close()
    server.close()
