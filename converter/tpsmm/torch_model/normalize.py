"""The driving keypoints the generator is given, by animation mode (the original demo's
--mode): relative (its default), standard or avd."""
from __future__ import annotations

import torch

from ...hull import movement_scale
from ..architecture import MODES


def relative_kp(kp_source, kp_driving, kp_driving_initial) -> torch.Tensor:
    """The source keypoints moved by the driving motion since the initial frame, always
    scaled by sqrt(hull area of kp_source[0] / hull area of kp_driving_initial[0]) over
    all 5K points (1 when a hull is degenerate, where the original raises); the float64
    scale multiplies as a float32 scalar, as in the original."""
    scale = movement_scale(kp_source.numpy(), kp_driving_initial.numpy())
    return (kp_driving - kp_driving_initial) * torch.tensor(scale, dtype=torch.float32) \
        + kp_source


def normalize_kp(mode: str, kp_source, kp_driving, kp_driving_initial, avd_network):
    """kp_norm of the original's make_animation for a mode; the batch is kp_driving's."""
    if mode == "relative":
        return relative_kp(kp_source, kp_driving, kp_driving_initial)
    if mode == "standard":
        return kp_driving
    if mode == "avd":
        return avd_network(kp_source, kp_driving)
    raise ValueError(f"unknown animation mode {mode!r} (known: {', '.join(MODES)})")
