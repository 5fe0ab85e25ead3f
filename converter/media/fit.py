"""A picture or video fitted to the model's frame: stretched as upstream demo.py does
(crop "none"), or cropped at its centre to the frame's aspect ratio first ("center"); and
a warning when the fit is probably not what the user wanted."""
from __future__ import annotations

import numpy as np

from ..errors import warn

CROPS = ("none", "center")
# An aspect ratio changed by more than this (either way) is a visible stretch.
ASPECT_TOLERANCE = 1.10


def center_crop(image: np.ndarray, size) -> np.ndarray:
    """The largest centred part of `image` (H, W[, C]) with the aspect ratio of size=(H', W')
    (a view: nothing is copied)."""
    h, w = image.shape[:2]
    out_h, out_w = size
    if w * out_h > h * out_w:  # too wide: keep the middle columns
        keep = max(1, round(h * out_w / out_h))
        left = (w - keep) // 2
        return image[:, left:left + keep]
    keep = max(1, round(w * out_h / out_w))
    top = (h - keep) // 2
    return image[top:top + keep]


def check_fit(what, height: int, width: int, size, crop: str = "none"):
    """Warn when a (height x width) input is upscaled to the frame size=(H, W), or stretched
    (aspect ratio changed by more than 10%) without crop "center"."""
    out_h, out_w = size
    if height < out_h or width < out_w:
        warn(f"{what}: {width}x{height} is smaller than the model's {out_w}x{out_h} frame: it "
             f"is upscaled, so the result is blurred")
    ratio = (width / height) / (out_w / out_h)
    if crop == "none" and max(ratio, 1 / ratio) > ASPECT_TOLERANCE:
        warn(f"{what}: {width}x{height} is stretched to the model's {out_w}x{out_h} frame "
             f"(aspect ratio changed by {abs(ratio - 1):.0%}); --crop center keeps its shape")
