"""Convex-hull area and the adapt-movement scale, in numpy (float64) for the host side."""
from __future__ import annotations

import numpy as np


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the 2-D convex hull of (K, 2) points (monotone chain); 0 when degenerate."""
    pts = sorted(set(map(tuple, np.asarray(points, dtype=np.float64).tolist())))
    if len(pts) < 3:
        return 0.0

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]
    hull = half(pts) + half(reversed(pts))
    if len(hull) < 3:
        return 0.0
    x, y = np.array(hull).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def movement_scale(kp_source_value: np.ndarray, kp_initial_value: np.ndarray) -> float:
    """sqrt(hull area of source) / sqrt(hull area of initial), from batch element 0 of each.

    The original raises (scipy's QhullError) when a hull is degenerate; we use 1 then.
    """
    source = convex_hull_area(kp_source_value[0])
    initial = convex_hull_area(kp_initial_value[0])
    if source <= 0 or initial <= 0:
        return 1.0
    return float(np.sqrt(source) / np.sqrt(initial))
