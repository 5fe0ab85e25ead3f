"""One small interface over every backend that runs a model family's models.

All arrays crossing it are numpy float32 in the artifacts' layout (NHWC images,
keypoints (B, K, 2) as (x, y) in [-1, 1], jacobians (B, K, 2, 2)), so the animate loop
and `predict` never care which framework is underneath. The tflite and onnx backends
import neither torch nor tensorflow. The backends that run a checkpoint are the model
family's (its package's `runtime` module: families.py).
"""
from __future__ import annotations

import functools
import importlib

from ..families import family_of
from ..formats import FORMATS, RUNTIME_FORMATS

# Backends that convert a checkpoint on the fly (each family's runtime module names the
# class that does it for its models); the others run a bundle's artifacts (those of the
# format formats.FORMAT_OF_BACKEND names).
CHECKPOINT_BACKENDS = ("torch", "tf")
# Classes of the bundle backends, by exporter kind.
_BUNDLE_CLASSES = {
    "savedmodel": "fomm_convert.runtime.savedmodel_backend:SavedModelBackend",
    "tflite": "fomm_convert.runtime.tflite_backend:TFLiteBackend",
    "onnx": "fomm_convert.runtime.onnx_backend:ONNXBackend",
    "executorch": "fomm_convert.runtime.executorch_backend:ExecuTorchBackend",
}
# The third-party runtimes over a format's files (formats.RUNTIME_FORMATS) run in this
# process, or else in the browser.
_IN_PROCESS = {"openvino": "fomm_convert.runtime.openvino_backend:OpenVINOBackend"}
_BROWSER = "fomm_convert.runtime.browser.backend:BrowserBackend"
# name -> (class, fixed keyword arguments): the bundle backends, one per format under its
# name (formats.FORMATS: its kind and, for TFLite, precision and static shapes), then the
# third-party runtimes.
BACKENDS = {
    **{name: (_BUNDLE_CLASSES[f.kind],
              {"precision": f.precision, "static": f.static} if f.kind == "tflite"
              else {}) for name, f in FORMATS.items()},
    **{name: (_IN_PROCESS[name], {}) if name in _IN_PROCESS else (_BROWSER, {"runtime": name})
       for name in RUNTIME_FORMATS},
}


def backend_names() -> list[str]:
    return [*CHECKPOINT_BACKENDS, *BACKENDS]


def load_backend(name: str, **kwargs):
    """Instantiate a backend by name (imports its framework only now).

    Checkpoint backends take spec= and checkpoint= (a ValueError when the spec's family
    has no such backend); bundle backends spec= and bundle=, and offer the model calls of
    the spec's family (its runtime module's SignatureCalls) over their files' signatures.
    """
    family = family_of(kwargs["spec"])
    runtime = family.facet("runtime")
    if name in CHECKPOINT_BACKENDS:
        classes = runtime.CHECKPOINT_BACKENDS
        if name not in classes:
            raise ValueError(f"backend {name}: not available for {family.title} models "
                             f"(theirs: {', '.join(classes)})")
        return _class(classes[name])(**kwargs)
    target, fixed = BACKENDS[name]
    return serving(_class(target), runtime.SignatureCalls)(**fixed, **kwargs)


def _class(target: str) -> type:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def serving(backend: type, calls: type) -> type:
    """A bundle backend class (its files' `call(model, signature, inputs)`) offering a
    family's model calls (`calls`, whose methods are written over `call`)."""
    if issubclass(backend, calls):
        return backend
    return type(backend.__name__, (backend, calls), {"__module__": backend.__module__,
                                                      "__doc__": backend.__doc__})
