"""Control points whose TPS system has a chosen condition number, to measure solves on.

L = M + 0.01 I with M = [[U, P], [P^T, 0]] is singular exactly where M has the eigenvalue
-0.01. M has three negative eigenvalues, which go to 0 as the points become collinear (one
of them) or coincident (two): exactly collinear or coincident points keep cond(L) near
2e2-6e2 (the 0.01 I), but on the way out of such a set one of those eigenvalues crosses
-0.01, a spread of about 0.01-0.1 off the line or the point. So ill-conditioned sets are
made by moving points out of a degenerate set along a random direction until det L
changes sign, bisecting onto that root in float64, and backing off toward the
degenerate set to the wanted condition number.
"""
from __future__ import annotations

import numpy as np
import torch

from .torch_model.tps import system_matrix

KINDS = ("collinear", "coincident")


def system64(points) -> np.ndarray:
    """L in float64 of control points (..., 5, 2)."""
    points = torch.as_tensor(np.asarray(points, np.float64))
    return system_matrix(points.reshape(-1, 1, *points.shape[-2:])).reshape(
        *points.shape[:-2], 8, 8).numpy()


def degenerate_path(rng: np.random.Generator, kind: str):
    """(start, step): 5 collinear or coincident points in [-0.5, 0.5]^2 and a direction
    out of that set (perpendicular to the line for collinear ones)."""
    centre = rng.uniform(-0.5, 0.5, 2)
    angle = rng.uniform(0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)])
    if kind == "collinear":
        start = centre + rng.uniform(-0.5, 0.5, (5, 1)) * along
        return start, rng.normal(0.0, 0.1, (5, 1)) * np.array([-along[1], along[0]])
    if kind == "coincident":
        return np.tile(centre, (5, 1)), rng.normal(0.0, 0.1, (5, 2))
    raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")


def _bisect(inside, lo: float, hi: float) -> float:
    """The boundary in [lo, hi] where inside(t) turns from inside(lo) to not."""
    first = inside(lo)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if inside(mid) == first else (lo, mid)
    return (lo + hi) / 2


def near_singular(rng: np.random.Generator, kind: str, cond: float | None = None):
    """(5, 2) float32 control points in [-1, 1] whose L has about this cond in float64
    (None: L singular to float64's precision, then rounded to float32: cond(L) of the
    float32 points ~1e6-1e10)."""
    ts = np.linspace(0.0, 1.0, 257)
    while True:
        start, step = degenerate_path(rng, kind)
        dets = np.linalg.det(system64(start + ts[:, None, None] * step))
        changes = np.nonzero(np.sign(dets[:-1]) != np.sign(dets[1:]))[0]
        if len(changes):
            break
    det0 = np.sign(dets[changes[0]])

    def det_sign(t):
        return np.sign(np.linalg.det(system64(start + t * step))) == det0
    root = _bisect(det_sign, ts[changes[0]], ts[changes[0] + 1])
    t = root
    if cond is not None:  # cond falls from the root toward the degenerate set (t = 0)
        t = _bisect(lambda u: np.linalg.cond(system64(start + u * step)) < cond, 0.0, root)
    return (start + t * step).astype(np.float32)
