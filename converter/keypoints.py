"""Keypoints of many frames, detected as the original demo detects them: one frame at a
time (batch 1), the results concatenated. Any backend; numpy only."""
from __future__ import annotations

import numpy as np


def detect_frame(backend, frame: np.ndarray) -> dict:
    """Keypoints of one (H, W, C) frame, at batch 1."""
    return backend.kp_detector(np.asarray(frame, np.float32)[None])


def stack_kp(kps: list[dict]) -> dict:
    """Per-frame keypoint dicts (batch 1 or more each) concatenated along the batch."""
    return {k: np.concatenate([kp[k] for kp in kps]) for k in kps[0]}


def detect_frames(backend, frames) -> dict:
    """Keypoints of (N, H, W, C) frames (or any iterable of (H, W, C) frames), each
    detected at batch 1 and concatenated: value (N, K, 2) [, jacobian (N, K, 2, 2)]."""
    return stack_kp([detect_frame(backend, frame) for frame in frames])
