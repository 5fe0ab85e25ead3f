"""The reference FOMM in PyTorch, with the original's state_dict keys, order and shapes."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from ..spec import Spec
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KPDetector
from .normalize import normalize_kp

__all__ = ["KPDetector", "OcclusionAwareGenerator", "build_models", "load_weights",
           "normalize_kp"]


def build_models(spec: Spec) -> tuple[KPDetector, OcclusionAwareGenerator]:
    """The two networks of a spec, in eval mode, with default initialisation."""
    kp_detector = KPDetector(**spec.kp_detector_kwargs())
    generator = OcclusionAwareGenerator(**spec.generator_kwargs(),
                                        align_corners=spec.align_corners)
    return kp_detector.eval(), generator.eval()


def load_weights(module: torch.nn.Module, state: "OrderedDict[str, np.ndarray]", what: str):
    """Strictly load numpy arrays into a module; mismatches name every offending key."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(items)}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if items]
        raise ValueError(f"{what} does not fit this config: " + "; ".join(parts))
    module.load_state_dict(OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in
                                       state.items()), strict=True)
    return module
