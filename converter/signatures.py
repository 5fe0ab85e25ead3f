"""The I/O contract of every artifact: models x signatures, their tensors' names, shapes,
batch roles, layouts and meanings.

The one home of these facts: the TF functions (SavedModel, TFLite), the ONNX wrappers,
the metadata every file carries and every runtime backend read them from here. Images are
NHWC float32 in [0, 1]; keypoints (B, K, 2) as (x, y) in [-1, 1]; jacobians (B, K, 2, 2).
Every tensor but the flags has a leading batch of one of two roles: DRIVING (the batch of
driving frames) or SOURCE (1, or the driving batch; the artifacts broadcast it). Source
inputs that one call makes (a keypoint set's value and jacobian, encode_source's outputs)
are one group and share their batch.
"""
from __future__ import annotations

from dataclasses import dataclass

from .architecture import downsampled_size, generator_channels

# Each model's signatures, models in export order.
SIGNATURE_NAMES = {"kp_detector": ("serving_default",),
                   "process_kp_driving": ("serving_default",),
                   "generator": ("serving_default", "encode_source", "generate")}
MODELS = tuple(SIGNATURE_NAMES)
DRIVING, SOURCE = "driving", "source"
FLAGS = ("use_relative_movement", "use_relative_jacobian", "adapt_movement_scale")

IMAGE = "RGB float32 in [0, 1], NHWC"
KEYPOINTS = "(x, y) in [-1, 1]; x along the width, y along the height"
JACOBIAN = "2x2 local affine of each keypoint, row-major"
FLAG = "float32 scalar, 0 or 1"
FLAG_MEANINGS = {
    "use_relative_movement": "move the source keypoints by the driving motion since the "
                             "initial frame (else use the driving keypoints as they are)",
    "use_relative_jacobian": "apply the relative jacobian too (with relative movement)",
    "adapt_movement_scale": "scale the motion by sqrt(source hull area / initial hull area)",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # per example, without the batch; () for a flag
    batch: str | None  # DRIVING, SOURCE, or None (a scalar flag)
    meaning: str
    dtype: str = "float32"
    group: str = ""  # tensors of one group share their batch ("": a group of its own)

    def full_shape(self, batch="B") -> list:
        """The shape with the batch axis (`batch`: a number, a symbol or None) in front."""
        return list(self.shape) if self.batch is None else [batch, *self.shape]


@dataclass(frozen=True)
class Signature:
    model: str
    name: str  # serving_default, encode_source or generate
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def tensor(self, name: str) -> TensorInfo:
        for t in (*self.inputs, *self.outputs):
            if t.name == name:
                return t
        raise KeyError(f"{self.model} {self.name}: no tensor {name!r}")


def keypoint_names(prefix: str, jacobian: bool) -> tuple[str, ...]:
    """The input names of one set of keypoints: prefix[, prefix_jacobian]."""
    return (prefix, f"{prefix}_jacobian") if jacobian else (prefix,)


def tensor_shapes(spec) -> dict:
    """Per-example shapes of every kind of tensor of a spec's models."""
    h, w, c = spec.frame_shape
    k = spec.num_kp
    dh, dw = downsampled_size((h, w), spec.dense_motion.get("scale_factor", 1))
    n_down = spec.generator["num_down_blocks"]
    _, _, features = generator_channels(spec.generator["block_expansion"],
                                        spec.generator["max_features"], n_down)
    return {"image": (h, w, c), "value": (k, 2), "jacobian": (k, 2, 2),
            "mask": (dh, dw, k + 1), "occlusion_map": (dh, dw, 1), "deformation": (dh, dw, 2),
            "sparse_deformed": (k + 1, dh, dw, c), "source_features": (h >> n_down,
                                                                      w >> n_down, features),
            "source_down": (dh, dw, c)}


def signatures(spec) -> dict[str, dict[str, Signature]]:
    """{model: {signature name: Signature}} of a spec, in export order."""
    s = tensor_shapes(spec)
    jac = spec.estimate_jacobian

    def kp(prefix, what, batch, value="value", jacobian="jacobian"):
        group = prefix or value
        rows = [TensorInfo(prefix if prefix else value, s["value"], batch,
                           f"{what} keypoints, {KEYPOINTS}", group=group)]
        if jac:
            rows.append(TensorInfo(f"{prefix}_jacobian" if prefix else jacobian, s["jacobian"],
                                   batch, f"{what} jacobians, {JACOBIAN}", group=group))
        return tuple(rows)

    def image(name, batch, meaning=IMAGE):
        return TensorInfo(name, s["image"], batch, meaning)

    kp_out = kp(None, "detected", DRIVING)
    flags = tuple(TensorInfo(name, (), None, f"{FLAG}: {FLAG_MEANINGS[name]}") for name in FLAGS)
    generator_kps = kp("kp_driving", "normalised driving", DRIVING) + kp("kp_source", "source",
                                                                         SOURCE)
    diagnostics = {
        "prediction": image("prediction", DRIVING, f"the animated frame, {IMAGE}"),
        "mask": TensorInfo("mask", s["mask"], DRIVING,
                           "softmax weights of the K+1 motions (0: background)"),
        "occlusion_map": TensorInfo("occlusion_map", s["occlusion_map"], DRIVING,
                                    "occlusion in [0, 1]"),
        "deformation": TensorInfo("deformation", s["deformation"], DRIVING,
                                  "sampling grid (x, y) in [-1, 1]"),
        "sparse_deformed": TensorInfo("sparse_deformed", s["sparse_deformed"], DRIVING,
                                      "the downsampled source warped by each motion"),
        "deformed": image("deformed", DRIVING, f"the source warped by the deformation, {IMAGE}"),
    }
    if not spec.generator["estimate_occlusion_map"]:
        del diagnostics["occlusion_map"]
    encoded = (TensorInfo("source_features", s["source_features"], SOURCE,
                          "the generator's encoding of the source", group="encode_source"),
               TensorInfo("source_down", s["source_down"], SOURCE,
                          "the source at the dense-motion resolution", group="encode_source"))
    table = {
        "kp_detector": {"serving_default": ((image("image", DRIVING),), kp_out)},
        "process_kp_driving": {"serving_default": (
            kp("kp_driving", "driving", DRIVING) + kp("kp_driving_initial", "initial driving",
                                                       SOURCE)
            + kp("kp_source", "source", SOURCE) + flags, kp_out)},
        "generator": {
            "serving_default": ((image("source_image", SOURCE),) + generator_kps,
                                tuple(diagnostics.values())),
            "encode_source": ((image("source_image", SOURCE),), encoded),
            "generate": (tuple(TensorInfo(t.name, t.shape, t.batch, "from encode_source",
                                          group=t.group) for t in encoded) + generator_kps,
                         (diagnostics["prediction"],))},
    }
    return {model: {name: Signature(model, name, inputs, outputs)
                    for name, (inputs, outputs) in sigs.items()}
            for model, sigs in table.items()}


def all_signatures(spec) -> list[Signature]:
    return [sig for sigs in signatures(spec).values() for sig in sigs.values()]


def describe(sig: Signature) -> dict:
    """A signature as the metadata records it: inputs and outputs with shapes (batch "B")."""
    def row(t):
        return {"name": t.name, "shape": t.full_shape(), "dtype": t.dtype, "meaning": t.meaning}
    return {"inputs": [row(t) for t in sig.inputs], "outputs": [row(t) for t in sig.outputs]}
