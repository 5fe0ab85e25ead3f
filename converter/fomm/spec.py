"""FOMM's spec schema: the upstream model parameters, the animation defaults
(`normalization: {relative, adapt_scale}`, an original config's animate_params) and the
grid_sample convention, each checked, and the frame sizes the networks take."""
from __future__ import annotations

from .. import limits
from ..architecture import downsample_step, downsampled_size
from ..spec import (REQUIRED, SpecError, SpecParts, boolean, mapping, reject_unknown,
                    section)

# Model parameters the original modules accept, with the original's defaults
# (REQUIRED where the original has none).
MODEL_FIELDS = {
    "common_params": {"num_kp": REQUIRED, "num_channels": REQUIRED, "estimate_jacobian": False},
    "kp_detector_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_blocks": REQUIRED,
        "temperature": REQUIRED, "scale_factor": 1, "single_jacobian_map": False, "pad": 0},
    "generator_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_down_blocks": REQUIRED,
        "num_bottleneck_blocks": REQUIRED, "estimate_occlusion_map": False,
        "dense_motion_params": REQUIRED},
    "dense_motion_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_blocks": REQUIRED,
        "scale_factor": 1, "kp_variance": 0.01},
}
# Sections of model_params that belong to training only.
TRAINING_ONLY = {"discriminator_params"}
# An upstream config of the family has common_params.<MARKER>.
MARKER = "num_kp"
# An original config without dataset_params.frame_shape is refused (no default).
DEFAULT_FRAME_SHAPE = None
# The spec's own fields (beside spec.SPEC_FIELDS), as to_dict records them.
SETTINGS = ("normalization", "grid_sample_align_corners")
NORMALIZATION_FIELDS = {"relative": True, "adapt_scale": True}
# Integer fields: (smallest, largest) allowed (limits.py says why).
INT_RANGES = {"num_kp": (1, limits.MAX_NUM_KP), "num_channels": (1, limits.MAX_CHANNELS),
              "block_expansion": (1, limits.MAX_BLOCK_EXPANSION),
              "max_features": (1, limits.MAX_FEATURES), "num_blocks": (1, limits.MAX_NUM_BLOCKS),
              "num_down_blocks": (0, limits.MAX_DOWN_BLOCKS),
              "num_bottleneck_blocks": (0, limits.MAX_BOTTLENECK_BLOCKS),
              "pad": (0, limits.MAX_KP_PAD)}


def resolve(path, data: dict, frame_shape, original: bool) -> SpecParts:
    """Our spec's normalization and grid_sample_align_corners, or an original config's
    animate_params (its grid_sample convention is torch >= 1.3's); then the model params."""
    if original:
        animate = mapping(path, "animate_params", data.get("animate_params"))
        params = mapping(path, "animate_params.normalization_params",
                         animate.get("normalization_params"))
        where = "animate_params.normalization_params"
        norm = {"relative": boolean(path, f"{where}.use_relative_movement",
                                    params.get("use_relative_movement", True)),
                "adapt_scale": boolean(path, f"{where}.adapt_movement_scale",
                                       params.get("adapt_movement_scale", False))}
        align_corners = False
    else:
        norm = mapping(path, "normalization", data.get("normalization", {}))
        reject_unknown(path, "normalization", norm, NORMALIZATION_FIELDS)
        norm = {k: boolean(path, f"normalization.{k}", norm.get(k, d))
                for k, d in NORMALIZATION_FIELDS.items()}
        align_corners = boolean(path, "grid_sample_align_corners",
                                data.get("grid_sample_align_corners", False))
    params = _params(path, frame_shape, data["model_params"])
    return SpecParts(params, {"normalization": norm, "grid_sample_align_corners": align_corners},
                     params["common_params"]["num_kp"], align_corners)


def model_params(params: dict) -> dict:
    """The upstream layout: dense_motion_params inside generator_params."""
    gen = dict(params["generator_params"], dense_motion_params=dict(params["dense_motion_params"]))
    return {"common_params": dict(params["common_params"]),
            "kp_detector_params": dict(params["kp_detector_params"]),
            "generator_params": gen}


def _params(path, frame_shape, model_params) -> dict:
    if not isinstance(model_params, dict):
        raise SpecError(f"{path}: model_params: expected a mapping")
    allowed = set(MODEL_FIELDS) - {"dense_motion_params"} | TRAINING_ONLY
    reject_unknown(path, "model_params", model_params, allowed)
    resolved = {}
    for name in ("common_params", "kp_detector_params", "generator_params"):
        resolved[name] = section(path, f"model_params.{name}", model_params.get(name),
                                 MODEL_FIELDS[name], INT_RANGES, nested=("dense_motion_params",))
    resolved["dense_motion_params"] = section(
        path, "model_params.generator_params.dense_motion_params",
        resolved["generator_params"].pop("dense_motion_params"),
        MODEL_FIELDS["dense_motion_params"], INT_RANGES)
    common = resolved["common_params"]
    if common["num_channels"] != frame_shape[2]:
        raise SpecError(f"{path}: model_params.common_params.num_channels: "
                        f"{common['num_channels']} does not match frame_shape {frame_shape}")
    _check_frame(path, frame_shape, common, resolved["kp_detector_params"],
                 resolved["generator_params"], resolved["dense_motion_params"])
    return resolved


def _check_frame(path, frame_shape, common, kp, gen, dense):
    """The frame sizes the original's networks need, and their largest activation: each
    hourglass concatenates every upsampled level with its skip, so the frame downsampled
    by its scale_factor must divide by 2**num_blocks; the generator outputs the frame's
    size only if it divides by 2**num_down_blocks; the 7x7 heatmap conv needs a pixel."""
    (h, w, c), gen_where = frame_shape, "model_params.generator_params"
    kp_size, dense_size = (downsampled_size(frame_shape, p["scale_factor"]) for p in (kp, dense))
    for where, params, size in (("model_params.kp_detector_params", kp, kp_size),
                                (f"{gen_where}.dense_motion_params", dense, dense_size)):
        scale, multiple = params["scale_factor"], 2 ** params["num_blocks"]
        if size[0] % multiple or size[1] % multiple:
            raise SpecError(
                f"{path}: frame_shape: {h}x{w} does not suit {where}: downsampled by "
                f"scale_factor {scale} it is {size[0]}x{size[1]}, which its num_blocks "
                f"{params['num_blocks']} needs to be a multiple of {multiple} (frames of a "
                f"multiple of {downsample_step(scale) * multiple} suit)")
    if min(kp_size) + 2 * kp["pad"] - 6 < 1:
        raise SpecError(f"{path}: frame_shape: {h}x{w} leaves the keypoint detector's 7x7 "
                        f"heatmap conv (pad {kp['pad']}) no pixel of its input")
    multiple = 2 ** gen["num_down_blocks"]
    if h % multiple or w % multiple:
        raise SpecError(f"{path}: frame_shape: {h}x{w} does not suit {gen_where}: its "
                        f"num_down_blocks {gen['num_down_blocks']} needs a multiple of "
                        f"{multiple} (the original would output a smaller frame)")
    largest = max(h * w * gen["block_expansion"],
                  dense_size[0] * dense_size[1]
                  * ((common["num_kp"] + 1) * (c + 1) + dense["block_expansion"]),
                  kp_size[0] * kp_size[1] * (c + kp["block_expansion"]))
    if largest > limits.MAX_ACTIVATION:
        raise SpecError(f"{path}: model_params: the frame {h}x{w} and these widths need an "
                        f"activation of {largest} values per frame, more than "
                        f"{limits.MAX_ACTIVATION}")
