"""The TPS kernel U = r^2 log(r^2 + 1e-9) in double-float, for any tensor library given its
`where` and `log`: what the exported graphs evaluate (TF: tpsmm/tf_model/tps.py; ONNX:
tpsmm/torch_model/tps.py's "double-float" solve), the torch reference keeping the original's
float32 radial.
"""
from __future__ import annotations

import numpy as np

from .. import double_float as df
from .architecture import TPS_LOG_EPSILON, TPS_REGULARIZATION

# log(r^2) = log(r^2 * 2**-k) + k log 2 for the k bringing r^2 * 2**-k (exact) nearest 1,
# where float32's log is accurate to its smaller ulp: (threshold, 2**-k, k log 2 as hi
# and lo), k = 1..3 above, -1..-2 below (r^2 <= 8 on the grid [-1, 1]^2).
_OCTAVES = [(2.0 ** (k - 0.5) if k > 0 else 2.0 ** (k + 0.5), 2.0 ** -k,
             np.float32(k * np.log(2.0)),
             np.float32(k * np.log(2.0) - np.float64(np.float32(k * np.log(2.0)))))
            for k in (1, 2, 3, -1, -2)]


def log_double(head, tail, where, log):
    """log(head + tail) as a double-float, head > 0 float32, |tail| <= ulp(head)."""
    scale, k_hi, k_lo = 1.0, 0.0, 0.0
    for threshold, factor, hi, lo in _OCTAVES:
        beyond = head >= threshold if factor < 1 else head < threshold
        scale = where(beyond, factor, scale)
        k_hi, k_lo = where(beyond, hi, k_hi), where(beyond, lo, k_lo)
    reduced = head * scale
    s, e = df.two_sum(log(reduced), k_hi)
    return df.fast_two_sum(s, e + (k_lo + tail / head))


def radial_double(r2, where, log):
    """U of a double-float r^2, as a double-float; 0 at r = 0 (selected: the float16
    TFLite variants round every float constant, and 1e-9 rounds to 0, where 0 * log(0) is
    NaN: the solve of every system, each with U(0) on its diagonal, went NaN and the
    generator's gathers failed on the NaN coordinates)."""
    u = df.multiply(r2, log_double(r2[0] + TPS_LOG_EPSILON, r2[1], where, log))
    positive = r2[0] > 0.0
    return where(positive, u[0], 0.0), where(positive, u[1], 0.0)


def regularization(n: int) -> tuple[np.ndarray, np.ndarray]:
    """TPS_REGULARIZATION * I (1, 1, n, n) as a double-float of float32 arrays (0.01 is
    not a float32)."""
    exact = TPS_REGULARIZATION * np.eye(n)[None, None]
    hi = exact.astype(np.float32)
    return hi, (exact - hi).astype(np.float32)
