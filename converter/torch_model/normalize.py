"""Keypoint normalisation for animation (relative motion, relative jacobian, adapt scale)."""
from __future__ import annotations

import torch

from ..hull import movement_scale


def inverse2x2(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 2, 2) matrices with torch.inverse's roundings, in elementwise ops
    (exportable where linalg.inv is not).

    The original calls torch.inverse: LAPACK's LU with partial pivoting, then a solve
    against the identity. The same steps here: pivot on the larger of |a| and |c|,
    l = q0 / p0, u = q1 - l p1, then each unknown scaled by a reciprocal (1 / u, 1 / p0),
    as the solve does. This equals torch.inverse (torch 2.13's CPU build, the oracle's) bit
    for bit on 400000 random matrices, and gives the vox-256 sparse_deformed the original
    recorded exactly; the closed form [[d, -b], [-c, a]] / det rounds differently (29 of
    80 entries there: stage-fed sparse_deformed 7.7e-6 off the original)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    swap = c.abs() > a.abs()
    p0, p1 = torch.where(swap, c, a), torch.where(swap, d, b)  # the pivot row
    q0, q1 = torch.where(swap, a, c), torch.where(swap, b, d)
    l = q0 / p0
    u_inv, p0_inv = 1 / (q1 - l * p1), 1 / p0
    # The solutions for the pivot row's unit vector (L^-1 of it: 1, -l) and the other's (0, 1).
    pivot_1 = -l * u_inv
    pivot_0 = (1 - p1 * pivot_1) * p0_inv
    other_0 = -(p1 * u_inv) * p0_inv
    column_0 = (torch.where(swap, other_0, pivot_0), torch.where(swap, u_inv, pivot_1))
    column_1 = (torch.where(swap, pivot_0, other_0), torch.where(swap, pivot_1, u_inv))
    return torch.stack([torch.stack([column_0[0], column_1[0]], -1),
                        torch.stack([column_0[1], column_1[1]], -1)], -2)


# The 2x2 products written out: each entry is two products, each rounded, then their sum,
# as torch's CPU matmul computes it (so the reference is unchanged, bit for bit). Exported
# as MatMul, native onnxruntime (the (B, K, 2, 2) product) and OpenVINO fused a
# multiply-add where onnxruntime-web and torch round twice: as Mul and Add, every runtime
# rounds as the original does (docs/runtimes.md, "Margins on vox-256").
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
