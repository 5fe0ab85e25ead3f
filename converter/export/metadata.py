"""What each artifact says about itself: role, inputs and outputs, conventions, licence.

The same dictionary goes into every format (a TFLite metadata entry, an ONNX
metadata_props entry), so a phone app and a server read the same facts.
"""
from __future__ import annotations

from ..families import family_of
from ..licence import licence
from ..signatures import KEYPOINTS, describe


def model_metadata(spec, version: str, checkpoint: dict, synthetic: bool) -> dict:
    """{model: metadata dict} for the models of a bundle of the spec's family; its
    signatures are the family's I/O contract, with shapes and meanings, and each model's
    role is the family's (its signatures module's ROLES)."""
    family = family_of(spec)
    roles = family.facet("signatures").ROLES
    sigs = {model: {name: describe(sig) for name, sig in by_name.items()}
            for model, by_name in family.signatures(spec).items()}
    return {model: {
        "name": f"fomm-{spec.name}-{model}",
        "model": model,
        "role": roles[model],
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
        "licence": licence(family, synthetic),
    } for model in sigs}
