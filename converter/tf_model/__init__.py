"""The FOMM inference graph in TensorFlow (NHWC, float32, TFLite builtin ops only).

The tf.Module tree mirrors converter/torch_model, file for file, so that a variable's
dotted path (`named_variables`) reads like the torch state_dict key it is loaded from.
"""
from __future__ import annotations

from .blocks import named_modules, named_variables
from .generator import OcclusionAwareGenerator, generator_from_spec
from .keypoint_detector import KPDetector, kp_detector_from_spec

__all__ = ["KPDetector", "OcclusionAwareGenerator", "build_models", "named_modules",
           "named_variables"]


def build_models(spec) -> tuple[KPDetector, OcclusionAwareGenerator]:
    """The two TF networks of a spec, every variable zero until weights are applied."""
    return kp_detector_from_spec(spec), generator_from_spec(spec)
