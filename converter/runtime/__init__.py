"""One small interface over every backend that runs the three FOMM models.

All arrays crossing it are numpy float32 in the artifacts' layout (NHWC images,
keypoints (B, K, 2) as (x, y) in [-1, 1], jacobians (B, K, 2, 2)), so the animate loop
and `predict` never care which framework is underneath.
"""
from __future__ import annotations

import importlib

BACKENDS = {
    "torch": "converter.runtime.torch_backend:TorchBackend",
    "tf": "converter.runtime.tf_backend:TFBackend",
    "savedmodel": "converter.runtime.savedmodel_backend:SavedModelBackend",
}
# Backends that run exported artifacts from a bundle; the others convert a checkpoint.
BUNDLE_BACKENDS = {"savedmodel"}


def backend_names() -> list[str]:
    return list(BACKENDS)


def load_backend(name: str, **kwargs):
    """Instantiate a backend by name (imports its framework only now)."""
    module, attr = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)
