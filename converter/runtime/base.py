"""The backend contract: what every runtime provides, in numpy and NHWC. The model calls
here are FOMM's (Backend, SignatureBackend); another family's are its package's
(TPSMM's: tpsmm/runtime, SignatureCalls), over the same `call(model, signature, inputs)`.
A bundle backend is a SpecBackend providing `call` for its files; runtime.load_backend
gives it the calls of the spec's family."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..families import family_of
from ..formats import onnx_artifact_files
from ..signatures import FLAGS, keypoint_names

Arrays = dict[str, np.ndarray]


class Backend(Protocol):
    num_kp: int
    estimate_jacobian: bool
    frame_shape: tuple  # (H, W, C)

    def kp_detector(self, image: np.ndarray) -> Arrays:
        """(B, H, W, C) -> value (B, K, 2) [, jacobian (B, K, 2, 2)]."""

    def process_kp_driving(self, kp_driving: Arrays, kp_driving_initial: Arrays,
                           kp_source: Arrays, use_relative_movement: bool,
                           use_relative_jacobian: bool, adapt_movement_scale: bool) -> Arrays:
        """Normalised driving keypoints, same keys as kp_driving."""

    def generator(self, source_image: np.ndarray, kp_driving: Arrays,
                  kp_source: Arrays) -> Arrays:
        """Full generator with diagnostics: prediction (B, H, W, C), mask (B, h, w, K+1),
        occlusion_map (B, h, w, 1) when estimated, deformation (B, h, w, 2),
        sparse_deformed (B, K+1, h, w, C), deformed (B, H, W, C)."""

    def encode_source(self, source_image: np.ndarray) -> Arrays:
        """Source-only work, done once per video: source_features, source_down."""

    def generate(self, encoded: Arrays, kp_driving: Arrays, kp_source: Arrays) -> np.ndarray:
        """Prediction (B, H, W, C) from encode_source's output."""


def onnx_folder(bundle, spec) -> Path:
    """<bundle>/onnx, holding every file a runtime loads for the spec's model family
    (FileNotFoundError naming those missing): the onnxruntime and OpenVINO backends run the
    same files."""
    root = Path(bundle) / "onnx"
    missing = [name for name in onnx_artifact_files(family_of(spec))
               if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: missing {', '.join(missing)}")
    return root


def check_inputs(where: str, names, inputs: Arrays):
    """A ValueError naming the inputs a call to `where` lacks and those it does not take."""
    missing = [n for n in names if n not in inputs]
    unexpected = [n for n in inputs if n not in names]
    if missing or unexpected:
        raise ValueError(f"{where}: missing inputs {missing}, unexpected {unexpected}")


def kp_inputs(kp: Arrays, prefix: str, jacobian: bool) -> Arrays:
    """Keypoints as named signature inputs: {prefix: value[, prefix_jacobian: jacobian]}."""
    return {name: np.asarray(kp[key], np.float32)
            for name, key in zip(keypoint_names(prefix, jacobian), ("value", "jacobian"))}


class SpecBackend:
    """A backend of a spec's models: what Backend says of its models comes from the spec."""

    def __init__(self, spec):
        self.spec = spec
        self.num_kp = spec.num_kp
        self.estimate_jacobian = spec.estimate_jacobian
        self.frame_shape = tuple(spec.frame_shape)


class SignatureBackend(SpecBackend):
    """A backend over exported signatures with named inputs and outputs.

    Subclasses provide `call(model, signature, inputs) -> outputs`, where model is
    kp_detector, process_kp_driving or generator and signature serving_default,
    encode_source or generate: the names every artifact format carries.
    """

    def call(self, model: str, signature: str, inputs: Arrays) -> Arrays:
        raise NotImplementedError

    def _kps(self, kp_driving, kp_source):
        jac = self.estimate_jacobian
        return {**kp_inputs(kp_driving, "kp_driving", jac),
                **kp_inputs(kp_source, "kp_source", jac)}

    def kp_detector(self, image):
        return self.call("kp_detector", "serving_default", {"image": np.asarray(image, np.float32)})

    def process_kp_driving(self, kp_driving, kp_driving_initial, kp_source,
                           use_relative_movement, use_relative_jacobian, adapt_movement_scale):
        jac = self.estimate_jacobian
        inputs = {**kp_inputs(kp_driving, "kp_driving", jac),
                  **kp_inputs(kp_driving_initial, "kp_driving_initial", jac),
                  **kp_inputs(kp_source, "kp_source", jac),
                  **{name: np.float32(flag) for name, flag in zip(FLAGS, (
                      use_relative_movement, use_relative_jacobian, adapt_movement_scale))}}
        return self.call("process_kp_driving", "serving_default", inputs)

    def generator(self, source_image, kp_driving, kp_source):
        inputs = {"source_image": np.asarray(source_image, np.float32),
                  **self._kps(kp_driving, kp_source)}
        return self.call("generator", "serving_default", inputs)

    def encode_source(self, source_image):
        return self.call("generator", "encode_source",
                         {"source_image": np.asarray(source_image, np.float32)})

    def generate(self, encoded, kp_driving, kp_source):
        inputs = {**encoded, **self._kps(kp_driving, kp_source)}
        return self.call("generator", "generate", inputs)["prediction"]
