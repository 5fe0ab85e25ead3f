"""The backend contract: what every runtime provides, in numpy and NHWC."""
from __future__ import annotations

from typing import Protocol

import numpy as np

Arrays = dict[str, np.ndarray]

# Generator outputs and their layout (B = driving batch, K+1 motions incl. background).
GENERATOR_OUTPUTS = ("prediction", "mask", "occlusion_map", "deformation",
                     "sparse_deformed", "deformed")


class Backend(Protocol):
    num_kp: int
    estimate_jacobian: bool
    frame_shape: tuple  # (H, W, C)

    def kp_detector(self, image: np.ndarray) -> Arrays:
        """(B, H, W, C) -> value (B, K, 2) [, jacobian (B, K, 2, 2)]."""

    def process_kp_driving(self, kp_driving: Arrays, kp_driving_initial: Arrays,
                           kp_source: Arrays, use_relative_movement: bool,
                           use_relative_jacobian: bool, adapt_movement_scale: bool) -> Arrays:
        """Normalised driving keypoints, same keys as kp_driving."""

    def generator(self, source_image: np.ndarray, kp_driving: Arrays,
                  kp_source: Arrays) -> Arrays:
        """Full generator with diagnostics: prediction (B, H, W, C), mask (B, h, w, K+1),
        occlusion_map (B, h, w, 1) when estimated, deformation (B, h, w, 2),
        sparse_deformed (B, K+1, h, w, C), deformed (B, H, W, C)."""

    def encode_source(self, source_image: np.ndarray) -> Arrays:
        """Source-only work, done once per video: source_features, source_down."""

    def generate(self, encoded: Arrays, kp_driving: Arrays, kp_source: Arrays) -> np.ndarray:
        """Prediction (B, H, W, C) from encode_source's output."""
