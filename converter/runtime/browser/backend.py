"""A bundle's files run in headless Chromium: onnx-web and onnx-webgpu (onnxruntime-web on
wasm, on its WebGPU execution provider) on the ONNX files, litert-js (LiteRT.js on wasm)
and litert-js-webgpu (LiteRT.js on WebGPU, the ops it refuses on wasm) on the static
TFLite files, called once per example. Any family's bundle: the files and signatures
are its row's."""
from __future__ import annotations

from pathlib import Path

from ...families import family_of
from ...formats import FORMATS, ONNX_WEIGHTS_FILE, RUNTIME_FORMATS, onnx_files, tflite_filename
from ..base import SpecBackend
from ..batching import call_per_example
from .session import BrowserSession


def format_files(spec, fmt: str) -> tuple[dict, list]:
    """({model: {signature: bundle path}}, ONNX external data [{path, url}]) of a format the
    web runtimes load: one ONNX file per signature (the weights beside them), or one static
    TFLite file per model (the browser backends and the web page read the files from here)."""
    if FORMATS[fmt].kind == "onnx":
        files = {}
        for (model, signature), name in onnx_files(family_of(spec)).items():
            files.setdefault(model, {})[signature] = f"onnx/{name}"
        return files, [{"path": ONNX_WEIGHTS_FILE, "url": f"onnx/{ONNX_WEIGHTS_FILE}"}]
    precision = FORMATS[fmt].precision
    return {model: {name: f"tflite/{tflite_filename(model, precision, static=True)}"
                    for name in sigs}
            for model, sigs in family_of(spec).signatures(spec).items()}, []


class BrowserBackend(SpecBackend):
    """`call(model, signature, inputs)` over the files; load_backend gives it the model
    calls of the bundle's family."""

    def __init__(self, spec, bundle, runtime: str, threads: int | None = None):
        super().__init__(spec)
        self.runtime = runtime
        self.static = FORMATS[RUNTIME_FORMATS[runtime]].static
        self.signatures = family_of(spec).signatures(spec)
        self.files, external = format_files(spec, RUNTIME_FORMATS[runtime])
        paths = {p for sigs in self.files.values() for p in sigs.values()}
        paths |= {e["url"] for e in external}
        missing = sorted(p for p in paths if not (Path(bundle) / p).is_file())
        if missing:
            raise FileNotFoundError(f"{bundle}: missing {', '.join(missing)}")
        self.session = BrowserSession(runtime, Path(bundle), self.files, external, threads)

    @property
    def accelerator(self) -> dict:
        """What the runtime reported once loaded (LiteRT.js: isFullyAccelerated per model)."""
        return self.session.ready["accelerator"]

    def call(self, model, signature, inputs):
        file = self.files[model][signature]

        def one(args):
            return self.session.run(model, signature, args, file)
        if self.static:
            return call_per_example(one, self.signatures[model][signature], inputs)
        return one(inputs)

    def close(self):
        self.session.close()
