"""What each artifact says about itself: role, inputs and outputs, conventions, licence.

The same dictionary goes into every format (a TFLite metadata entry, an ONNX
metadata_props entry), so a phone app and a server read the same facts.
"""
from __future__ import annotations

from ..licence import licence

ROLES = {
    "kp_detector": "Detects K keypoints (and their local jacobians) in one image.",
    "process_kp_driving": "Normalises driving keypoints for animation: relative motion, "
                          "relative jacobians, movement scale adapted by convex-hull area; "
                          "modes chosen by the float flags (0 or 1).",
    "generator": "Animates the source image by the motion from source to driving keypoints. "
                 "serving_default returns diagnostics too; encode_source once per source, "
                 "then generate per batch of frames, is the fast path.",
}
IMAGE = "RGB float32 in [0, 1], NHWC"
KEYPOINTS = "(x, y) in [-1, 1]; x along the width, y along the height"
JACOBIAN = "2x2 local affine of each keypoint, row-major"
FLAG = "float32 scalar, 0 or 1"


def _shapes(spec) -> dict:
    h, w, c = spec.frame_shape
    k = spec.num_kp
    step = int(round(1 / spec.dense_motion["scale_factor"]))
    dh, dw = -(-h // step), -(-w // step)
    n_down = spec.generator["num_down_blocks"]
    features = min(spec.generator["max_features"], spec.generator["block_expansion"] * 2 ** n_down)
    return {"image": ["B", h, w, c], "value": ["B", k, 2], "jacobian": ["B", k, 2, 2],
            "flag": [], "mask": ["B", dh, dw, k + 1], "occlusion_map": ["B", dh, dw, 1],
            "deformation": ["B", dh, dw, 2], "sparse_deformed": ["B", k + 1, dh, dw, c],
            "source_features": ["B", h >> n_down, w >> n_down, features],
            "source_down": ["B", dh, dw, c]}


def _io(name, shape, meaning):
    return {"name": name, "shape": shape, "dtype": "float32", "meaning": meaning}


def signatures(spec) -> dict:
    """{model: {signature: {"inputs": [...], "outputs": [...]}}} with shapes and meanings."""
    s = _shapes(spec)
    jac = spec.estimate_jacobian

    def kp(prefix, what):
        rows = [_io(prefix, s["value"], f"{what} keypoints, {KEYPOINTS}")]
        if jac:
            rows.append(_io(f"{prefix}_jacobian", s["jacobian"], f"{what} jacobians, {JACOBIAN}"))
        return rows

    kp_out = kp("value", "detected")
    kp_out[0]["name"] = "value"
    if jac:
        kp_out[1]["name"] = "jacobian"
    flags = [_io(name, s["flag"], f"{FLAG}: {meaning}") for name, meaning in (
        ("use_relative_movement", "move the source keypoints by the driving motion since "
                                  "the initial frame (else use the driving keypoints as they are)"),
        ("use_relative_jacobian", "apply the relative jacobian too (with relative movement)"),
        ("adapt_movement_scale", "scale the motion by sqrt(source hull area / initial hull "
                                 "area)"))]
    generator_kps = kp("kp_driving", "normalised driving") + kp("kp_source", "source")
    diagnostics = [
        _io("prediction", s["image"], f"the animated frame, {IMAGE}"),
        _io("mask", s["mask"], "softmax weights of the K+1 motions (0: background)"),
        _io("deformation", s["deformation"], "sampling grid (x, y) in [-1, 1]"),
        _io("sparse_deformed", s["sparse_deformed"], "the downsampled source warped by each motion"),
        _io("deformed", s["image"], f"the source warped by the deformation, {IMAGE}"),
    ]
    if spec.generator["estimate_occlusion_map"]:
        diagnostics.insert(2, _io("occlusion_map", s["occlusion_map"], "occlusion in [0, 1]"))
    return {
        "kp_detector": {"serving_default": {
            "inputs": [_io("image", s["image"], IMAGE)], "outputs": kp_out}},
        "process_kp_driving": {"serving_default": {
            "inputs": kp("kp_driving", "driving") + kp("kp_driving_initial", "initial driving")
            + kp("kp_source", "source") + flags,
            "outputs": kp_out}},
        "generator": {
            "serving_default": {"inputs": [_io("source_image", s["image"], IMAGE)] + generator_kps,
                                "outputs": diagnostics},
            "encode_source": {"inputs": [_io("source_image", s["image"], IMAGE)],
                              "outputs": [_io("source_features", s["source_features"],
                                              "the generator's encoding of the source"),
                                          _io("source_down", s["source_down"],
                                              "the source at the dense-motion resolution")]},
            "generate": {"inputs": [_io("source_features", s["source_features"], "from encode_source"),
                                    _io("source_down", s["source_down"], "from encode_source")]
                         + generator_kps,
                         "outputs": [diagnostics[0]]}},
    }


def model_metadata(spec, version: str, checkpoint: dict, synthetic: bool) -> dict:
    """{model: metadata dict} for the three models of a bundle."""
    sigs = signatures(spec)
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
        "licence": licence(synthetic),
    } for model in sigs}
