"""Keypoints drawn on frames, and the side-by-side visualisation of an animation."""
from __future__ import annotations

import numpy as np

from ..media import to_uint8
from .loop import Batch

# One colour per keypoint index, or per group of keypoints (Tableau 10), cycled when there
# are more.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]], np.uint8)


def draw_keypoints(image: np.ndarray, kp_value: np.ndarray, radius: int | None = None,
                   group: int = 1) -> np.ndarray:
    """uint8 copy of an (H, W, 3) image with each of the (K, 2) keypoints ((x, y) in
    [-1, 1]) drawn as a disc in the palette colour of its group of `group` consecutive
    keypoints (the family's KEYPOINT_GROUP: TPSMM's 5 control points of a spline share
    one) (the original Visualizer's pixel convention: size * (kp + 1) / 2)."""
    out = to_uint8(image) if image.dtype != np.uint8 else image.copy()
    h, w = out.shape[:2]
    if radius is None:
        radius = max(1, round(5 * min(h, w) / 256))
    yy, xx = np.ogrid[:h, :w]
    for index, (x, y) in enumerate(np.asarray(kp_value, np.float64)):
        cx, cy = w * (x + 1) / 2, h * (y + 1) / 2
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2
        colour = PALETTE[index // group % len(PALETTE)]
        out[disc] = colour
        row, col = int(np.floor(cy)), int(np.floor(cx))
        if 0 <= row < h and 0 <= col < w:
            out[row, col] = colour
    return out


def source_panel(source, group: int = 1) -> np.ndarray:
    """The source image with its keypoints (a loop.Source), the first panel of each frame."""
    return draw_keypoints(source.image, source.kp["value"][0], group=group)


def visualize_batch(panel: np.ndarray, batch: Batch, group: int = 1):
    """Side by side per frame: source with its keypoints | driving with its keypoints |
    result; (H, 3W, 3) uint8 each."""
    for i in range(len(batch.prediction)):
        yield np.concatenate([panel,
                              draw_keypoints(batch.driving[i], batch.kp_driving["value"][i],
                                             group=group),
                              to_uint8(batch.prediction[i])], axis=1)


def output_frames(batch: Batch, panel=None, group: int = 1):
    """uint8 frames to write: the results, or with a source panel the visualisation."""
    if panel is not None:
        yield from visualize_batch(panel, batch, group)
    else:
        for frame in batch.prediction:
            yield to_uint8(frame)
