"""TPSMM's oracle contract (the family interface's `predict`): the arrays of
../shared/oracle-tpsmm, under its names and layouts (NCHW), from any TPSMM backend.

As the original demo's make_animation: every frame's keypoints detected (and the avd
mode's computed) at batch 1, the relative mode's initial frame is driving frame 0, and the
three modes' keypoints (relative, standard = the driving keypoints, avd) each drive the
generator, frame by frame unless a batch_size is asked for: on vox-256 the torch
reference's batches of 2 moved avd frames by 1.5e-4 from the original's (float32 sums in
another order, amplified by avd's large warps), per frame 0.
"""
from __future__ import annotations

import numpy as np

from ..hull import movement_scale
from ..keypoints import detect_frames
from .architecture import MODES
from .signatures import GENERATOR_OUTPUTS

# Backend output (NHWC family) -> oracle layout (NCHW family); the others as they are.
_IMAGES = {"prediction", "deformed", "contribution_maps",
           *(name for name in GENERATOR_OUTPUTS if name.startswith("occlusion_map"))}
# The oracle's name of each mode's generator keypoints.
KP_NORM = {"relative": "kp_norm_relative_fg_kp", "standard": "kp_driving_fg_kp",
           "avd": "kp_norm_avd_fg_kp"}


def to_oracle(name: str, value: np.ndarray) -> np.ndarray:
    """A generator output in the oracle's layout."""
    return np.ascontiguousarray(value.transpose(0, 3, 1, 2) if name in _IMAGES else value)


def predict(backend, source: np.ndarray, driving: np.ndarray, batch_size: int = 1,
            positions=None) -> dict:
    """Every oracle array for one source (1, H, W, 3) and N driving frames (N, H, W, 3);
    `positions` restricts the generator to those driving rows (all by default)."""
    kp_source = backend.kp_detector(source)
    kp_driving = detect_frames(backend, driving)  # per frame, as the original demo
    kp_initial = {k: v[:1] for k, v in kp_driving.items()}
    positions = np.arange(len(driving)) if positions is None else np.asarray(positions)
    avd = {"value": np.concatenate([backend.avd_network(kp_source, {"value": kp[None]})["value"]
                                    for kp in kp_driving["value"]])}  # per frame, too
    kp_norm = {"relative": backend.process_kp_driving(kp_driving, kp_initial, kp_source, True),
               "standard": kp_driving, "avd": avd}
    out = {"kp_source_fg_kp": kp_source["value"], "kp_driving_fg_kp": kp_driving["value"],
           "kp_norm_relative_fg_kp": kp_norm["relative"]["value"],
           "kp_norm_avd_fg_kp": avd["value"],
           "adapt_movement_scale": np.float64(movement_scale(kp_source["value"],
                                                             kp_initial["value"])),
           "gen_frame_positions": positions.astype(np.int64),
           "dm_source_down": np.ascontiguousarray(
               backend.encode_source(source)["source_down"].transpose(0, 3, 1, 2))}
    for mode in MODES:
        rows = [positions[start:start + batch_size]
                for start in range(0, len(positions), batch_size)]
        results = [backend.generator(source, {"value": kp_norm[mode]["value"][r]}, kp_source)
                   for r in rows]
        names = GENERATOR_OUTPUTS if mode == "relative" else \
            [n for n in GENERATOR_OUTPUTS if n != "deformed"]
        for name in names:
            out[f"{mode}_{name}"] = to_oracle(name, np.concatenate([r[name] for r in results]))
    return out
