"""TPSMM's spec schema: the upstream model parameters (common_params with num_tps,
generator_params, dense_motion_params, avd_network_params), the animation mode the demo
defaults to, each checked, and the frame sizes the networks take.

An original TPSMM config is recognised by common_params.num_tps. Its grid_sample always
aligns corners (every call of the original passes align_corners=True), so the spec has
no choice of it.
"""
from __future__ import annotations

from .. import limits
from ..errors import shown
from ..spec import REQUIRED, SpecError, SpecParts, reject_unknown, section
from .architecture import (MODES, OCCLUSION_MAPS, check_frame, dense_motion_plan,
                           dense_motion_size, inpainting_plan, num_keypoints, upsamplings)

# The original modules' arguments, with their defaults (REQUIRED where they have none):
# KPDetector(num_tps), DenseMotionNetwork(block_expansion, num_blocks, max_features,
# num_tps, num_channels, scale_factor=0.25, bg=False, multi_mask=True, kp_variance=0.01),
# InpaintingNetwork(num_channels, block_expansion, max_features, num_down_blocks,
# multi_mask=True), AVDNetwork(num_tps, id_bottle_size=64, pose_bottle_size=64).
MODEL_FIELDS = {
    "common_params": {"num_tps": REQUIRED, "num_channels": REQUIRED, "bg": False,
                      "multi_mask": True},
    "generator_params": {"block_expansion": REQUIRED, "max_features": REQUIRED,
                         "num_down_blocks": REQUIRED},
    "dense_motion_params": {"block_expansion": REQUIRED, "max_features": REQUIRED,
                            "num_blocks": REQUIRED, "scale_factor": 0.25, "kp_variance": 0.01},
    "avd_network_params": {"id_bottle_size": 64, "pose_bottle_size": 64},
}
# An upstream config of the family has common_params.<MARKER>.
MARKER = "num_tps"
# The frame of an original config without dataset_params.frame_shape (the upstream ones
# have none): the demo's --img_shape default.
DEFAULT_FRAME_SHAPE = [256, 256, 3]
# The spec's own field (beside spec.SPEC_FIELDS): the animation mode, as the demo's --mode.
SETTINGS = ("mode",)
INT_RANGES = {"num_tps": (1, limits.MAX_NUM_TPS), "num_channels": (3, 3),
              "block_expansion": (1, limits.MAX_BLOCK_EXPANSION),
              "max_features": (1, limits.MAX_FEATURES), "num_blocks": (1, limits.MAX_NUM_BLOCKS),
              "num_down_blocks": (OCCLUSION_MAPS - 1, OCCLUSION_MAPS - 1),
              "id_bottle_size": (1, limits.MAX_BOTTLE_SIZE),
              "pose_bottle_size": (1, limits.MAX_BOTTLE_SIZE)}


def resolve(path, data: dict, frame_shape, original: bool) -> SpecParts:
    """Our spec's mode (an original config has none: the demo's default), then the model
    params."""
    mode = MODES[0] if original else data.get("mode", MODES[0])
    if mode not in MODES:
        raise SpecError(f"{path}: mode: {shown(mode)} is not one of {', '.join(MODES)}")
    params = _params(path, frame_shape, data["model_params"])
    return SpecParts(params, {"mode": mode}, num_keypoints(params["common_params"]["num_tps"]),
                     True)


def model_params(params: dict) -> dict:
    """The upstream layout (the sections as they are)."""
    return {name: dict(values) for name, values in params.items()}


def _params(path, frame_shape, model_params) -> dict:
    if not isinstance(model_params, dict):
        raise SpecError(f"{path}: model_params: expected a mapping")
    reject_unknown(path, "model_params", model_params, MODEL_FIELDS)
    params = {name: section(path, f"model_params.{name}", model_params.get(name), fields,
                            INT_RANGES) for name, fields in MODEL_FIELDS.items()}
    common, dense = params["common_params"], params["dense_motion_params"]
    if not common["multi_mask"]:
        raise SpecError(f"{path}: model_params.common_params.multi_mask: false is not "
                        f"supported (every published config has true)")
    if common["num_channels"] != frame_shape[2]:
        raise SpecError(f"{path}: model_params.common_params.num_channels: "
                        f"{common['num_channels']} does not match frame_shape {frame_shape}")
    where = "model_params.dense_motion_params"
    try:
        upsamplings(dense["scale_factor"])
    except ValueError:
        raise SpecError(f"{path}: {where}.scale_factor: {dense['scale_factor']} is not "
                        f"1/2**k for k in 0..{OCCLUSION_MAPS}") from None
    try:
        dense_motion_plan(dense["block_expansion"], dense["num_blocks"], dense["max_features"],
                          common["num_tps"], common["num_channels"], dense["scale_factor"])
    except ValueError as exc:
        raise SpecError(f"{path}: {where}.num_blocks: {exc}") from None
    try:
        check_frame(frame_shape[:2], dense["scale_factor"], dense["num_blocks"])
    except ValueError as exc:
        raise SpecError(f"{path}: frame_shape: {exc}") from None
    _check_activation(path, frame_shape, common, params["generator_params"], dense)
    return params


def _check_activation(path, frame_shape, common, gen, dense):
    """The largest activations of a frame: the inpainting network's widest full-size
    input (its last up block's), the dense motion's last hourglass output and its up
    blocks' inputs."""
    h, w, _ = frame_shape
    inpainting = inpainting_plan(gen["block_expansion"], gen["max_features"],
                                 gen["num_down_blocks"])
    plan = dense_motion_plan(dense["block_expansion"], dense["num_blocks"],
                             dense["max_features"], common["num_tps"], common["num_channels"],
                             dense["scale_factor"])
    dh, dw = dense_motion_size((h, w), dense["scale_factor"])
    largest = max(h * w * inpainting.up[-1][0], dh * dw * plan.outputs[-1],
                  *(dh * dw * 4 ** (i + 1) * c for i, (c, _) in enumerate(plan.up)))
    if largest > limits.MAX_ACTIVATION:
        raise SpecError(f"{path}: model_params: the frame {h}x{w} and these widths need an "
                        f"activation of {largest} values per frame, more than "
                        f"{limits.MAX_ACTIVATION}")
