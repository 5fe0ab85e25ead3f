"""The oracle contract: run one backend on an oracle-style NPZ, write the oracle's arrays.

Inputs `source` (1, C, H, W) and `driving` (N, C, H, W), float32 in [0, 1], NCHW as the
original's tensors; outputs use the oracle's names, shapes and layouts, so any backend can
be compared with the original implementation by a few lines of numpy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FommError
from ..hull import movement_scale
from ..io import write_atomic
from ..keypoints import detect_frames

# Backend output layout (NHWC family) -> oracle layout (NCHW family).
TO_ORACLE = {"prediction": (0, 3, 1, 2), "deformed": (0, 3, 1, 2), "mask": (0, 3, 1, 2),
             "occlusion_map": (0, 3, 1, 2), "deformation": (0, 1, 2, 3),
             "sparse_deformed": (0, 1, 4, 2, 3)}
NORMALISATIONS = [(rel, adapt) for rel in (1, 0) for adapt in (1, 0)]


class InputsError(FommError):
    """An inputs NPZ that is not the oracle's contract."""


def read_inputs(path: Path, frame_shape) -> tuple[np.ndarray, np.ndarray]:
    """source (1, H, W, C) and driving (N, H, W, C), checked against the model's frame."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in ("source", "driving") if k in data.files}
    except (OSError, ValueError) as exc:
        raise InputsError(f"{path}: not a readable .npz ({exc})")
    h, w, c = frame_shape
    for name, lead in (("source", 1), ("driving", None)):
        if name not in arrays:
            raise InputsError(f"{path}: no '{name}' array")
        a = arrays[name]
        if a.ndim != 4 or a.shape[1:] != (c, h, w) or (lead and a.shape[0] != lead) \
                or a.shape[0] < 1:
            want = f"({lead or 'N'}, {c}, {h}, {w})"
            raise InputsError(f"{path}: '{name}' has shape {a.shape}, expected {want}")
    return tuple(np.ascontiguousarray(arrays[k].astype(np.float32).transpose(0, 2, 3, 1))
                 for k in ("source", "driving"))


def predict(backend, source: np.ndarray, driving: np.ndarray, batch_size: int = 4,
            positions=None) -> dict:
    """Every oracle array for one source (1, H, W, C) and N driving frames (N, H, W, C).

    `positions` restricts the generator to those driving rows (all by default).
    """
    out = {}
    kp_source = backend.kp_detector(source)
    kp_driving = detect_frames(backend, driving)  # per frame, as the original demo
    kp_initial = {k: v[:1] for k, v in kp_driving.items()}
    for key, value in kp_source.items():
        out[f"kp_source_{key}"] = value
        out[f"kp_driving_{key}"] = kp_driving[key]
    normalised = {}
    for rel, adapt in NORMALISATIONS:
        norm = backend.process_kp_driving(kp_driving, kp_initial, kp_source,
                                          use_relative_movement=bool(rel),
                                          use_relative_jacobian=bool(rel),
                                          adapt_movement_scale=bool(adapt))
        normalised[rel, adapt] = norm
        for key, value in norm.items():
            out[f"norm_rel{rel}_adapt{adapt}_{key}"] = value
    out["adapt_movement_scale"] = np.float64(movement_scale(kp_source["value"],
                                                            kp_initial["value"]))
    positions = np.arange(len(driving)) if positions is None else np.asarray(positions)
    out["gen_frame_positions"] = positions.astype(np.int64)
    for prefix, (rel, adapt), names in (("gen_", (1, 1), None), ("gen_abs_", (0, 0), ["prediction"])):
        chunks = []
        for start in range(0, len(positions), batch_size):
            rows = positions[start:start + batch_size]
            kp = {k: v[rows] for k, v in normalised[rel, adapt].items()}
            chunks.append(backend.generator(source, kp, kp_source))
        for key in names or chunks[0]:
            value = np.concatenate([c[key] for c in chunks])
            out[prefix + key] = np.ascontiguousarray(value.transpose(TO_ORACLE[key]))
    return out


def write_npz(path: Path, arrays: dict):
    """Write atomically: a failed run never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, writer=lambda f: np.savez(f, **arrays), suffix=".npz")




def predict_file(config, inputs: Path, out: Path, backend: str, *, checkpoint=None,
                 bundle=None, align_corners=None, batch_size: int = 4, positions=None):
    """predict() from an inputs NPZ into an output NPZ; returns (arrays, driving frames)."""
    from ..bundle.open import open_backend
    from ..spec import load_spec

    spec = load_spec(config)
    if align_corners is not None:
        spec = spec.with_align_corners(align_corners)
    source, driving = read_inputs(inputs, spec.frame_shape)
    if positions is not None and not all(0 <= i < len(driving) for i in positions):
        raise InputsError(f"--gen-frames: rows must be in 0..{len(driving) - 1}")
    runner = open_backend(backend, spec, bundle=bundle, checkpoint=checkpoint)
    arrays = predict(runner, source, driving, batch_size=batch_size, positions=positions)
    write_npz(out, arrays)
    return arrays, len(driving)
