"""The original's find_best_frame: the driving frame whose normalised keypoints are
closest to the source's, found in one keypoint pass that keeps keypoints, never frames."""
from __future__ import annotations

import numpy as np

from ..hull import convex_hull_area
from ..keypoints import detect_frame
from .loop import Source


def normalised_kp(value: np.ndarray) -> np.ndarray | None:
    """(K, 2) keypoints minus their mean, over the square root of their convex-hull area,
    as the original's find_best_frame normalises landmarks; None when the hull is flat."""
    value = np.asarray(value, np.float64)
    area = convex_hull_area(value)
    if area <= 0:
        return None
    return (value - value.mean(axis=0, keepdims=True)) / np.sqrt(area)


def kp_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return float("inf")
    return float(((a - b) ** 2).sum())


def find_best_frame(backend, source: Source, frames, progress=None) -> tuple[int, list[dict]]:
    """The index of the driving frame whose normalised keypoints are closest to the
    source's (the first such frame on ties), and every frame's keypoints (batch 1 each).

    Holds keypoints only, never frames.
    """
    target = normalised_kp(source.kp["value"][0])
    best, best_distance, keypoints = 0, float("inf"), []
    for frame in frames:  # (not enumerate: its reused tuple would keep the last frame alive)
        kp = detect_frame(backend, frame)
        del frame
        index = len(keypoints)
        keypoints.append(kp)
        distance = kp_distance(target, normalised_kp(kp["value"][0]))
        if distance < best_distance:
            best, best_distance = index, distance
        if progress is not None:
            progress.update()
    return best, keypoints
