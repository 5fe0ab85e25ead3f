"""Double-float arithmetic: a value as an unevaluated sum hi + lo of two float32s, about
48 significant bits, from ordinary elementwise +, - and * only (numpy arrays, torch and
TF tensors alike), for the sums float32 alone rounds too coarsely.

TPSMM's TPS grids (tpsmm/tf_model/tps.py) sum radial terms up to ~37 to warps up to ~4
(vox: weights to 32, warps 30 apart); evaluated in float32 they land ~6e-6 off float64,
which the contribution maps and the full-size warp carry into the frames
(docs/performance.md, "TPSMM in the TF formats": where TFLite's extra avd noise comes from).

Knuth's TwoSum and Dekker's TwoProduct (split by 2**12 + 1: TFLite's kernels have no
fused multiply-add) are exact only if every op is rounded to float32 on its own and
nothing is reassociated or contracted; scripts/measure_tpsmm_avd_noise.py measures what
the converters and runtimes leave of it.
"""
from __future__ import annotations

# Splits a float32's 24-bit significand into two halves of at most 12 bits, whose
# products are exact in float32.
SPLITTER = 4097.0


def two_sum(a, b):
    """(s, e): s = fl(a + b) and e its rounding error, a + b = s + e exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a, b):
    """two_sum for |a| >= |b| (or a = 0): the pair renormalised, hi the rounded sum."""
    s = a + b
    return s, b - (s - a)


def split(a):
    """(hi, lo), a = hi + lo exactly, each of at most 12 significant bits (Dekker)."""
    c = SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_product(a, b):
    """(p, e): p = fl(a * b) and e its rounding error, a * b = p + e exactly (Dekker)."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def add(x, y):
    """x + y of two double-floats (its absolute error ~2**-44 of the larger operand)."""
    s, e = two_sum(x[0], y[0])
    return fast_two_sum(s, e + (x[1] + y[1]))


def add_float(x, b):
    """x + b of a double-float and a float32."""
    s, e = two_sum(x[0], b)
    return fast_two_sum(s, e + x[1])


def multiply(x, y):
    """x * y of two double-floats (lo * lo dropped: below 2**-46 of the product)."""
    p, e = two_product(x[0], y[0])
    return fast_two_sum(p, e + (x[0] * y[1] + x[1] * y[0]))


def square(x):
    """x * x of a double-float."""
    p, e = two_product(x[0], x[0])
    return fast_two_sum(p, e + (x[0] + x[0]) * x[1])


def multiply_float(x, b):
    """x * b of a double-float and a float32."""
    p, e = two_product(x[0], b)
    return fast_two_sum(p, e + x[1] * b)


def divide_float(x, b):
    """x / b of a double-float and a float32 (b's products exact, as a small integer's)."""
    q = x[0] / b
    p, e = two_product(q, b)
    return fast_two_sum(q, (((x[0] - p) - e) + x[1]) / b)


def _take(x, axis: int, start: int, stop: int):
    """The double-float x's entries start:stop along axis (plain slicing: any library)."""
    index = (slice(None),) * axis + (slice(start, stop),)
    return x[0][index], x[1][index]


def total(x, axis: int):
    """The sum of a double-float's entries along axis (kept, size 1), pairwise: in runs of
    powers of two, each halved until one entry is left, the runs' sums then added."""
    n, start, out = int(x[0].shape[axis]), 0, None
    while start < n:
        size = 1 << ((n - start).bit_length() - 1)
        run, start = _take(x, axis, start, start + size), start + size
        while size > 1:
            size //= 2
            run = add(_take(run, axis, 0, size), _take(run, axis, size, 2 * size))
        out = run if out is None else add(out, run)
    return out


def dot_float(x, w, axis: int):
    """The sum along axis of x * w, x a double-float and w float32 (broadcast together)."""
    p, e = two_product(x[0], w)
    return total((p, e + x[1] * w), axis)
