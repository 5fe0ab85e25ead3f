"""Keypoint normalisation for animation (relative motion, relative jacobian, adapt scale)."""
from __future__ import annotations

import numpy as np
import torch


def inverse2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices; exportable where linalg.inv is not."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) \
        / det[..., None, None]


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the 2-D convex hull of (K, 2) points (monotone chain, float64); 0 if degenerate."""
    pts = sorted(set(map(tuple, np.asarray(points, dtype=np.float64).tolist())))
    if len(pts) < 3:
        return 0.0

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]
    hull = half(pts) + half(reversed(pts))
    x, y = np.array(hull).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def movement_scale(kp_source_value: torch.Tensor, kp_initial_value: torch.Tensor) -> float:
    """sqrt(hull area of source) / sqrt(hull area of initial), from batch element 0 of each.

    The original raises when a hull is degenerate (collinear keypoints); we use 1 then.
    """
    source = convex_hull_area(kp_source_value[0].detach().cpu().numpy())
    initial = convex_hull_area(kp_initial_value[0].detach().cpu().numpy())
    if source <= 0 or initial <= 0:
        return 1.0
    return float(np.sqrt(source) / np.sqrt(initial))


def normalize_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False,
                 use_relative_movement=False, use_relative_jacobian=False):
    """Driving keypoints expressed relative to the first driving frame, applied to the source.

    Unlike the original, a model without jacobians gets relative positions (no jacobian)
    instead of a KeyError.
    """
    scale = movement_scale(kp_source["value"], kp_driving_initial["value"]) \
        if adapt_movement_scale else 1.0
    out = dict(kp_driving)
    if use_relative_movement:
        out["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale \
            + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            relative = kp_driving["jacobian"] @ inverse2x2(kp_driving_initial["jacobian"])
            out["jacobian"] = relative @ kp_source["jacobian"]
    return out
