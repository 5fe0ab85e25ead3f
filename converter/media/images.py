"""Still images in, as upstream demo.py reads its source: `imageio.imread` (Pillow).

The pixel count is read from the header and bounded (limits.MAX_PIXELS) before anything
is decoded; a float image must hold finite values in [0, 1], as the model's frames do.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import one_line
from ..limits import MAX_PIXELS
from .errors import MediaError
from .fit import center_crop, check_fit
from .pixels import as_float, check_unit_floats, to_rgb
from .resize import resize_like_demo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def image_header(path) -> tuple[int, int, str]:
    """(width, height, mode) from the header alone, refused above limits.MAX_PIXELS."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                (width, height), mode = image.size, image.mode
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise MediaError(f"{path}: more than {MAX_PIXELS} pixels, the most an image may "
                         f"have") from None
    except Exception as exc:  # Pillow raises many types for "not an image"
        raise MediaError(f"{path}: not a readable image ({one_line(exc)})") from None
    if width * height > MAX_PIXELS:
        raise MediaError(f"{path}: {width}x{height} is {width * height} pixels, more than "
                         f"the {MAX_PIXELS} an image may have")
    return width, height, mode


def load_image_array(path) -> np.ndarray:
    """The image as imageio.imread gives it (first frame if several); one-line errors."""
    import imageio.v3 as iio
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not an image")
    _, _, mode = image_header(path)
    try:
        # Pillow only: PNG, JPEG and the other still formats, not a video's first frame.
        # rotate: the EXIF orientation applied (a phone's portrait photo is stored sideways),
        # as every image viewer and the browser page (createImageBitmap) show it.
        # Pillow's warnings (a palette PNG's transparency, ...) are not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if mode == "CMYK":
                return iio.imread(path, index=0, plugin="pillow", mode="RGB", rotate=True)
            return iio.imread(path, index=0, plugin="pillow", rotate=True)
    except Exception as exc:  # imageio raises many types for "not an image"
        raise MediaError(f"{path}: not a readable image ({one_line(exc)})") from None


def read_image(path, size=None, crop: str = "none") -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from a grey, grey+alpha, RGB or RGBA PNG/JPEG.

    With size=(H, W) the image is resized as upstream demo.py does:
    `resize(imageio.imread(path), size)[..., :3]` (alpha dropped after resizing), after a
    centred crop to the frame's aspect ratio with crop "center"; an upscaled or stretched
    image is a warning (media.fit).
    """
    image = load_image_array(path)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise MediaError(f"{path}: not a still image (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] > 4:
        raise MediaError(f"{path}: {image.shape[2]} channels, not grey, RGB or RGBA")
    if np.issubdtype(image.dtype, np.floating):
        check_unit_floats(path, image)
    elif image.dtype != np.bool_ and not np.issubdtype(image.dtype, np.unsignedinteger):
        raise MediaError(f"{path}: unsupported pixel type {image.dtype}")
    if size is not None:
        check_fit(path, *image.shape[:2], size, crop)
        if crop == "center":
            image = center_crop(image, size)
        image = resize_like_demo(image, size)
    return to_rgb(as_float(image)).astype(np.float32)
