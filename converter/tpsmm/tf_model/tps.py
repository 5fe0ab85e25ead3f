"""The K thin-plate splines of a frame in TF: fitted to map the driving keypoints onto the
source keypoints by tps_solve's unrolled elimination (no matrix inverse or solve op:
TFLite, LiteRT.js and the GPU delegates have none), and evaluated on a grid. Torch
reference: converter/tpsmm/torch_model/tps.py.

Every tensor is at most 4-D: (B, K, rows, columns) for the systems, (B, h, w, K) for the
warped grids, each TPS's coefficients as (B, 1, 1, K) maps, so that grid and coefficient
meet without a broadcast of both operands.
"""
from __future__ import annotations

import tensorflow as tf

from ... import double_float as df
from ...tf_model import ops
from ..architecture import POINTS_PER_TPS
from ..tps_kernel import radial_double, regularization
from ..tps_solve import Ops, solve
from .grid import grid_maps


def _product(a, b) -> tf.Tensor:
    """a @ b for the solve's small matrices, (B, K, n, p) @ (B, K, p, m) with p <= 8 (a
    mask may have batch (1, 1)), as the p products of a column and a row, each copied to
    (n, m), summed in order: exact where the solve's products are (0/1 masks, single
    terms), and no BATCH_MATMUL, which the GPU delegate does not take with a constant
    first operand (its parser turns only a constant second one into a convolution).
    Copies by concatenation: the TFLite converter folds a TILE into a MUL that then
    broadcasts both operands, which the GPU delegate refuses."""
    n, p, m = a.shape[2], a.shape[3], b.shape[3]
    out = None
    for j in range(p):
        term = (tf.concat([a[:, :, :, j:j + 1]] * m, axis=3)
                * tf.concat([b[:, :, j:j + 1, :]] * n, axis=2))
        out = term if out is None else out + term
    return out


TF = Ops(const=tf.constant,
         amax=lambda x, axis: tf.reduce_max(x, axis=axis, keepdims=True),
         total=lambda x, axis: tf.reduce_sum(x, axis=axis, keepdims=True),
         to_float=lambda b: tf.cast(b, tf.float32),
         concat=lambda xs, axis: tf.concat(xs, axis=axis),
         matmul=_product)


def control_points(kp: tf.Tensor) -> tf.Tensor:
    """(B, 5K, 2) keypoints -> (B, K, 5, 2): consecutive groups of 5 form one TPS."""
    return tf.reshape(kp, [-1, kp.shape[1] // POINTS_PER_TPS, POINTS_PER_TPS, 2])


def _zeros(batch, *shape) -> tf.Tensor:
    return ops.tile_to_batch(tf.zeros([1, *shape]), batch)


def _radial_double(r2):
    """The TPS kernel of a double-float r^2 (tpsmm/tps_kernel.py)."""
    return radial_double(r2, tf.where, tf.math.log)


def system_matrix_double(points: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """L = [[U, P], [P^T, 0]] + 0.01 I (B, K, 8, 8) of control points (B, K, 5, 2) as a
    double-float (hi, lo): U of the exact differences' squared distances (the torch
    reference's system_matrix_4d, in float64)."""
    groups, n = points.shape[1], POINTS_PER_TPS
    batch = ops.batch_size(points)

    def difference(axis):  # (B, K, 5, 5): c_i - c_j, tiled explicitly, exact
        rows = tf.tile(points[:, :, :, axis:axis + 1], [1, 1, 1, n])
        return df.two_sum(rows, -tf.transpose(rows, [0, 1, 3, 2]))
    u = _radial_double(df.add(df.square(difference(0)), df.square(difference(1))))
    p = tf.concat([points, ops.tile_to_batch(tf.ones([1, groups, n, 1]), batch)], axis=3)
    zeros = _zeros(batch, groups, 3, 3)
    hi = tf.concat([tf.concat([u[0], p], axis=3),
                    tf.concat([tf.transpose(p, [0, 1, 3, 2]), zeros], axis=3)], axis=2)
    lo = tf.concat([tf.concat([u[1], 0.0 * p], axis=3),
                    tf.concat([0.0 * tf.transpose(p, [0, 1, 3, 2]), zeros], axis=3)], axis=2)
    reg_hi, reg_lo = regularization(n + 3)
    return df.add((hi, lo), (tf.constant(reg_hi), tf.constant(reg_lo)))


def system_matrix(points: tf.Tensor) -> tf.Tensor:
    """L (B, K, 8, 8) rounded to float32."""
    return system_matrix_double(points)[0]


def _residual(lhs, x, rhs) -> tf.Tensor:
    """rhs - lhs @ x (B, K, n, r) in double-float for a double-float lhs (B, K, n, n),
    rounded: the products as _product's, each a column and a row copied to (n, r)."""
    n, r = x.shape[2], x.shape[3]
    total = rhs, 0.0 * rhs
    for j in range(n):
        column = [tf.concat([m[:, :, :, j:j + 1]] * r, axis=3) for m in lhs]
        row = tf.concat([x[:, :, j:j + 1, :]] * n, axis=2)
        p, e = df.two_product(column[0], -row)
        total = df.add(total, df.fast_two_sum(p, e - column[1] * row))
    return total[0]


def fit(kp_driving: tf.Tensor, kp_source: tf.Tensor) -> tuple[tuple, tuple]:
    """(theta (B, K, 2, 3), control_params (B, K, 5, 2)) of the TPS taking each group of
    driving keypoints onto the source's, each a double-float (hi, lo); kp_source may have
    batch 1.

    One step of iterative refinement: the elimination's solution x (its error grows with
    cond(L), 2e-6 on parameters to 6.6 where float64's rounding is 2.4e-7), the residual
    of L x computed in double-float from L in double-float, its correction solved by the
    same elimination and kept as the low part."""
    batch = ops.batch_size(kp_driving)
    driving = control_points(kp_driving)
    source = control_points(ops.tile_to_batch(kp_source, batch))
    rhs = tf.concat([source, _zeros(batch, driving.shape[1], 3, 2)], axis=2)
    lhs = system_matrix_double(driving)
    x = solve(lhs[0], rhs, TF)
    hi, lo = df.fast_two_sum(x, solve(lhs[0], _residual(lhs, x, rhs), TF))
    n = POINTS_PER_TPS
    return (tuple(tf.transpose(part[:, :, n:, :], [0, 1, 3, 2]) for part in (hi, lo)),
            (hi[:, :, :n, :], lo[:, :, :n, :]))


def coefficient_maps(t: tf.Tensor) -> list[tf.Tensor]:
    """(B, K, a, b) -> its a*b entries in row-major order, each as a (B, 1, 1, K) map."""
    groups, size = t.shape[1], t.shape[2] * t.shape[3]
    flat = tf.reshape(t, [-1, groups, size])
    return [tf.reshape(flat[:, :, i:i + 1], [-1, 1, 1, groups]) for i in range(size)]


def _parts(value) -> tuple:
    """A double-float (hi, lo) as it is; a float32 tensor as (it, None)."""
    return value if isinstance(value, tuple) else (value, None)


def warp_grid(height: int, width: int, points, theta, control_params):
    """Each TPS applied to the (h, w) grid: x and y, each (B, h, w, K); theta and
    control_params float32 or double-floats (fit's).

    T(z) = theta @ [z, 1] + sum_i U(|z - c_i|^2) w_i, in the torch reference's order (the
    radial terms summed over the 5 control points, then added to the affine part), in
    double-float (converter/double_float.py), rounded once: in float32 the sum of terms up
    to ~37 to warps of a few units costs ~6e-6, which the generator's frames carry
    (docs/performance.md)."""
    groups = points.shape[1]
    gx, gy = grid_maps(height, width, points, copies=groups)  # (1, h, w, K)
    (theta, theta_lo), (control_params, params_lo) = _parts(theta), _parts(control_params)
    t = coefficient_maps(theta)
    t_lo = coefficient_maps(theta_lo) if theta_lo is not None else [None] * 6
    c = coefficient_maps(points)  # c_i = (c[2i], c[2i + 1])
    w = coefficient_maps(control_params)
    w_lo = coefficient_maps(params_lo) if params_lo is not None else [None] * 10

    def times(u, i):  # u * w_i, double-float
        if w_lo[i] is None:
            return df.multiply_float(u, w[i])
        return df.multiply(u, (w[i], w_lo[i]))
    bent_x = bent_y = None
    for i in range(POINTS_PER_TPS):
        u = _radial_double(df.add(df.square(df.two_sum(gx, -c[2 * i])),
                                  df.square(df.two_sum(gy, -c[2 * i + 1]))))
        term_x, term_y = times(u, 2 * i), times(u, 2 * i + 1)
        bent_x = term_x if bent_x is None else df.add(bent_x, term_x)
        bent_y = term_y if bent_y is None else df.add(bent_y, term_y)

    def affine(row):  # theta[row] @ [z, 1], double-float
        total = None
        for j, g in ((0, gx), (1, gy)):
            p, e = df.two_product(t[3 * row + j], g)
            if t_lo[3 * row + j] is not None:
                e = e + t_lo[3 * row + j] * g
            total = (p, e) if total is None else df.add(total, (p, e))
        offset = t[3 * row + 2], t_lo[3 * row + 2]
        return df.add(total, offset) if offset[1] is not None else df.add_float(total, offset[0])
    return df.add(affine(0), bent_x)[0], df.add(affine(1), bent_y)[0]
