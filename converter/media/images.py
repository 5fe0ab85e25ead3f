"""Still images in, as upstream demo.py reads its source: `imageio.imread` (Pillow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import one_line
from .errors import MediaError
from .pixels import as_float, to_rgb
from .resize import resize_like_demo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def load_image_array(path) -> np.ndarray:
    """The image as imageio.imread gives it (first frame if several); one-line errors."""
    import imageio.v3 as iio
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not an image")
    try:
        # Pillow only: PNG, JPEG and the other still formats, not a video's first frame.
        mode = iio.immeta(path, plugin="pillow").get("mode")
        if mode == "CMYK":
            return iio.imread(path, index=0, plugin="pillow", mode="RGB")
        return iio.imread(path, index=0, plugin="pillow")
    except Exception as exc:  # imageio raises many types for "not an image"
        raise MediaError(f"{path}: not a readable image ({one_line(exc)})") from None


def read_image(path, size=None) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from a grey, grey+alpha, RGB or RGBA PNG/JPEG.

    With size=(H, W) the image is resized as upstream demo.py does:
    `resize(imageio.imread(path), size)[..., :3]` (alpha dropped after resizing).
    """
    image = load_image_array(path)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise MediaError(f"{path}: not a still image (shape {image.shape})")
    if size is not None:
        image = resize_like_demo(image, size)
    return to_rgb(as_float(image)).astype(np.float32)
