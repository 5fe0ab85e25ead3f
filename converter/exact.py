"""Exact signs and sums of products of large integers, in int32 limbs, for any tensor type.

The convex-hull predicates need a*b + c*d exactly for integers up to 2**29, i.e. ~60-bit
products. Exported graphs cannot rely on int64: OpenVINO's CPU plugin, tfjs and GPU
delegates compute it as int32 and overflow silently. So each operand is split into
LIMBS limbs of LIMB_BITS bits, products are summed per column of equal weight and
carried back into limbs. Every intermediate stays below 2**26 in magnitude, so the
arithmetic is exact in int32 everywhere (and even where int32 is emulated in float32).

The functions use only +, -, * and `div`, a division of NON-NEGATIVE int32 tensors by a
power of two (every dividend is biased to be non-negative, so flooring and truncating
divisions agree): TF, torch and numpy tensors all work. Operands: |v| <= SPLIT_BIAS.
"""
from __future__ import annotations

from .architecture import HULL_GRID_BITS, HULL_LIMB_BITS, HULL_LIMBS

BASE = 2 ** HULL_LIMB_BITS
# Operands are differences of hull grid coordinates: |v| <= 2 * 2**HULL_GRID_BITS.
SPLIT_BIAS = 2 ** (HULL_GRID_BITS + 1)
# A column plus its carry in has |.| < 2**24 + 2**13 for operands within SPLIT_BIAS (3
# limbs of 11 bits: lower limbs below 2**11, the top one within 2**7): columns are biased
# by this multiple of BASE before their carry is taken.
CARRY_BIAS = 2 ** 25


def limbs(v, div) -> list:
    """v = sum(limb[k] * BASE**k) with the lower limbs in [0, BASE) and the top one in
    [-2**7, 2**7], for integer tensors |v| <= SPLIT_BIAS."""
    rest = v + SPLIT_BIAS  # in [0, 2**30]: no int32 overflow
    out = []
    for _ in range(HULL_LIMBS - 1):
        high = div(rest, BASE)
        out.append(rest - high * BASE)
        rest = high
    out.append(rest - SPLIT_BIAS // BASE ** (HULL_LIMBS - 1))
    return out


def negated(a: list) -> list:
    """The limbs of -v (lower limbs in (-BASE, 0]: columns take signed limbs)."""
    return [-limb for limb in a]


def columns(a: list, b: list, c: list, d: list) -> list:
    """a*b + c*d as 2 * LIMBS - 1 columns of weight BASE**k (not carried)."""
    out = [0] * (2 * HULL_LIMBS - 1)
    for i in range(HULL_LIMBS):
        for j in range(HULL_LIMBS):
            out[i + j] = out[i + j] + a[i] * b[j] + c[i] * d[j]
    return out


def carried(cols: list, div) -> list:
    """Columns carried into limbs: every one but the top in [0, BASE), the top signed."""
    out, carry = [], 0
    for col in cols[:-1]:
        col = col + carry
        carry = div(col + CARRY_BIAS, BASE) - CARRY_BIAS // BASE
        out.append(col - carry * BASE)
    out.append(cols[-1] + carry)
    return out


def sign_parts(a: list, b: list, c: list, d: list, div) -> tuple:
    """(top, lower) of a*b + c*d carried: the value is > 0 iff top > 0, or top == 0 and
    lower > 0; it is 0 iff both are 0 (lower: the sum of the non-negative lower limbs)."""
    result = carried(columns(a, b, c, d), div)
    lower = result[0]
    for limb in result[1:-1]:
        lower = lower + limb
    return result[-1], lower
