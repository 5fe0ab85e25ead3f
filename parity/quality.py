"""What a lower-precision variant costs in quality against float32: PSNR of the frames it
animates and the drift of its keypoints. `build` records it for the int8 TFLite variant on
the demo's drawn face; `bench --quality-media` on real media (media_quality)."""
from __future__ import annotations

import numpy as np

from ..keypoints import detect_frame


def psnr(a, b, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def variant_quality(mode, reference, candidate, source, driving) -> dict:
    """A lower-precision variant against float32, animating as the demo does in the
    family's animation `mode` (the spec's default: animation.jobs.animation_mode; FOMM's:
    relative motion, adapted scale), encoding once: PSNR (peak 1) of each predicted frame, and the
    keypoint drift (max |candidate - reference| of the detector's keypoint values on the
    source and every driving frame; the int8 variant keeps the detector float, so 0)."""
    outputs = []
    for backend in (reference, candidate):
        kp_source = backend.kp_detector(source)
        kps = [detect_frame(backend, frame) for frame in driving]
        encoded = backend.encode_source(source)
        predictions = []
        for kp in kps:
            norm = mode.normalise(backend, kp, kps[0], kp_source)
            predictions.append(backend.generate(encoded, norm, kp_source)[0])
        values = np.concatenate([kp_source["value"]] + [kp["value"] for kp in kps])
        outputs.append((np.stack(predictions), values))
    fp32, low = outputs
    scores = [psnr(a, b) for a, b in zip(fp32[0], low[0])]
    return {"reference": "tflite (float32)", "candidate": "tflite-int8", "frames": len(scores),
            "psnr_db_mean": float(np.mean(scores)), "psnr_db_min": float(np.min(scores)),
            "psnr_db_median": float(np.median(scores)),
            "max_abs": float(np.abs(fp32[0] - low[0]).max()),
            "mean_abs": float(np.abs(fp32[0] - low[0]).mean()),
            "keypoint_drift_max": float(np.abs(fp32[1] - low[1]).max()),
            "keypoint_drift_mean": float(np.abs(fp32[1] - low[1]).mean())}


def media_quality(spec, mode, reference, candidate, source_path, driving_path,
                  frames: int = 32) -> dict:
    """variant_quality animating a real source image with the first `frames` frames of a
    real driving video, both at the spec's frame size."""
    from ..media import open_video, read_image
    size = tuple(spec.frame_shape[:2])
    source = read_image(source_path, size)[None]
    driving = []
    for frame in open_video(driving_path).frames(size):
        driving.append(frame)
        if len(driving) == frames:
            break
    return {"source": str(source_path), "driving": str(driving_path),
            **variant_quality(mode, reference, candidate, source, np.stack(driving))}
