"""What each artifact says about itself: role, inputs and outputs, conventions, licence.

The same dictionary goes into every format (a TFLite metadata entry, an ONNX
metadata_props entry), so a phone app and a server read the same facts.
"""
from __future__ import annotations

from ..families import family_of
from ..licence import licence
from ..signatures import KEYPOINTS, describe

ROLES = {
    "kp_detector": "Detects K keypoints (and their local jacobians) in one image.",
    "process_kp_driving": "Normalises driving keypoints for animation: relative motion, "
                          "relative jacobians, movement scale adapted by convex-hull area; "
                          "modes chosen by the float flags (0 or 1).",
    "generator": "Animates the source image by the motion from source to driving keypoints. "
                 "serving_default returns diagnostics too; encode_source once per source, "
                 "then generate per batch of frames, is the fast path.",
}


def model_metadata(spec, version: str, checkpoint: dict, synthetic: bool) -> dict:
    """{model: metadata dict} for the three models of a bundle; its signatures are the I/O
    contract's (fomm_convert.signatures), with shapes and meanings."""
    sigs = {model: {name: describe(sig) for name, sig in by_name.items()}
            for model, by_name in family_of(spec).signatures(spec).items()}
    return {model: {
        "name": f"fomm-{spec.name}-{model}",
        "model": model,
        "role": ROLES[model],
        "dataset": spec.name,
        "bundle_version": version,
        "converter": "fomm-convert",
        "converter_version": version.split("-", 1)[0],
        "checkpoint": checkpoint,
        "synthetic_weights": synthetic,
        "frame_shape": list(spec.frame_shape),
        "layout": "NHWC",
        "value_ranges": {"images": "RGB float32 in [0, 1]", "keypoints": KEYPOINTS},
        "grid_sample": {"mode": "bilinear", "padding": "zeros",
                        "align_corners": spec.align_corners},
        "batch": "dynamic; source-side inputs may have batch 1 or the driving batch",
        "signatures": sigs[model],
        "licence": licence(family_of(spec), synthetic),
    } for model in sigs}
