"""Keypoint normalisation for animation (relative motion, relative jacobian, adapt scale)."""
from __future__ import annotations

import torch

from ..hull import movement_scale


def inverse2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices; exportable where linalg.inv is not."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) \
        / det[..., None, None]


def normalize_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False,
                 use_relative_movement=False, use_relative_jacobian=False):
    """Driving keypoints expressed relative to the first driving frame, applied to the source.

    Unlike the original, a model without jacobians gets relative positions (no jacobian)
    instead of a KeyError.
    """
    scale = movement_scale(kp_source["value"].numpy(), kp_driving_initial["value"].numpy()) \
        if adapt_movement_scale else 1.0
    out = dict(kp_driving)
    if use_relative_movement:
        out["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale \
            + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            relative = kp_driving["jacobian"] @ inverse2x2(kp_driving_initial["jacobian"])
            out["jacobian"] = relative @ kp_source["jacobian"]
    return out
