"""Keypoint normalisation for animation as a torch graph (relative motion, relative
jacobian, adapted movement scale), for export: one artifact serves every mode.

The torch twin of converter/tf_model/process_kp.py. The three mode flags are scalar
float32 tensors (0.0 or 1.0) that act through `torch.where`, never through Python
branches, and the movement scale's convex hull area is computed in the graph, in exact
int32 limb arithmetic, with no data-dependent shapes or control flow (so tracing records it
whole and ONNX export needs no custom op).

Semantics (the original's normalize_kp; eager reference:
converter/torch_model/normalize.py):
- not relative: value and jacobian are kp_driving's, unchanged;
- relative: value = (kp_driving - kp_initial) * scale + kp_source, where
  scale = sqrt(hull_area(kp_source[0]) / hull_area(kp_initial[0])) when adapting the
  movement scale, else 1; a degenerate hull (area 0) gives scale 1 (the original raises);
- relative movement and relative jacobian:
  jacobian = kp_driving_jacobian @ inverse(kp_initial_jacobian) @ kp_source_jacobian.
kp_driving_initial and kp_source may have batch 1 or kp_driving's batch.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import exact
from ..architecture import HULL_BOUND, HULL_GRID_BITS
from ..signatures import FLAGS
from .normalize import inverse2x2, matmul2x2

# The same grid and int32 limb arithmetic as the TF graph's (tf_model/process_kp.py
# explains why; converter/exact.py the bounds): no int64 tensor depends on the inputs, so
# the exported ONNX graphs stay exact where int64 is computed as int32 (OpenVINO).


def _div(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """x // divisor for non-negative int32 x and a power-of-two divisor (exact.py), with no
    integer division: the exporter turns one into Div and a Cast through int64. x minus
    x mod divisor is a multiple of the divisor below 2**31, at most 20 significant bits for
    the divisor 2**11: float32 holds it, and the scaling by 1/divisor, exactly."""
    multiple = x - torch.remainder(x, torch.tensor(divisor, dtype=torch.int32))
    return (multiple.to(torch.float32) * (1.0 / divisor)).to(torch.int32)


def _positive(a, b, c, d) -> tuple[torch.Tensor, torch.Tensor]:
    """(a*b + c*d > 0, a*b + c*d == 0) for limb lists (exact.limbs)."""
    top, lower = exact.sign_parts(a, b, c, d, _div)
    zero = torch.zeros((), dtype=torch.int32)  # a Python 0 would be compared in int64
    return (top > zero) | ((top == zero) & (lower > zero)), (top == zero) & (lower == zero)


def hull_area(points: torch.Tensor) -> torch.Tensor:
    """Area of the 2-D convex hull of each point set: (B, K, 2) -> (B,), float32.

    Vectorised over (i, j, k) triples, exact in int32 limbs on the points rounded to a
    2**-27 grid: the directed pair (i, j) is a counter-clockwise hull edge iff every point
    k lies strictly left of it, or on its line within the segment [p_i, p_j]; twice the
    area is the shoelace sum of cross(p_i - p_0, p_j - p_0) over those edges (each term
    >= 0), exact, scaled to float32 at the end. Identical points count once (the first
    copy); collinear sets give the edges (i, j) and (j, i), whose terms are 0, so
    degenerate sets give exactly 0. No division, so no NaN or Inf.
    """
    points = points.to(torch.float32)
    num_points = points.shape[1]
    per_unit = 2.0 ** HULL_GRID_BITS / HULL_BOUND  # a power of two: the scaling is exact
    grid = torch.round(torch.clamp(points, -HULL_BOUND, HULL_BOUND) * per_unit)
    grid = grid.to(torch.int32)
    x, y = grid[:, :, 0], grid[:, :, 1]  # (B, K)

    def limbs(v):
        return exact.limbs(v, _div)

    # Triples by broadcasting: i on axis 1, j on axis 2, k on axis 3.
    xi, yi = x[:, :, None, None], y[:, :, None, None]
    xj, yj = x[:, None, :, None], y[:, None, :, None]
    xk, yk = x[:, None, None, :], y[:, None, None, :]
    ex, ey = limbs(xj - xi), limbs(yj - yi)  # edge i -> j, (B, K, K, 1)
    dx, dy = limbs(xk - xi), limbs(yk - yi)  # i -> candidate k, (B, K, 1, K)
    left, collinear = _positive(ex, dy, exact.negated(ey), dx)  # cross(e, d) > 0
    ahead, at_start = _positive(ex, dx, ey, dy)  # dot(e, d) > 0, == 0
    past_end, _ = _positive(ex, limbs(xk - xj), ey, limbs(yk - yj))  # dot(e, k - j) > 0
    supports = left | (collinear & (ahead | at_start) & ~past_end)  # (B, K, K, K)
    # "every k supports (i, j)": a min over 0/1 floats (ReduceMin is not defined on bool).
    is_edge = supports.to(torch.float32).amin(dim=3) > 0.5  # (B, K, K)

    # Keep only the first copy of identical points, and no (i, i) pairs.
    same = (x[:, :, None] == x[:, None, :]) & (y[:, :, None] == y[:, None, :])  # (B, K, K)
    # Index masks as constants (numpy): traced torch.eye/tril on bool become EyeLike/Trilu
    # nodes that onnxruntime does not implement for bool.
    earlier = torch.from_numpy(np.tril(np.ones((num_points, num_points), bool), -1))
    has_earlier_twin = (same & earlier).to(torch.float32).amax(dim=2) > 0.5  # (B, K)
    first_copy = ~has_earlier_twin
    distinct = torch.from_numpy(~np.eye(num_points, dtype=bool))
    is_edge = is_edge & first_copy[:, :, None] & first_copy[:, None, :] & distinct

    # cross(p_i - p_0, p_j - p_0) in carried limbs; each limb's masked sum is an integer
    # below 2**24 (K <= 64), so float32 sums it exactly (an int32 sum exports via int64).
    ax, ay = x - x[:, :1], y - y[:, :1]  # (B, K)
    cross = exact.carried(exact.columns(limbs(ax[:, :, None]), limbs(ay[:, None, :]),
                                        exact.negated(limbs(ay[:, :, None])),
                                        limbs(ax[:, None, :])), _div)  # (B, K, K) each
    mask = is_edge.to(torch.int32)
    twice_area = torch.zeros(points.shape[0], dtype=torch.float32)
    for k, limb in enumerate(cross):
        twice_area = twice_area + (limb * mask).to(torch.float32).sum(dim=(1, 2)) \
            * float(exact.BASE ** k)
    return torch.clamp(twice_area * (0.5 / per_unit ** 2), min=0.0)


def movement_scale(kp_source: torch.Tensor, kp_initial: torch.Tensor) -> torch.Tensor:
    """sqrt(hull area of kp_source[0] / hull area of kp_initial[0]), 1 if either is 0; (1,)."""
    areas = hull_area(torch.cat([kp_source[:1], kp_initial[:1]], dim=0))
    source, initial = areas[0:1], areas[1:2]
    degenerate = (source <= 0.0) | (initial <= 0.0)
    one = torch.ones_like(initial)
    safe_initial = torch.where(degenerate, one, initial)
    # sqrt(a / b), as the TF graph computes it (one rounding fewer than sqrt(a) / sqrt(b)).
    return torch.where(degenerate, one, torch.sqrt(source / safe_initial))


class ProcessKpDriving(nn.Module):
    """Driving keypoints normalised for animation; every mode selected by input flags.

    forward(kp_driving, kp_driving_jacobian, kp_driving_initial,
    kp_driving_initial_jacobian, kp_source, kp_source_jacobian, use_relative_movement,
    use_relative_jacobian, adapt_movement_scale) -> {"value"[, "jacobian"]}; the jacobian
    arguments are None for a model without jacobians. Flags are scalar float tensors (or
    Python numbers) read as true when > 0.5.
    """

    def __init__(self, num_kp: int, estimate_jacobian: bool):
        super().__init__()
        self.num_kp = int(num_kp)
        self.estimate_jacobian = bool(estimate_jacobian)

    def input_names(self) -> list[str]:
        kps = ("kp_driving", "kp_driving_initial", "kp_source")
        if self.estimate_jacobian:
            kps = tuple(n for kp in kps for n in (kp, f"{kp}_jacobian"))
        return [*kps, *FLAGS]

    def output_names(self) -> list[str]:
        return ["value", "jacobian"] if self.estimate_jacobian else ["value"]

    def forward(self, kp_driving, kp_driving_jacobian, kp_driving_initial,
                kp_driving_initial_jacobian, kp_source, kp_source_jacobian,
                use_relative_movement, use_relative_jacobian, adapt_movement_scale):
        jacobians = (kp_driving_jacobian, kp_driving_initial_jacobian, kp_source_jacobian)
        if self.estimate_jacobian and any(j is None for j in jacobians):
            raise ValueError("this model estimates jacobians: pass all three jacobians")
        if not self.estimate_jacobian and any(j is not None for j in jacobians):
            raise ValueError("this model has no jacobians: pass none")
        relative = _flag(use_relative_movement)
        adapt = _flag(adapt_movement_scale)

        scale = torch.where(adapt, movement_scale(kp_source, kp_driving_initial),
                            torch.ones(1, dtype=torch.float32))
        moved = (kp_driving - kp_driving_initial) * scale + kp_source
        # Broadcasting against kp_driving keeps its batch (the others have 1 or the same).
        out = {"value": torch.where(relative, moved, kp_driving)}
        if self.estimate_jacobian:
            relative_jacobian = relative & _flag(use_relative_jacobian)
            moved_jacobian = matmul2x2(
                matmul2x2(kp_driving_jacobian, inverse2x2(kp_driving_initial_jacobian)),
                kp_source_jacobian)
            out["jacobian"] = torch.where(relative_jacobian, moved_jacobian,
                                          kp_driving_jacobian)
        return out


def _flag(value) -> torch.Tensor:
    """A scalar 0/1 flag as a 0-d boolean tensor."""
    return torch.as_tensor(value, dtype=torch.float32).reshape(()) > 0.5
