"""One small interface over every backend that runs the three FOMM models.

All arrays crossing it are numpy float32 in the artifacts' layout (NHWC images,
keypoints (B, K, 2) as (x, y) in [-1, 1], jacobians (B, K, 2, 2)), so the animate loop
and `predict` never care which framework is underneath. The tflite and onnx backends
import neither torch nor tensorflow.
"""
from __future__ import annotations

import importlib

from ..formats import FORMATS, RUNTIME_FORMATS

# Backends that convert a checkpoint on the fly; the others run a bundle's artifacts (those
# of the format formats.FORMAT_OF_BACKEND names).
_CHECKPOINT_CLASSES = {
    "torch": "fomm_convert.runtime.torch_backend:TorchBackend",
    "tf": "fomm_convert.runtime.tf_backend:TFBackend",
}
CHECKPOINT_BACKENDS = tuple(_CHECKPOINT_CLASSES)
# Classes of the bundle backends, by exporter kind.
_BUNDLE_CLASSES = {
    "savedmodel": "fomm_convert.runtime.savedmodel_backend:SavedModelBackend",
    "tflite": "fomm_convert.runtime.tflite_backend:TFLiteBackend",
    "onnx": "fomm_convert.runtime.onnx_backend:ONNXBackend",
}
# The third-party runtimes over a format's files (formats.RUNTIME_FORMATS) run in this
# process, or else in the browser.
_IN_PROCESS = {"openvino": "fomm_convert.runtime.openvino_backend:OpenVINOBackend"}
_BROWSER = "fomm_convert.runtime.browser.backend:BrowserBackend"
# name -> (class, fixed keyword arguments): the checkpoint backends, one per format under
# its name (formats.FORMATS: its kind and, for TFLite, precision and static shapes), then
# the third-party runtimes.
BACKENDS = {
    **{name: (target, {}) for name, target in _CHECKPOINT_CLASSES.items()},
    **{name: (_BUNDLE_CLASSES[f.kind],
              {"precision": f.precision, "static": f.static} if f.kind == "tflite"
              else {}) for name, f in FORMATS.items()},
    **{name: (_IN_PROCESS[name], {}) if name in _IN_PROCESS else (_BROWSER, {"runtime": name})
       for name in RUNTIME_FORMATS},
}


def backend_names() -> list[str]:
    return list(BACKENDS)


def load_backend(name: str, **kwargs):
    """Instantiate a backend by name (imports its framework only now).

    Checkpoint backends take spec= and checkpoint=; bundle backends spec= and bundle=.
    """
    target, fixed = BACKENDS[name]
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)(**fixed, **kwargs)
