"""Bundles run in headless Chromium with the browser runtimes (onnxruntime-web, LiteRT.js).

A local server (server.py) serves the checkout's web/ folder (fomm-runtime.mjs, the
harness page, the runtimes' npm files) and the bundle's model files to a Chromium
(chromium.py) that runs the jobs the backend (backend.py) queues. placement.py asks
LiteRT.js which of a .tflite file's ops go on the GPU. Stdlib only.
"""
from ...errors import FommError


class BrowserError(FommError, RuntimeError):
    """A browser runtime failed: no browser, no web folder, a load, a call (one line)."""
