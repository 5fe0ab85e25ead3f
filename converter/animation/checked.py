"""The backends as the Python API hands them out (Bundle.backend): every array a caller
passes is checked as the command line checks its inputs (dtype, range, layout, shape)
before a runtime sees it, so a mistake is one FommError line, not a runtime's traceback
(onnxruntime's multi-line InvalidArgument, LiteRT's "resizing image ...")."""
from __future__ import annotations

import numpy as np

from ..errors import FommError, one_line
from ..media import check_unit_floats
from ..runtime.base import SpecBackend


class ArrayError(FommError):
    """An array passed to a backend that is not what the models take."""


class CheckedBackend(SpecBackend):
    """kp_detector, process_kp_driving, generator, encode_source and generate of `backend`
    (runtime.base.Backend) for a spec's models, their inputs checked first."""

    def __init__(self, backend, spec, name: str):
        super().__init__(spec)
        self._backend, self.name = backend, name

    def kp_detector(self, image):
        return self._run("kp_detector", self._image("kp_detector: image", image))

    def process_kp_driving(self, kp_driving, kp_driving_initial, kp_source,
                           use_relative_movement=True, use_relative_jacobian=True,
                           adapt_movement_scale=True):
        where = "process_kp_driving"
        return self._run("process_kp_driving", self._kp(f"{where}: kp_driving", kp_driving),
                         self._kp(f"{where}: kp_driving_initial", kp_driving_initial),
                         self._kp(f"{where}: kp_source", kp_source),
                         bool(use_relative_movement), bool(use_relative_jacobian),
                         bool(adapt_movement_scale))

    def generator(self, source_image, kp_driving, kp_source):
        return self._run("generator", self._image("generator: source_image", source_image),
                         self._kp("generator: kp_driving", kp_driving),
                         self._kp("generator: kp_source", kp_source))

    def encode_source(self, source_image):
        return self._run("encode_source",
                         self._image("encode_source: source_image", source_image))

    def generate(self, encoded, kp_driving, kp_source):
        want = {"source_features", "source_down"}
        if not isinstance(encoded, dict) or set(encoded) != want:
            raise ArrayError("generate: encoded: pass what encode_source returned (a dict "
                             "of source_features and source_down)")
        return self._run("generate", encoded, self._kp("generate: kp_driving", kp_driving),
                         self._kp("generate: kp_source", kp_source))

    def _run(self, method: str, *args):
        try:
            return getattr(self._backend, method)(*args)
        except FommError:
            raise
        except Exception as exc:  # a runtime's own error, past the checks: still one line
            raise ArrayError(f"{method} on {self.name}: {one_line(exc)}") from None

    def _image(self, where: str, image) -> np.ndarray:
        """(B, H, W, C) float32 in [0, 1] at the spec's frame shape."""
        image = np.asarray(image)
        h, w, c = self.frame_shape
        if image.dtype == np.uint8:
            raise ArrayError(f"{where}: uint8 pixels (0-255); the models take float32 in "
                             f"[0, 1]: divide by 255 (or use Bundle.read_image)")
        if not np.issubdtype(image.dtype, np.floating):
            raise ArrayError(f"{where}: dtype {image.dtype}; the models take float32 in [0, 1]")
        if image.ndim == 3 and image.shape == (h, w, c):
            raise ArrayError(f"{where}: shape {image.shape} has no batch axis; pass "
                             f"image[None], shape (1, {h}, {w}, {c})")
        if image.ndim == 4 and image.shape[1:] == (c, h, w) and image.shape[3] != c:
            raise ArrayError(f"{where}: shape {image.shape} is NCHW; the models take NHWC: "
                             f"image.transpose(0, 2, 3, 1)")
        if image.ndim != 4 or image.shape[1:] != (h, w, c) or image.shape[0] < 1:
            raise ArrayError(f"{where}: shape {_shape(image)}, expected (B, {h}, {w}, {c}) "
                             f"(Bundle.read_image resizes a picture to it)")
        check_unit_floats(where, image)
        return image.astype(np.float32, copy=False)

    def _kp(self, where: str, kp) -> dict:
        """value (B, K, 2) [and jacobian (B, K, 2, 2)], finite: what kp_detector returned."""
        names = ("value", "jacobian") if self.estimate_jacobian else ("value",)
        if not isinstance(kp, dict) or any(name not in kp for name in names):
            raise ArrayError(f"{where}: pass what kp_detector returned (a dict of "
                             f"{' and '.join(names)})")
        out = {}
        for name, tail in zip(names, ((self.num_kp, 2), (self.num_kp, 2, 2))):
            array = np.asarray(kp[name])
            if array.ndim != len(tail) + 1 or array.shape[1:] != tail or len(array) < 1:
                raise ArrayError(f"{where}: {name} has shape {_shape(array)}, expected "
                                 f"(B, {', '.join(map(str, tail))})")
            if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
                raise ArrayError(f"{where}: {name} must hold finite floats")
            out[name] = array.astype(np.float32, copy=False)
        return out


def _shape(array) -> str:
    return str(array.shape) if array.ndim <= 8 else f"of {array.ndim} dimensions"
