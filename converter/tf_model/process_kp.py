"""Keypoint normalisation for animation, in the graph (relative motion, relative jacobian,
adapted movement scale), so that one exported artifact serves every normalisation mode.

The three mode flags are scalar float32 inputs (0.0 or 1.0) and act through selects, never
through Python branches. The movement scale needs the area of the convex hull of the
keypoints, which `hull_area` computes in closed form with TFLite builtin ops only.

Semantics (the original's normalize_kp; torch reference:
converter/torch_model/normalize.py):
- not relative: value and jacobian are kp_driving's, unchanged;
- relative: value = (kp_driving - kp_initial) * scale + kp_source, where
  scale = sqrt(hull_area(kp_source[0])) / sqrt(hull_area(kp_initial[0])) when adapting the
  movement scale, else 1; a degenerate hull (area 0) gives scale 1 (the original raises);
- relative movement and relative jacobian:
  jacobian = kp_driving_jacobian @ inverse(kp_initial_jacobian) @ kp_source_jacobian.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import exact
from ..architecture import HULL_BOUND, HULL_GRID_BITS
from ..signatures import FLAGS, keypoint_names
from .ops import inverse2x2

# --------------------------------------------------------------------------- hull area

# Hull predicates and the area are evaluated exactly on the points rounded to a 2**-27
# grid, in int32 only (converter/exact.py; architecture.py HULL_*): float predicates are
# not enough, since rounding can call a nearly collinear point left of one edge and right
# of its neighbour, and a hull edge is then lost or counted twice (seen on random points
# placed on hull edges); int64 is not portable (OpenVINO computed the previous int64
# products as int32 and overflowed, silently). The rounding moves a point by at most
# 2**-28, not at all when its coordinates have |c| >= 2**-4.


def _div(x: tf.Tensor, divisor: int) -> tf.Tensor:
    return tf.math.floordiv(x, divisor)  # of non-negative int32 only (exact.py)


def _spread(x: tf.Tensor, axis: int, num_points: int, num_axes: int) -> tf.Tensor:
    """(B, K) -> (B, K, ..., K) with `num_axes` point axes, x's values along `axis`
    (1-based) and repeated along the others; tiled explicitly (no implicit broadcast)."""
    shape = [-1] + [1] * num_axes
    shape[axis] = num_points
    multiples = [1] + [num_points] * num_axes
    multiples[axis] = 1
    return tf.tile(tf.reshape(x, shape), multiples)


def _positive(a, b, c, d) -> tuple[tf.Tensor, tf.Tensor]:
    """(a*b + c*d > 0, a*b + c*d == 0) for limb lists (exact.limbs)."""
    top, lower = exact.sign_parts(a, b, c, d, _div)
    zero = tf.logical_and(tf.equal(top, 0), tf.equal(lower, 0))
    return tf.logical_or(tf.greater(top, 0),
                         tf.logical_and(tf.equal(top, 0), tf.greater(lower, 0))), zero


def hull_area(points: tf.Tensor) -> tf.Tensor:
    """Area of the 2-D convex hull of each point set: (B, K, 2) -> (B,), float32.

    Closed form, vectorised over (i, j, k) triples ((B, K, K, K) tensors, K static), in
    exact int32 limb arithmetic on the points rounded to a 2**-27 grid (coordinates beyond
    +-HULL_BOUND are clipped): the directed pair (i, j) is a counter-clockwise hull edge
    iff every point k lies strictly left of it, or on its line within the segment
    [p_i, p_j]; twice the area is the shoelace sum of cross(p_i - p_0, p_j - p_0) over
    those edges (each term >= 0: p_0 is in the hull), exact in limbs, then scaled to
    float32. Identical points are deduplicated by index (only the first copy can be an
    edge's end). Degenerate sets give exactly 0: for collinear points the two extreme
    points form the edges (i, j) and (j, i), whose terms are 0 (p_0 is on their line);
    a single distinct point has no edge. No division, so no NaN or Inf.
    """
    points = tf.convert_to_tensor(points, tf.float32)
    num_points = points.shape[1]
    if num_points is None:
        raise ValueError("hull_area needs a static number of points")
    per_unit = 2.0 ** HULL_GRID_BITS / HULL_BOUND  # a power of two: scaling is exact
    grid = tf.round(tf.clip_by_value(points, -HULL_BOUND, HULL_BOUND) * per_unit)
    x, y = tf.unstack(tf.cast(grid, tf.int32), axis=2)  # (B, K) each

    def limbs(v):
        return exact.limbs(v, _div)

    xi, yi = _spread(x, 1, num_points, 3), _spread(y, 1, num_points, 3)  # (B, K, K, K)
    xj, yj = _spread(x, 2, num_points, 3), _spread(y, 2, num_points, 3)
    xk, yk = _spread(x, 3, num_points, 3), _spread(y, 3, num_points, 3)
    ex, ey = limbs(xj - xi), limbs(yj - yi)  # edge i -> j
    dx, dy = limbs(xk - xi), limbs(yk - yi)  # i -> candidate k
    left, collinear = _positive(ex, dy, exact.negated(ey), dx)  # cross(e, d) > 0
    ahead, at_start = _positive(ex, dx, ey, dy)  # dot(e, d) > 0, == 0
    past_end, _ = _positive(ex, limbs(xk - xj), ey, limbs(yk - yj))  # dot(e, k - j) > 0
    within = tf.logical_and(tf.logical_or(ahead, at_start), tf.logical_not(past_end))
    supports = tf.logical_or(left, tf.logical_and(collinear, within))
    is_edge = tf.reduce_min(tf.cast(supports, tf.float32), axis=3)  # (B, K, K), 0/1

    # Keep only the first copy of identical points, and no (i, i) pairs.
    xi, yi = _spread(x, 1, num_points, 2), _spread(y, 1, num_points, 2)  # (B, K, K)
    xj, yj = _spread(x, 2, num_points, 2), _spread(y, 2, num_points, 2)
    same = tf.cast(tf.logical_and(tf.equal(xi, xj), tf.equal(yi, yj)), tf.float32)
    earlier = tf.constant(np.tril(np.ones((num_points, num_points), np.float32), -1)[None])
    first_copy = 1.0 - tf.reduce_max(same * earlier, axis=2)  # (B, K): no earlier twin
    valid_i = _spread(first_copy, 1, num_points, 2)
    valid_j = _spread(first_copy, 2, num_points, 2)
    distinct = tf.constant((1.0 - np.eye(num_points, dtype=np.float32))[None])
    is_edge = tf.cast(is_edge * valid_i * valid_j * distinct, tf.int32)

    # cross(p_i - p_0, p_j - p_0) in carried limbs; each limb's masked sum is an integer
    # below 2**24 (K <= 64), so float32 sums it exactly.
    x0, y0 = tf.reshape(x[:, :1], [-1, 1, 1]), tf.reshape(y[:, :1], [-1, 1, 1])
    cross = exact.carried(exact.columns(limbs(xi - x0), limbs(yj - y0),
                                        exact.negated(limbs(yi - y0)), limbs(xj - x0)), _div)
    twice_area = 0.0
    for k, limb in enumerate(cross):
        total = tf.reduce_sum(tf.cast(limb * is_edge, tf.float32), axis=[1, 2])
        twice_area = twice_area + total * float(exact.BASE ** k)
    return tf.maximum(twice_area * (0.5 / per_unit ** 2), 0.0)


def movement_scale(kp_source: tf.Tensor, kp_initial: tf.Tensor) -> tf.Tensor:
    """sqrt(hull area of kp_source[0]) / sqrt(hull area of kp_initial[0]); 1 if either is 0.

    Returns a (1,) tensor. Both hulls are computed in one batch of two.
    """
    both = tf.concat([kp_source[:1], kp_initial[:1]], axis=0)
    areas = hull_area(both)
    source, initial = areas[0:1], areas[1:2]
    degenerate = tf.logical_or(source <= 0.0, initial <= 0.0)
    # Scalars, not ones_like: on a dynamic shape that is an int64 SHAPE op in TFLite.
    safe_initial = tf.where(degenerate, 1.0, initial)
    # sqrt(a / b) rather than sqrt(a) / sqrt(b): the TFLite converter rewrites the latter
    # into a * rsqrt(b), which rounds differently from TF.
    return tf.where(degenerate, 1.0, tf.sqrt(source / safe_initial))


# --------------------------------------------------------------------------- the module

def _flag_mask(flag: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A scalar 0/1 flag as a boolean tensor of `like`'s shape (explicit broadcast)."""
    flag = tf.reshape(tf.convert_to_tensor(flag, tf.float32), [])
    return tf.broadcast_to(flag > 0.5, tf.shape(like))


class ProcessKpDriving(tf.Module):
    """Driving keypoints normalised for animation; every mode selected by input flags.

    Call with the arguments in the order of `input_names()` (jacobian arguments are
    left out, or None, when the model has no jacobians); returns {"value": (B, K, 2)}
    plus {"jacobian": (B, K, 2, 2)} with jacobians. kp_driving_initial and kp_source
    may have batch 1 or B; the movement scale uses their batch element 0.
    """

    def __init__(self, num_kp: int, estimate_jacobian: bool, name: str | None = None):
        super().__init__(name=name)
        self.num_kp = int(num_kp)
        self.estimate_jacobian = bool(estimate_jacobian)

    def input_names(self) -> list[str]:
        """The serving signature's inputs, in call order (tf_model.functions makes it)."""
        kps = ("kp_driving", "kp_driving_initial", "kp_source")
        return [n for kp in kps for n in keypoint_names(kp, self.estimate_jacobian)] + list(FLAGS)

    def __call__(self, kp_driving, kp_driving_jacobian=None, kp_driving_initial=None,
                 kp_driving_initial_jacobian=None, kp_source=None, kp_source_jacobian=None,
                 use_relative_movement=0.0, use_relative_jacobian=0.0,
                 adapt_movement_scale=0.0):
        if kp_driving_initial is None or kp_source is None:
            raise ValueError("kp_driving_initial and kp_source are required")
        jacobians = (kp_driving_jacobian, kp_driving_initial_jacobian, kp_source_jacobian)
        if self.estimate_jacobian and any(j is None for j in jacobians):
            raise ValueError("this model estimates jacobians: pass all three jacobians")
        if not self.estimate_jacobian and any(j is not None for j in jacobians):
            raise ValueError("this model has no jacobians: pass none")

        driving = tf.convert_to_tensor(kp_driving, tf.float32)
        initial = tf.broadcast_to(tf.convert_to_tensor(kp_driving_initial, tf.float32),
                                  tf.shape(driving))
        source = tf.convert_to_tensor(kp_source, tf.float32)
        relative = _flag_mask(use_relative_movement, driving)
        adapt = _flag_mask(adapt_movement_scale, driving)

        scale = tf.broadcast_to(tf.reshape(movement_scale(source, initial), [1, 1, 1]),
                                tf.shape(driving))
        scale = tf.where(adapt, scale, 1.0)
        moved = (driving - initial) * scale + tf.broadcast_to(source, tf.shape(driving))
        out = {"value": tf.where(relative, moved, driving)}

        if self.estimate_jacobian:
            jac_driving = tf.convert_to_tensor(kp_driving_jacobian, tf.float32)
            shape = tf.shape(jac_driving)
            jac_initial = tf.broadcast_to(
                tf.convert_to_tensor(kp_driving_initial_jacobian, tf.float32), shape)
            jac_source = tf.broadcast_to(
                tf.convert_to_tensor(kp_source_jacobian, tf.float32), shape)
            relative_jac = tf.logical_and(_flag_mask(use_relative_movement, jac_driving),
                                          _flag_mask(use_relative_jacobian, jac_driving))
            moved_jac = tf.matmul(tf.matmul(jac_driving, inverse2x2(jac_initial)), jac_source)
            out["jacobian"] = tf.where(relative_jac, moved_jac, jac_driving)
        return out
