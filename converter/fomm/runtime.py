"""FOMM's checkpoint backends (the family interface's `runtime`): runtime/torch_backend.py
and runtime/tf_backend.py."""
from __future__ import annotations

CHECKPOINT_BACKENDS = {"torch": "fomm_convert.runtime.torch_backend:TorchBackend",
                       "tf": "fomm_convert.runtime.tf_backend:TFBackend"}
