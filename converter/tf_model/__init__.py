"""The FOMM inference graph in TensorFlow (NHWC, float32, TFLite builtin ops only).

The tf.Module tree mirrors converter/torch_model, file for file, so that a variable's
dotted path (`named_variables`) reads like the torch state_dict key it is loaded from.
`fast.py` derives the exported graphs from it (`fast_models`), with the weight algebra of
fomm_convert.algebra. Names are imported lazily.
"""
from __future__ import annotations

import importlib

__all__ = ["KPDetector", "OcclusionAwareGenerator", "build_models", "fast_models",
           "named_modules", "named_variables"]

_LAZY = {"named_modules": "blocks", "named_variables": "blocks",
         "OcclusionAwareGenerator": "generator", "generator_from_spec": "generator",
         "KPDetector": "keypoint_detector", "kp_detector_from_spec": "keypoint_detector",
         "fast_models": "fast"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_models(spec):
    """The two TF networks of a spec, every variable zero until weights are applied."""
    from .generator import generator_from_spec
    from .keypoint_detector import kp_detector_from_spec
    return kp_detector_from_spec(spec), generator_from_spec(spec)
