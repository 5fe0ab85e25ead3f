"""TPSMM's I/O contract: its models x signatures, as data (converter/signatures.py's types,
layouts and batch roles; images NHWC, keypoints (B, 5K, 2) as (x, y) in [-1, 1]).

- kp_detector: image -> value, the 5K keypoints (groups of 5 consecutive points form one
  thin-plate spline).
- process_kp_driving: the keypoints the generator is given in the original demo's
  `relative` mode (use_relative_movement 1: the source keypoints moved by the driving
  motion since kp_driving_initial, always scaled by sqrt(hull area of kp_source[0] /
  hull area of kp_driving_initial[0]) over all 5K points, as the original) or `standard`
  mode (0: kp_driving as it is). The third mode, `avd`, is the avd_network model.
- avd_network: (kp_source, kp_driving) -> value, the driving pose with the source's
  identity.
- generator: serving_default gives the frame and the diagnostics the oracle records (the
  dense motion's deformation, contribution maps and 4 occlusion maps, the source warped
  at full size, each TPS's affine part and radial weights); encode_source computes what
  depends on the source picture only (the dense motion's anti-aliased downsample and
  the inpainting encoder's four feature maps), once per video; generate takes those, the
  source picture (the final blend warps it) and the keypoints, and gives the frame.

Feature maps and occlusion maps are numbered coarsest first, so source_features_i has the
size of occlusion_map_i: (H/8, W/8) for i = 0 up to (H, W) for i = 3.
"""
from __future__ import annotations

from ..signatures import DRIVING, FLAG, IMAGE, KEYPOINTS, SOURCE, Signature, TensorInfo
from .architecture import (OCCLUSION_MAPS, dense_motion_size, inpainting_plan,
                           num_keypoints, occlusion_sizes)

SIGNATURE_NAMES = {"kp_detector": ("serving_default",),
                   "process_kp_driving": ("serving_default",),
                   "avd_network": ("serving_default",),
                   "generator": ("serving_default", "encode_source", "generate")}
MODELS = tuple(SIGNATURE_NAMES)
RELATIVE_FLAG = "use_relative_movement"
FEATURES = tuple(f"source_features_{i}" for i in range(OCCLUSION_MAPS))
OCCLUSION = tuple(f"occlusion_map_{i}" for i in range(OCCLUSION_MAPS))
# What each model does, in every artifact's metadata (export/metadata.py).
ROLES = {
    "kp_detector": "Detects the 5K keypoints (K thin-plate splines of 5 control points) in "
                   "one image.",
    "process_kp_driving": "The generator's keypoints in the relative mode (the source "
                          "keypoints moved by the driving motion, scaled by the hull areas) "
                          "or the standard mode (the driving keypoints), chosen by a 0/1 "
                          "float flag.",
    "avd_network": "The generator's keypoints in the avd mode: the driving pose with the "
                   "source's identity.",
    "generator": "Animates the source image by the thin-plate spline motion from source to "
                 "driving keypoints. serving_default returns diagnostics too; encode_source "
                 "once per source, then generate per batch of frames, is the fast path.",
}
# The generator's serving_default outputs, in order.
GENERATOR_OUTPUTS = ("prediction", "deformation", "contribution_maps", *OCCLUSION, "deformed",
                     "tps_theta", "tps_control_params")


def tensor_shapes(spec) -> dict:
    """Per-example shapes of every kind of tensor of a TPSMM spec's models."""
    h, w, c = spec.frame_shape
    num_tps = spec.common["num_tps"]
    dh, dw = dense_motion_size((h, w), spec.dense_motion["scale_factor"])
    plan = inpainting_plan(spec.generator["block_expansion"], spec.generator["max_features"],
                           spec.generator["num_down_blocks"])
    widths = [spec.generator["block_expansion"]] + [out for _, out in plan.down]
    sizes = occlusion_sizes((h, w))
    return {"image": (h, w, c), "value": (num_keypoints(num_tps), 2),
            "deformation": (dh, dw, 2), "contribution_maps": (dh, dw, num_tps + 1),
            "source_down": (dh, dw, c), "tps_theta": (num_tps, 2, 3),
            "tps_control_params": (num_tps, 5, 2),
            **{name: (*size, 1) for name, size in zip(OCCLUSION, sizes)},
            **{name: (*size, width) for name, size, width
               in zip(FEATURES, sizes, reversed(widths))}}


def signatures(spec) -> dict[str, dict[str, Signature]]:
    """{model: {signature name: Signature}} of a TPSMM spec, in export order."""
    s = tensor_shapes(spec)

    def kp(name, what, batch):
        return TensorInfo(name, s["value"], batch, f"{what} keypoints, {KEYPOINTS}")

    def image(name, batch, meaning=IMAGE):
        return TensorInfo(name, s["image"], batch, meaning)

    value = kp("value", "detected", DRIVING)
    kps = (kp("kp_driving", "normalised driving", DRIVING), kp("kp_source", "source", SOURCE))
    flag = TensorInfo(RELATIVE_FLAG, (), None,
                      f"{FLAG}: 1 relative mode (the source keypoints moved by the driving "
                      f"motion since the initial frame, scaled by sqrt(source hull area / "
                      f"initial hull area)), 0 standard mode (kp_driving as it is)")
    encoded = (TensorInfo("source_down", s["source_down"], SOURCE,
                          "the source at the dense-motion resolution", group="encode_source"),
               *(TensorInfo(name, s[name], SOURCE, f"the inpainting encoder's features of "
                            f"the source, at the size of occlusion_map_{i}",
                            group="encode_source") for i, name in enumerate(FEATURES)))
    diagnostics = (
        image("prediction", DRIVING, f"the animated frame, {IMAGE}"),
        TensorInfo("deformation", s["deformation"], DRIVING, "sampling grid (x, y) in [-1, 1]"),
        TensorInfo("contribution_maps", s["contribution_maps"], DRIVING,
                   "softmax weights of the K+1 transforms (0: the identity)"),
        *(TensorInfo(name, s[name], DRIVING, "occlusion in [0, 1]") for name in OCCLUSION),
        image("deformed", DRIVING, f"the source warped by the deformation, {IMAGE}"),
        TensorInfo("tps_theta", s["tps_theta"], DRIVING, "each TPS's affine part (2x3)"),
        TensorInfo("tps_control_params", s["tps_control_params"], DRIVING,
                   "each TPS's weights of its 5 radial terms"))
    source = image("source_image", SOURCE)
    table = {
        "kp_detector": {"serving_default": ((image("image", DRIVING),), (value,))},
        "process_kp_driving": {"serving_default": (
            (kp("kp_driving", "driving", DRIVING),
             kp("kp_driving_initial", "initial driving", SOURCE),
             kp("kp_source", "source", SOURCE), flag), (value,))},
        "avd_network": {"serving_default": ((kp("kp_source", "source (identity)", SOURCE),
                                             kp("kp_driving", "driving (pose)", DRIVING)),
                                            (value,))},
        "generator": {
            "serving_default": ((source, *kps), diagnostics),
            "encode_source": ((source,), encoded),
            "generate": ((source, *(TensorInfo(t.name, t.shape, t.batch, "from encode_source",
                                               group=t.group) for t in encoded), *kps),
                         (diagnostics[0],))},
    }
    return {model: {name: Signature(model, name, inputs, outputs)
                    for name, (inputs, outputs) in sigs.items()}
            for model, sigs in table.items()}
