"""Dimensions as polynomials in a call's batch B, for the TFLite shape proof.

A dimension (or a value computed from dimensions) is an int, the same for every batch, or
a Poly in B with integer coefficients, e.g. 5*B, for every batch B from 1 to
limits.TFLITE_MAX_CALL_BATCH. Arithmetic on them is exact, and a question that has no
single answer for every such B (a floor division whose remainder depends on B, a
comparison whose sign changes with B) raises Undecided: a shape that depends on the batch
in a way our exporter never writes is not proven, so not run.

Signs: a linear form takes its least value at an end of the range; a higher degree p is
>= 0 when every coefficient of p(1 + t) is (sufficient; our files hold linear forms).
"""
from __future__ import annotations

import functools
from math import comb

from ...limits import TFLITE_MAX_CALL_BATCH

INT32_MAX = 2 ** 31 - 1


class Undecided(ValueError):
    """No single answer for every batch."""


class Poly:
    """c[0] + c[1]*B + c[2]*B**2 + ..., of degree >= 1 (constants are ints)."""
    __slots__ = ("c",)

    def __init__(self, coefficients: tuple):
        self.c = coefficients

    def __repr__(self):
        terms = [f"{c}" if i == 0 else f"{'' if c == 1 else f'{c}*'}B{'' if i == 1 else f'**{i}'}"
                 for i, c in enumerate(self.c) if c]
        return " + ".join(reversed(terms)).replace("+ -", "- ")

    def __eq__(self, other):
        return isinstance(other, Poly) and self.c == other.c

    def __hash__(self):
        return hash(self.c)

    def __add__(self, other):
        return make(_add(coefficients(self), coefficients(other)))

    __radd__ = __add__

    def __neg__(self):
        return Poly(tuple(-c for c in self.c))

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        a, b = coefficients(self), coefficients(other)
        out = [0] * (len(a) + len(b) - 1)
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                out[i + j] += x * y
        return make(out)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        return floordiv(self, other)

    def __rfloordiv__(self, other):
        return floordiv(other, self)


BATCH = Poly((0, 1))


def make(c) -> int | Poly:
    c = list(c)
    while len(c) > 1 and c[-1] == 0:
        c.pop()
    return c[0] if len(c) == 1 else Poly(tuple(c))


def coefficients(x) -> tuple:
    return x.c if isinstance(x, Poly) else (int(x),)


def _add(a, b):
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]


def floordiv(a, b):
    """a // b (floor, as TFLite's integer FLOOR_DIV), when it is one polynomial."""
    if not isinstance(a, Poly) and not isinstance(b, Poly):
        if b == 0:
            raise Undecided("a division by zero")
        return int(a) // int(b)
    num, den = list(coefficients(a)), coefficients(b)
    if den == (0,):
        raise Undecided("a division by zero")
    quotient = [0] * max(1, len(num) - len(den) + 1)
    for shift in range(len(num) - len(den), -1, -1):
        lead = num[shift + len(den) - 1]
        if lead % den[-1]:
            raise Undecided(f"{show(a)} // {show(b)} depends on the batch")
        q = lead // den[-1]
        quotient[shift] = q
        for i, d in enumerate(den):
            num[shift + i] -= q * d
    if any(num):
        raise Undecided(f"{show(a)} // {show(b)} depends on the batch")
    return make(quotient)


def _shifted(c) -> tuple:
    """Coefficients of p(1 + t) from p's."""
    return tuple(sum(c[i] * comb(i, k) for i in range(k, len(c))) for k in range(len(c)))


def le(a, b) -> bool:
    """a <= b for every batch (False: not so for every batch, or not provable)."""
    if type(a) is int and type(b) is int:
        return a <= b
    return _le(a, b)


@functools.lru_cache(maxsize=4096)
def _le(a, b) -> bool:
    c = coefficients(b - a)
    if len(c) <= 2:  # linear: its least value over 1..TFLITE_MAX_CALL_BATCH is at an end
        return all(c[0] + (c[1] if len(c) > 1 else 0) * batch >= 0
                   for batch in (1, TFLITE_MAX_CALL_BATCH))
    return all(x >= 0 for x in _shifted(c))


def clamp(value, low, high):
    """min(max(value, low), high), when it is the same expression for every batch."""
    if le(value, low):
        return low
    if le(high, value):
        return high
    if le(low, value) and le(value, high):
        return value
    raise Undecided(f"clamping {show(value)} to [{show(low)}, {show(high)}] depends on "
                    f"the batch")


def ordered(a, b) -> tuple:
    """(the lesser, the greater) of a and b, when it is the same for every batch."""
    if le(a, b):
        return a, b
    if le(b, a):
        return b, a
    raise Undecided(f"which of {show(a)} and {show(b)} is greater depends on the batch")


def maximum(a, b):
    return ordered(a, b)[1]


def minimum(a, b):
    return ordered(a, b)[0]


def fits_int32(x) -> bool:
    """|x| < 2**31 for every batch up to limits.TFLITE_MAX_CALL_BATCH (TFLite's shapes and
    shape arithmetic are int32: a value past it would wrap in the runtime, not here)."""
    return sum(abs(c) * TFLITE_MAX_CALL_BATCH ** i
               for i, c in enumerate(coefficients(x))) <= INT32_MAX


def show(x) -> str:
    return repr(x) if isinstance(x, Poly) else str(x)
