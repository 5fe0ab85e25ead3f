"""The K thin-plate splines of a frame: fitted to map the driving keypoints onto the source
keypoints (the original's TPS, mode 'kp'), and evaluated on a grid.

Three ways to fit and evaluate them:
- "inverse": the original's arithmetic, torch.inverse(L) then a matmul (the reference,
  measured against the original);
- "elimination": converter/tpsmm/tps_solve.py's unrolled elimination, on an L built from
  4-D tensors (no inverse or solve op), otherwise the original's float32;
- "double-float": what the exported graphs compute (the ONNX files; the TF graph's
  tpsmm/tf_model/tps.py): L in double-float, the elimination with one step of iterative
  refinement, the warp evaluated in double-float and rounded once. On ill-conditioned
  systems (cond(L) ~230) the float32 fit and warp put the generator's frames 1.6e-4 to
  2.4e-4 from float64, beyond the parity gate (docs/runtimes.md).
"""
from __future__ import annotations

import torch

from ... import double_float as df
from ..architecture import POINTS_PER_TPS, TPS_LOG_EPSILON, TPS_REGULARIZATION
from ..tps_kernel import radial_double, regularization
from ..tps_solve import Ops, solve

TPS_SOLVES = ("inverse", "elimination", "double-float")

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


def _blocks(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """[[U, P], [P^T, 0]] from U (B, K, 5, 5) and P (B, K, 5, 3)."""
    zeros = torch.zeros(*p.shape[:2], 3, 3, dtype=p.dtype)
    return torch.cat([torch.cat([u, p], dim=3), torch.cat([p.transpose(2, 3), zeros], dim=3)],
                     dim=2)


def _affine_part(points: torch.Tensor) -> torch.Tensor:
    """P = [points, 1] (B, K, 5, 3)."""
    return torch.cat([points, torch.ones(*points.shape[:-1], 1, dtype=points.dtype)], dim=3)


def _system(u: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """L = [[U, P], [P^T, 0]] + 0.01 I from U (B, K, 5, 5) and points (B, K, 5, 2)."""
    lhs = _blocks(u, _affine_part(points))
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


def _radial_double(r2):
    return radial_double(r2, torch.where, torch.log)


def system_matrix_double(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L (B, K, 8, 8) as a double-float (hi, lo): U of the exact differences' squared
    distances (system_matrix_4d in float64), as tpsmm/tf_model/tps.py's."""
    x, y = points[:, :, :, 0:1], points[:, :, :, 1:2]
    u = _radial_double(df.add(df.square(df.two_sum(x, -x.transpose(2, 3))),
                              df.square(df.two_sum(y, -y.transpose(2, 3)))))
    p = _affine_part(points)
    hi, lo = _blocks(u[0], p), _blocks(u[1], 0.0 * p)
    reg_hi, reg_lo = regularization(POINTS_PER_TPS + 3)
    return df.add((hi, lo), (torch.from_numpy(reg_hi), torch.from_numpy(reg_lo)))


def _residual(lhs, x, rhs) -> torch.Tensor:
    """rhs - lhs @ x (B, K, n, r) in double-float for a double-float lhs (B, K, n, n),
    rounded: a column times a row per term, summed in order."""
    total = rhs, 0.0 * rhs
    for j in range(x.shape[2]):
        row = x[:, :, j:j + 1, :]
        p, e = df.two_product(lhs[0][:, :, :, j:j + 1], -row)
        total = df.add(total, df.fast_two_sum(p, e - lhs[1][:, :, :, j:j + 1] * row))
    return total[0]


def fit(kp_driving: torch.Tensor, kp_source: torch.Tensor, how: str = "inverse"):
    """(theta (B, K, 2, 3), control_params (B, K, 5, 2)) of the TPS taking each group of
    driving keypoints onto the source's; kp_source may have batch 1. With "double-float"
    each is a double-float (hi, lo): one step of iterative refinement, the residual of
    L x from L in double-float, its correction solved by the same elimination."""
    driving, source = control_points(kp_driving), control_points(kp_source)
    batch, groups = driving.shape[:2]
    rhs = torch.cat([source, torch.zeros(source.shape[0], groups, 3, 2, dtype=source.dtype)],
                    dim=2).expand(batch, -1, -1, -1)
    if how == "inverse":
        param = torch.matmul(torch.inverse(system_matrix(driving)), rhs)
    elif how == "elimination":
        param = solve(system_matrix_4d(driving), rhs, TORCH)
    elif how == "double-float":
        lhs = system_matrix_double(driving)
        x = solve(lhs[0], rhs, TORCH)
        hi, lo = df.fast_two_sum(x, solve(lhs[0], _residual(lhs, x, rhs), TORCH))
        n = POINTS_PER_TPS
        return (tuple(part[:, :, n:, :].transpose(2, 3) for part in (hi, lo)),
                (hi[:, :, :n, :], lo[:, :, :n, :]))
    else:
        raise ValueError(f"unknown TPS solve {how!r} (known: {', '.join(TPS_SOLVES)})")
    return param[:, :, POINTS_PER_TPS:, :].transpose(2, 3), param[:, :, :POINTS_PER_TPS, :]


def rounded(value) -> torch.Tensor:
    """fit's theta or control_params as float32: a double-float's high part."""
    return value[0] if isinstance(value, tuple) else value


def warp_grid(grid: torch.Tensor, theta, points, control_params) -> torch.Tensor:
    """Each TPS applied to a (h, w, 2) grid of (x, y): (B, K, h, w, 2); fit's double-floats
    in double-float (_warp_grid_double).

    T(z) = theta @ [z, 1] + sum_i U(|z - c_i|^2) w_i, the distances from 4-D tensors
    (the original's 5-D difference gives the same bits)."""
    if isinstance(theta, tuple):
        return _warp_grid_double(grid, theta, points, control_params)
    h, w = grid.shape[:2]
    z = grid.reshape(1, 1, h * w, 2).transpose(2, 3)  # (1, 1, 2, hw)
    affine = torch.matmul(theta[:, :, :, :2], z) + theta[:, :, :, 2:]  # (B, K, 2, hw)
    dx = z[:, :, 0:1, :] - points[:, :, :, 0:1]  # (B, K, 5, hw)
    dy = z[:, :, 1:2, :] - points[:, :, :, 1:2]
    bent = torch.matmul(radial(dx ** 2 + dy ** 2).transpose(2, 3), control_params)
    out = affine.transpose(2, 3) + bent  # (B, K, hw, 2)
    return out.view(*out.shape[:2], h, w, 2)


def _warp_grid_double(grid, theta, points, control_params) -> torch.Tensor:
    """warp_grid of double-float theta and control_params, in double-float and in
    tpsmm/tf_model/tps.py's order (the radial terms summed over the control points, then added
    to the affine part), rounded once: float32's sum of terms up to ~37 to warps of a few
    units costs ~6e-6, more where an ill-conditioned fit makes them larger."""
    h, w = grid.shape[:2]
    gx, gy = (grid[:, :, i].reshape(1, 1, h * w) for i in range(2))  # (1, 1, hw)

    def at(value, i, j):  # a double-float's entry [:, :, i, j] as (B, K, 1)
        return value[0][:, :, i, j:j + 1], value[1][:, :, i, j:j + 1]
    bent = [None, None]
    for i in range(POINTS_PER_TPS):
        u = _radial_double(df.add(df.square(df.two_sum(gx, -points[:, :, i, 0:1])),
                                  df.square(df.two_sum(gy, -points[:, :, i, 1:2]))))
        for axis in range(2):
            term = df.multiply(u, at(control_params, i, axis))
            bent[axis] = term if bent[axis] is None else df.add(bent[axis], term)
    out = []
    for row in range(2):
        total = None
        for j, g in ((0, gx), (1, gy)):
            t_hi, t_lo = at(theta, row, j)
            p, e = df.two_product(t_hi, g)
            total = (p, e + t_lo * g) if total is None else df.add(total, (p, e + t_lo * g))
        out.append(df.add(df.add(total, at(theta, row, 2)), bent[row])[0])
    return torch.stack(out, dim=3).view(*out[0].shape[:2], h, w, 2)
