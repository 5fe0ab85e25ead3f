"""FOMM's models and signatures (the family interface's `signatures`): converter/signatures.py,
and what each model does (ROLES, in every artifact's metadata)."""
from __future__ import annotations

from ..signatures import MODELS, SIGNATURE_NAMES, signatures

__all__ = ["MODELS", "ROLES", "SIGNATURE_NAMES", "signatures"]

ROLES = {
    "kp_detector": "Detects K keypoints (and their local jacobians) in one image.",
    "process_kp_driving": "Normalises driving keypoints for animation: relative motion, "
                          "relative jacobians, movement scale adapted by convex-hull area; "
                          "modes chosen by the float flags (0 or 1).",
    "generator": "Animates the source image by the motion from source to driving keypoints. "
                 "serving_default returns diagnostics too; encode_source once per source, "
                 "then generate per batch of frames, is the fast path.",
}
