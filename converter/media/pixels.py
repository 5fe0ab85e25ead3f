"""Pixel values and channels as skimage converts them: to float, to uint8, to RGB."""
from __future__ import annotations

import numpy as np

from .errors import MediaError


def as_float(image: np.ndarray) -> np.ndarray:
    """skimage's img_as_float for the dtypes images come in: unsigned integers scaled by
    their maximum, bool to 0/1, float32 kept, other floats as float64."""
    image = np.asarray(image)
    if image.dtype == np.bool_:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.unsignedinteger):
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    if image.dtype == np.float32 or image.dtype == np.float64:
        return image
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise MediaError(f"unsupported image dtype {image.dtype}")


def check_unit_floats(where, image: np.ndarray, error=MediaError):
    """A float image holds finite values in [0, 1], as the model's frames do (an `error`
    naming `where`)."""
    finite = np.isfinite(image)
    if not finite.all():
        raise error(f"{where}: holds {image.size - int(finite.sum())} values that are "
                    f"not finite (NaN or infinite)")
    if image.size and (image.min() < 0 or image.max() > 1):
        raise error(f"{where}: a float image must hold values in [0, 1], this one "
                    f"spans [{image.min():g}, {image.max():g}]")


def as_float32(image: np.ndarray) -> np.ndarray:
    """as_float(image) as float32. uint8 (every video frame) is divided in float32 in
    place: the same 256 values (tests/test_pipeline_animate.py checks each), without the
    float64 temporaries, whose fresh pages cost 10x the arithmetic."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        out = image.astype(np.float32)
        out /= np.float32(255)
        return out
    return as_float(image).astype(np.float32)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 as skimage's img_as_ubyte does (rint(x * 255)), clipped."""
    return np.clip(np.rint(np.asarray(frame, np.float64) * 255), 0, 255).astype(np.uint8)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (H, W, 3): grey replicated, grey+alpha and RGBA lose their alpha."""
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[-1]
    if channels in (1, 2):
        return np.repeat(image[..., :1], 3, axis=-1)
    if channels in (3, 4):
        return image[..., :3]
    raise MediaError(f"an image with {channels} channels is not grey, RGB or RGBA")
