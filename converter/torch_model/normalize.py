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


# The 2x2 products written out: each entry is two products, each rounded, then their sum,
# as torch's CPU matmul computes it (so the reference is unchanged, bit for bit). Exported
# as MatMul, native onnxruntime (the (B, K, 2, 2) product) and OpenVINO fused a
# multiply-add where onnxruntime-web and torch round twice: as Mul and Add, every runtime
# rounds as the original does (docs/runtimes.md, "onnxruntime-web").
def matmul2x2(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p @ q for (..., 2, 2) matrices: column k of p times row k of q, summed over k."""
    return p[..., :, 0:1] * q[..., 0:1, :] + p[..., :, 1:2] * q[..., 1:2, :]


def matvec2x2(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """m @ v for (..., 2, 2) matrices and (..., 2) vectors (broadcast against each other)."""
    return m[..., :, 0] * v[..., 0:1] + m[..., :, 1] * v[..., 1:2]


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
