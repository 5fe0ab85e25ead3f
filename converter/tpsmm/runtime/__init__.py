"""TPSMM's backends (the family interface's `runtime`): the checkpoint backends, and the
model calls every TPSMM backend offers over its signatures (SignatureCalls).

Arrays are numpy float32 in the artifacts' layout (tpsmm/signatures.py): images NHWC,
keypoints {"value": (B, 5K, 2)}."""
from __future__ import annotations

import numpy as np

from ..signatures import RELATIVE_FLAG

CHECKPOINT_BACKENDS = {"torch": "fomm_convert.tpsmm.runtime.torch_backend:TorchBackend",
                       "tf": "fomm_convert.tpsmm.runtime.tf_backend:TFBackend"}

Arrays = dict[str, np.ndarray]


def _f32(array) -> np.ndarray:
    return np.asarray(array, np.float32)


class SignatureCalls:
    """TPSMM's model calls over `call(model, signature, inputs) -> outputs`, where model
    is kp_detector, process_kp_driving, avd_network or generator and signature
    serving_default, encode_source or generate: the names every artifact carries."""

    def call(self, model: str, signature: str, inputs: Arrays) -> Arrays:
        raise NotImplementedError

    def kp_detector(self, image) -> Arrays:
        """(B, H, W, 3) -> value (B, 5K, 2)."""
        return self.call("kp_detector", "serving_default", {"image": _f32(image)})

    def process_kp_driving(self, kp_driving: Arrays, kp_driving_initial: Arrays,
                           kp_source: Arrays, relative: bool) -> Arrays:
        """The generator's keypoints in mode relative (True) or standard (False)."""
        return self.call("process_kp_driving", "serving_default", {
            "kp_driving": _f32(kp_driving["value"]),
            "kp_driving_initial": _f32(kp_driving_initial["value"]),
            "kp_source": _f32(kp_source["value"]), RELATIVE_FLAG: np.float32(relative)})

    def avd_network(self, kp_source: Arrays, kp_driving: Arrays) -> Arrays:
        """The generator's keypoints in mode avd."""
        return self.call("avd_network", "serving_default",
                         {"kp_source": _f32(kp_source["value"]),
                          "kp_driving": _f32(kp_driving["value"])})

    def generator(self, source_image, kp_driving: Arrays, kp_source: Arrays) -> Arrays:
        """The frame and the diagnostics (tpsmm/signatures.py: GENERATOR_OUTPUTS)."""
        return self.call("generator", "serving_default", {
            "source_image": _f32(source_image), "kp_driving": _f32(kp_driving["value"]),
            "kp_source": _f32(kp_source["value"])})

    def encode_source(self, source_image) -> Arrays:
        """Every source-side input of generate: encode_source's outputs and the picture."""
        image = _f32(source_image)
        return {**self.call("generator", "encode_source", {"source_image": image}),
                "source_image": image}

    def generate(self, encoded: Arrays, kp_driving: Arrays, kp_source: Arrays) -> np.ndarray:
        """The frame (B, H, W, 3) from encode_source's output."""
        return self.call("generator", "generate", {
            **encoded, "kp_driving": _f32(kp_driving["value"]),
            "kp_source": _f32(kp_source["value"])})["prediction"]
