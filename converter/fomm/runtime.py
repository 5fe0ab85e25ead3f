"""FOMM's backends (the family interface's `runtime`): the checkpoint backends
(runtime/torch_backend.py, runtime/tf_backend.py) and the model calls every FOMM backend
offers over its signatures (runtime/base.py, SignatureBackend)."""
from __future__ import annotations

from ..runtime.base import SignatureBackend as SignatureCalls

__all__ = ["CHECKPOINT_BACKENDS", "SignatureCalls"]

CHECKPOINT_BACKENDS = {"torch": "fomm_convert.runtime.torch_backend:TorchBackend",
                       "tf": "fomm_convert.runtime.tf_backend:TFBackend"}
