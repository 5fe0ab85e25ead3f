"""`skimage.transform.resize(image, (H, W))` (scikit-image 0.26 defaults) in numpy: how
upstream demo.py resizes its source image and every driving frame."""
from __future__ import annotations

import functools

import numpy as np

from .errors import MediaError
from .pixels import as_float

# scipy.ndimage.gaussian_filter skips axes whose sigma is at most this.
_SIGMA_EPS = 1e-15
_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """scipy.ndimage's 'mirror' boundary (numpy.pad's 'reflect'): d c b | a b c d | c b a,
    repeated as often as needed."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * n - 2
    index = np.mod(index, period)
    return np.where(index >= n, period - index, index)


@functools.lru_cache(maxsize=16)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) linear map of one axis of skimage.transform.resize (order 1,
    mode 'reflect', anti-aliasing on when downsampling): the Gaussian of
    sigma = max(0, (n_in / n_out - 1) / 2) (truncated at 4 sigma), then scipy.ndimage.zoom's
    linear interpolation at grid_mode coordinates (o + 0.5) * n_in / n_out - 0.5, both with
    the mirror boundary."""
    factor = n_in / n_out
    sigma = max(0.0, (factor - 1) / 2)
    if sigma > _SIGMA_EPS:
        radius = int(_TRUNCATE * sigma + 0.5)
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 / sigma ** 2 * taps.astype(np.float64) ** 2)
        kernel /= kernel.sum()
    else:
        taps, kernel = np.zeros(1, np.int64), np.ones(1)
    coord = (np.arange(n_out) + 0.5) * factor - 0.5
    left = np.floor(coord)
    frac = coord - left
    left = left.astype(np.int64)
    # Interpolation rows: positions (n_out, 2) in the filtered signal and their weights.
    positions = _mirror(np.stack([left, left + 1], 1), n_in)
    weights = np.stack([1 - frac, frac], 1)
    # Each filtered sample is a kernel-weighted sum of mirrored input samples.
    columns = _mirror(positions[..., None] + taps, n_in)           # (n_out, 2, taps)
    values = weights[..., None] * kernel                            # (n_out, 2, taps)
    matrix = np.zeros((n_out, n_in))
    rows = np.broadcast_to(np.arange(n_out)[:, None, None], columns.shape)
    np.add.at(matrix, (rows.ravel(), columns.ravel()), values.ravel())
    matrix.flags.writeable = False  # cached and shared
    return matrix


@functools.lru_cache(maxsize=16)
def resize_taps(n_in: int, n_out: int):
    """resize_matrix in banded form: column indices and weights (n_out, T), zero-padded."""
    matrix = resize_matrix(n_in, n_out)
    nonzero = matrix != 0
    taps = max(int(nonzero.sum(1).max()), 1)
    # Stable sort puts each row's nonzero columns first, in increasing order.
    order = np.argsort(~nonzero, axis=1, kind="stable")[:, :taps]
    weights = np.take_along_axis(matrix, order, 1)
    return order, weights


def _apply(data: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int,
           convert=None) -> np.ndarray:
    """sum_t weights[o, t] * convert(data[index[o, t]]) along `axis` (an elementwise
    `convert` is applied to the rows taken, not to the whole input)."""
    take = (lambda i: np.take(data, i, axis=axis)) if convert is None \
        else (lambda i: convert(np.take(data, i, axis=axis)))
    shape = [1] * data.ndim
    shape[axis] = len(index)
    out = take(index[:, 0]) * weights[:, 0].reshape(shape)
    for t in range(1, index.shape[1]):
        out += take(index[:, t]) * weights[:, t].reshape(shape)
    return out


def _as_float64(image: np.ndarray) -> np.ndarray:
    return as_float(image).astype(np.float64, copy=False)


def resize_like_demo(image: np.ndarray, shape) -> np.ndarray:
    """`skimage.transform.resize(image, shape)` with its defaults, in numpy.

    image (H, W) or (H, W, C), any unsigned integer, bool or float dtype; shape (H', W').
    Returns float64 (float32 for float32 input, as skimage does), channels kept, clipped to
    the input's range. skimage's float conversion is elementwise, so it is applied to the
    rows the first pass takes: a large image is never held as float64 whole.
    """
    image = np.asarray(image)
    out_dtype = np.float32 if as_float(image[:0]).dtype == np.float32 else np.float64
    flat = image.ndim == 2
    data = image[..., None] if flat else image
    if data.ndim != 3:
        raise MediaError(f"expected an (H, W[, C]) image, got shape {image.shape}")
    h, w = data.shape[:2]
    out_h, out_w = (int(v) for v in shape)
    if out_h < 1 or out_w < 1:
        raise MediaError(f"cannot resize to {shape}")
    if (out_h, out_w) == (h, w):
        out = as_float(data).astype(out_dtype)  # zoom by exactly 1, no filtering: identity
    else:
        # Banded weighted sums (a few taps per output row), no BLAS: the matrices are
        # sparse, and BLAS threads fight the model runtime's for the cores.
        rows = _apply(data, *resize_taps(h, out_h), axis=0, convert=_as_float64)
        out = _apply(rows, *resize_taps(w, out_w), axis=1)
        low, high = _as_float64(np.array([data.min(), data.max()], data.dtype))
        out = np.clip(out, low, high).astype(out_dtype)
    return out[..., 0] if flat else out
