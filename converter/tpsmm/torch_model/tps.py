"""The K thin-plate splines of a frame: fitted to map the driving keypoints onto the source
keypoints (the original's TPS, mode 'kp'), and evaluated on a grid.

Two ways to solve the 8x8 systems, the only difference between them:
- "inverse": the original's arithmetic, torch.inverse(L) then a matmul (the reference,
  measured against the original);
- "elimination": converter/tpsmm/tps_solve.py's unrolled elimination, on an L built from
  4-D tensors (what the exported graphs compute; no inverse or solve op).
"""
from __future__ import annotations

import torch

from ..architecture import POINTS_PER_TPS, TPS_LOG_EPSILON, TPS_REGULARIZATION
from ..tps_solve import Ops, solve

TPS_SOLVES = ("inverse", "elimination")

TORCH = Ops(const=lambda a: torch.from_numpy(a),
            amax=lambda x, axis: x.amax(dim=axis, keepdim=True),
            total=lambda x, axis: x.sum(dim=axis, keepdim=True),
            to_float=lambda b: b.to(torch.float32),
            concat=lambda xs, axis: torch.cat(xs, dim=axis))


def control_points(kp: torch.Tensor) -> torch.Tensor:
    """(B, 5K, 2) keypoints -> (B, K, 5, 2): consecutive groups of 5 form one TPS."""
    return kp.view(kp.shape[0], -1, POINTS_PER_TPS, 2)


def radial(r2: torch.Tensor) -> torch.Tensor:
    """The TPS kernel U of squared distances: r^2 log(r^2 + 1e-9) (0 at r = 0)."""
    return r2 * torch.log(r2 + TPS_LOG_EPSILON)


def _system(u: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """L = [[U, P], [P^T, 0]] + 0.01 I from U (B, K, 5, 5) and points (B, K, 5, 2)."""
    ones = torch.ones(*points.shape[:-1], 1, dtype=points.dtype)
    p = torch.cat([points, ones], dim=3)  # (B, K, 5, 3)
    zeros = torch.zeros(*points.shape[:2], 3, 3, dtype=points.dtype)
    lhs = torch.cat([torch.cat([u, p], dim=3), torch.cat([p.transpose(2, 3), zeros], dim=3)],
                    dim=2)
    return lhs + TPS_REGULARIZATION * torch.eye(lhs.shape[-1], dtype=points.dtype)


def system_matrix(points: torch.Tensor) -> torch.Tensor:
    """The original's L (B, K, 8, 8) for control points (B, K, 5, 2): squared distances as
    the square of torch.norm, on a 5-D difference tensor."""
    r2 = torch.norm(points[:, :, :, None] - points[:, :, None, :], dim=4, p=2) ** 2
    return _system(radial(r2), points)


def system_matrix_4d(points: torch.Tensor) -> torch.Tensor:
    """L from 4-D tensors only, squared distances summed directly (within an ulp of the
    original's entries)."""
    x, y = points[:, :, :, 0:1], points[:, :, :, 1:2]
    dx, dy = x - x.transpose(2, 3), y - y.transpose(2, 3)
    return _system(radial(dx * dx + dy * dy), points)


def fit(kp_driving: torch.Tensor, kp_source: torch.Tensor, how: str = "inverse"):
    """(theta (B, K, 2, 3), control_params (B, K, 5, 2)) of the TPS taking each group of
    driving keypoints onto the source's; kp_source may have batch 1."""
    driving, source = control_points(kp_driving), control_points(kp_source)
    batch, groups = driving.shape[:2]
    rhs = torch.cat([source, torch.zeros(source.shape[0], groups, 3, 2, dtype=source.dtype)],
                    dim=2).expand(batch, -1, -1, -1)
    if how == "inverse":
        param = torch.matmul(torch.inverse(system_matrix(driving)), rhs)
    elif how == "elimination":
        param = solve(system_matrix_4d(driving), rhs, TORCH)
    else:
        raise ValueError(f"unknown TPS solve {how!r} (known: {', '.join(TPS_SOLVES)})")
    return param[:, :, POINTS_PER_TPS:, :].transpose(2, 3), param[:, :, :POINTS_PER_TPS, :]


def warp_grid(grid: torch.Tensor, theta, points, control_params) -> torch.Tensor:
    """Each TPS applied to a (h, w, 2) grid of (x, y): (B, K, h, w, 2).

    T(z) = theta @ [z, 1] + sum_i U(|z - c_i|^2) w_i, the distances from 4-D tensors
    (the original's 5-D difference gives the same bits)."""
    h, w = grid.shape[:2]
    z = grid.reshape(1, 1, h * w, 2).transpose(2, 3)  # (1, 1, 2, hw)
    affine = torch.matmul(theta[:, :, :, :2], z) + theta[:, :, :, 2:]  # (B, K, 2, hw)
    dx = z[:, :, 0:1, :] - points[:, :, :, 0:1]  # (B, K, 5, hw)
    dy = z[:, :, 1:2, :] - points[:, :, :, 1:2]
    bent = torch.matmul(radial(dx ** 2 + dy ** 2).transpose(2, 3), control_params)
    out = affine.transpose(2, 3) + bent  # (B, K, hw, 2)
    return out.view(*out.shape[:2], h, w, 2)
