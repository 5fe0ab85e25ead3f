"""The TPS systems solved with elementwise steps only, for any tensor library.

TPSMM solves B*K systems L x = Y of size 8 per frame (converter/tpsmm/architecture.py:
L = [[U(r^2) + 0.01 I5, P], [P^T, 0.01 I3]]); the original calls torch.inverse. TFLite has
no builtin for a matrix inverse or solve, nor do LiteRT.js and the GPU delegates, so the
exported graphs solve by Gaussian elimination with partial pivoting, unrolled: every step
is an elementwise op, a comparison, a reduction over one axis or a matmul, on 4-D
tensors (B, K, rows, columns), with no integer tensor and no gather.

Why elimination with partial pivoting rather than a closed form on the block structure
(the 5x5 block and its 3x3 Schur complement): U(r^2) = r^2 log r^2 is negative for r < 1,
so the 5x5 block is indefinite (no Cholesky) and can be singular where L is not (a Schur
complement would divide by it). Partial pivoting is what LAPACK's getrf does for
torch.inverse: backward stable in practice (growth at most 2**7 for n = 8), so the error
stays within a small multiple of cond(L) * 2**-24, like the original's
(scripts/measure_tps_solve.py measures both against float64).

A singular L (the original's torch.inverse raises on an exactly singular one, and returns
huge values where float32 rounding hides the singularity): a pivot of at most
PIVOT_TOLERANCE * max|L| counts as zero, so no division by zero happens; its unknown is
set to 0 and its pivot row left out, the other unknowns solving the remaining equations.
Elimination's own rounding can leave the last pivot of an exactly singular L a few dozen
ulps of max|L| above zero instead; then, as with torch.inverse on the same L, the values
are large (up to ~2e8 on the singular TPS systems measured) but finite.

Row exchanges and eliminations are written as products with 0/1 masks and sums of single
non-zero terms, which are exact, so the pivoting itself adds no rounding. The same
arithmetic runs on numpy (NUMPY), torch and TF tensors given their `Ops`; a backend may
spell the matrix products differently (TF's avoid BATCH_MATMUL: tpsmm/tf_model/tps.py).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

# A pivot at most this fraction of the largest |L_ij| counts as zero: float32's unit
# roundoff, the rounding of L's own entries, so that such a pivot is indistinguishable from
# 0 (from cond(L) ~1e7 on: scripts/measure_tps_solve.py). Where no pivot is that small,
# the solve is plain elimination with partial pivoting.
PIVOT_TOLERANCE = 2.0 ** -24


@dataclass(frozen=True)
class Ops:
    """What the solve needs beyond +, -, *, /, abs, comparisons and slicing: a float32
    constant from a numpy array, max and sum over one axis keeping it, a boolean tensor
    as 0/1 float32, concatenation, and the product of (B, K, n, p) and (B, K, p, m)
    matrices (either may have batch (1, 1): the masks)."""
    const: Callable
    amax: Callable  # (x, axis) -> max over axis, kept as size 1
    total: Callable  # (x, axis) -> sum over axis, kept as size 1
    to_float: Callable
    concat: Callable  # (list, axis)
    matmul: Callable = operator.matmul


NUMPY = Ops(const=lambda a: np.asarray(a, np.float32),
            amax=lambda x, axis: x.max(axis=axis, keepdims=True),
            total=lambda x, axis: x.sum(axis=axis, keepdims=True),
            to_float=lambda b: b.astype(np.float32),
            concat=lambda xs, axis: np.concatenate(xs, axis=axis))


def _row_mask(n: int, rows) -> np.ndarray:
    """(1, 1, n, 1) float32: 1 on the given rows."""
    mask = np.zeros((1, 1, n, 1), np.float32)
    mask[0, 0, list(rows), 0] = 1
    return mask


def solve(lhs, rhs, ops: Ops):
    """x with lhs @ x = rhs: lhs (B, K, n, n), rhs (B, K, n, r) of the same batch -> (B, K,
    n, r). See the module's docstring for the method and for singular systems."""
    n = lhs.shape[-1]
    a = ops.concat([lhs, rhs], 3)  # the augmented system, (B, K, n, n + r)
    tolerance = ops.amax(ops.amax(abs(lhs), 3), 2) * PIVOT_TOLERANCE  # (B, K, 1, 1)
    # earlier[i, j] = 1 for j < i: earlier @ m counts the marks above each row.
    earlier = ops.const(np.tril(np.ones((n, n), np.float32), -1)[None, None])
    reciprocals = []
    for k in range(n):
        at_k = ops.const(_row_mask(n, [k]))
        from_k = ops.const(_row_mask(n, range(k, n)))
        below_k = ops.const(_row_mask(n, range(k + 1, n)))
        # The pivot: the first row from k on with the largest |a_ik| (rows above: -1).
        candidates = abs(a[:, :, :, k:k + 1]) * from_k + (from_k - 1)
        is_max = ops.to_float(candidates >= ops.amax(candidates, 2))
        first = is_max * ops.to_float(ops.matmul(earlier, is_max) < 0.5)  # (B, K, n, 1), one 1
        pivot_row = ops.total(first * a, 2)  # (B, K, 1, n + r)
        # Exchange rows k and the pivot's (every entry keeps one term times 1).
        moved = first * (1 - at_k)
        a = (a * ((1 - at_k) - moved) + ops.matmul(at_k, pivot_row)
             + ops.matmul(moved, a[:, :, k:k + 1, :]))
        pivot = pivot_row[:, :, :, k:k + 1]
        negligible = ops.to_float(abs(pivot) <= tolerance)
        reciprocal = (1 - negligible) / (pivot + negligible)  # 1 / pivot, or 0
        reciprocals.append(reciprocal)
        a = a - ops.matmul(a[:, :, :, k:k + 1] * reciprocal * below_k, pivot_row)
    x = a[:, :, n - 1:n, n:] * reciprocals[n - 1]
    for k in range(n - 2, -1, -1):  # back substitution, rows k+1.. of x known
        residual = a[:, :, k:k + 1, n:] - ops.matmul(a[:, :, k:k + 1, k + 1:n], x)
        x = ops.concat([residual * reciprocals[k], x], 2)
    return x
