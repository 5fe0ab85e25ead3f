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

from ..architecture import HULL_BOUND, HULL_GRID_BITS
from ..signatures import FLAGS, keypoint_names
from .ops import inverse2x2

# --------------------------------------------------------------------------- hull area

# Hull predicates are evaluated exactly, in int64, on the points rounded to a grid of
# HULL_BOUND * 2**-29 = 2**-28: float predicates are not enough, since rounding can call
# a nearly collinear point left of one edge and right of its neighbour, and a hull edge
# is then lost or counted twice (seen on random points placed on hull edges). With
# |q| <= 2**29, every difference, cross product and partial shoelace sum stays below
# 2**62. The rounding moves a point by at most 2**-29 (not at all when its coordinates
# have |c| >= 2**-5: float32 already holds those on that grid).


def _spread(x: tf.Tensor, axis: int, num_points: int, num_axes: int) -> tf.Tensor:
    """(B, K) -> (B, K, ..., K) with `num_axes` point axes, x's values along `axis`
    (1-based) and repeated along the others; tiled explicitly (no implicit broadcast)."""
    shape = [-1] + [1] * num_axes
    shape[axis] = num_points
    multiples = [1] + [num_points] * num_axes
    multiples[axis] = 1
    return tf.tile(tf.reshape(x, shape), multiples)


def hull_area(points: tf.Tensor) -> tf.Tensor:
    """Area of the 2-D convex hull of each point set: (B, K, 2) -> (B,), float32.

    Closed form, vectorised over (i, j, k) triples ((B, K, K, K) tensors, K static), in
    exact integer arithmetic on the points rounded to a 2**-28 grid (coordinates beyond
    +-HULL_BOUND are clipped): the directed pair (i, j) is a counter-clockwise hull edge
    iff every point k lies strictly left of it, or on its line within the segment
    [p_i, p_j]; twice the area is the shoelace sum of cross(p_i, p_j) over those edges,
    exact in int64, then scaled to float32 (one rounding). Identical points are
    deduplicated by index (only the first copy can be an edge's end). Degenerate sets
    give exactly 0: for collinear points the two extreme points form the edges (i, j)
    and (j, i), whose terms cancel; a single distinct point has no edge. No division,
    so no NaN or Inf.
    """
    points = tf.convert_to_tensor(points, tf.float32)
    num_points = points.shape[1]
    if num_points is None:
        raise ValueError("hull_area needs a static number of points")
    per_unit = 2.0 ** HULL_GRID_BITS / HULL_BOUND  # a power of two: scaling is exact
    grid = tf.round(tf.clip_by_value(points, -HULL_BOUND, HULL_BOUND) * per_unit)
    grid = tf.cast(grid, tf.int64)
    x, y = grid[:, :, 0], grid[:, :, 1]  # (B, K)

    xi, yi = _spread(x, 1, num_points, 3), _spread(y, 1, num_points, 3)  # (B, K, K, K)
    xj, yj = _spread(x, 2, num_points, 3), _spread(y, 2, num_points, 3)
    xk, yk = _spread(x, 3, num_points, 3), _spread(y, 3, num_points, 3)
    ex, ey = xj - xi, yj - yi  # edge i -> j
    dx, dy = xk - xi, yk - yi  # i -> candidate k
    orientation = ex * dy - ey * dx  # > 0: k is left of i -> j
    along = ex * dx + ey * dy  # projection of k on the edge, times |e|^2
    length2 = ex * ex + ey * ey
    zero = tf.zeros_like(orientation)
    within = tf.logical_and(tf.greater_equal(along, zero), tf.less_equal(along, length2))
    on_segment = tf.logical_and(tf.equal(orientation, zero), within)
    supports = tf.logical_or(tf.greater(orientation, zero), on_segment)
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
    is_edge = is_edge * valid_i * valid_j * distinct

    cross = xi * yj - yi * xj  # cross(q_i, q_j), (B, K, K) int64
    twice_area = tf.reduce_sum(tf.where(is_edge > 0.5, cross, tf.zeros_like(cross)),
                               axis=[1, 2])
    area = tf.cast(twice_area, tf.float32) * (0.5 / per_unit ** 2)
    return tf.maximum(area, 0.0)


def movement_scale(kp_source: tf.Tensor, kp_initial: tf.Tensor) -> tf.Tensor:
    """sqrt(hull area of kp_source[0]) / sqrt(hull area of kp_initial[0]); 1 if either is 0.

    Returns a (1,) tensor. Both hulls are computed in one batch of two.
    """
    both = tf.concat([kp_source[:1], kp_initial[:1]], axis=0)
    areas = hull_area(both)
    source, initial = areas[0:1], areas[1:2]
    degenerate = tf.logical_or(source <= 0.0, initial <= 0.0)
    safe_initial = tf.where(degenerate, tf.ones_like(initial), initial)
    # sqrt(a / b) rather than sqrt(a) / sqrt(b): the TFLite converter rewrites the latter
    # into a * rsqrt(b), which rounds differently from TF.
    return tf.where(degenerate, tf.ones_like(initial), tf.sqrt(source / safe_initial))


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
        scale = tf.where(adapt, scale, tf.ones_like(scale))
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
