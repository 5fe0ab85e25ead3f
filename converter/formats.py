"""The artifact formats of a bundle, one row each: every list of formats derives from here.

A row names the exporter kind that writes it, its precision (which also names the
tolerance profile of its parity gate, parity/tolerances.yaml), the files it adds to a
bundle, and whether `build` makes it by default. The runtime backend that runs a format's
files has the format's name (runtime.BACKENDS).
"""
from __future__ import annotations

from dataclasses import dataclass

from .signatures import MODELS


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # the exporter: savedmodel, tflite or onnx
    precision: str  # fp32, fp16 or int8: also its parity gate's tolerance profile
    default: bool
    static: bool = False  # TFLite with every batch dimension 1 (runtimes without resize)

    def files(self) -> tuple[str, ...]:
        """The bundle paths it adds (SavedModels: their directories)."""
        if self.kind == "savedmodel":
            return tuple(f"savedmodel/{m}" for m in MODELS)
        if self.kind == "tflite":
            return tuple(f"tflite/{tflite_filename(m, self.precision, self.static)}"
                         for m in MODELS)
        return tuple(f"onnx/{name}" for name in ONNX_ARTIFACT_FILES)


FORMATS = {f.name: f for f in (
    Format("savedmodel", "savedmodel", "fp32", True),
    Format("tflite", "tflite", "fp32", True),
    Format("tflite-fp16", "tflite", "fp16", True),
    Format("tflite-int8", "tflite", "int8", False),
    Format("onnx", "onnx", "fp32", True),
    Format("tflite-static", "tflite", "fp32", True, static=True),
    Format("tflite-static-fp16", "tflite", "fp16", True, static=True),
)}
FORMAT_NAMES = tuple(FORMATS)
# The order a bundle's formats are chosen in when no backend is named (predict --bundle):
# float32 TFLite is the fastest lite runtime measured here (make bench), float32 before
# reduced precision, and the SavedModel, which needs TensorFlow, last.
FASTEST_FIRST = ("tflite", "tflite-static", "onnx", "tflite-fp16", "tflite-static-fp16",
                 "tflite-int8", "savedmodel")
DEFAULT_FORMATS = tuple(name for name, f in FORMATS.items() if f.default)
# Runtimes nobody on the project wrote, run on a format's files as they are shipped:
# backend name -> the format whose files it loads.
RUNTIME_FORMATS = {"openvino": "onnx", "onnx-web": "onnx", "litert-js": "tflite-static",
                   "litert-js-webgpu": "tflite-static"}
# Every backend that runs a bundle's files -> their format (the others take a checkpoint).
FORMAT_OF_BACKEND = {**{name: name for name in FORMATS}, **RUNTIME_FORMATS}

# ------------------------------------------------------------------------------ TFLite
TFLITE_SUFFIXES = {"fp32": "", "fp16": ".fp16", "int8": ".int8"}
STATIC_SUFFIX = ".static"  # before the precision's: generator.static.fp16.tflite
# The metadata entry holding the exporter's JSON metadata (TFLite and ONNX alike).
METADATA_NAME = "fomm_convert.json"
# Models kept in float32 per variant. process_kp_driving has no weights to shrink, and the
# float16 pass rounds every float constant, including its hull grid scale 2**16 (-> 65504):
# normalised keypoints moved by 3e-2 on the tiny oracle. The detector stays float32 in
# both reduced variants: its temperature-0.1 softmax turns weight rounding into keypoint
# error, which every warped pixel inherits. With float16 weights its vox-256 keypoints
# were 7.7e-3 off the original, the absolute-mode frames 2.2e-2 and sparse_deformed
# 7.0e-2 (vox-512: 6.0e-2, 8.5e-2, and the build's chained frame 1.4e-2 failed its gate);
# any one hourglass block rounded alone moves them 8e-4 to 6e-3, so none can be spared.
# Float32 costs 28.5 MB on vox (the fp16 variant's detector file 28.6 -> 57.1 MB) and no
# time (XNNPACK computes in float32 either way: 36 ms per call at 1 thread, both). int8
# moved keypoints by 0.075 on vox-256; the detector is 2.6 of ~110 GFLOP per frame.
FLOAT32_ONLY = {"fp32": frozenset(),
                "fp16": frozenset({"process_kp_driving", "kp_detector"}),
                "int8": frozenset({"process_kp_driving", "kp_detector"})}


def tflite_filename(model: str, precision: str = "fp32", static: bool = False) -> str:
    if precision not in TFLITE_SUFFIXES:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(TFLITE_SUFFIXES)})")
    return f"{model}{STATIC_SUFFIX if static else ''}{TFLITE_SUFFIXES[precision]}.tflite"


def effective_precision(model: str, precision: str) -> str:
    """What a model's file in a TFLite variant really holds."""
    return "fp32" if model in FLOAT32_ONLY[precision] else precision


# ------------------------------------------------------------------------------ ONNX
# (model, signature) -> file name under DIR/onnx/: one graph per signature.
ONNX_FILES = {
    ("kp_detector", "serving_default"): "kp_detector.onnx",
    ("process_kp_driving", "serving_default"): "process_kp_driving.onnx",
    ("generator", "serving_default"): "generator.onnx",
    ("generator", "encode_source"): "generator.encode_source.onnx",
    ("generator", "generate"): "generator.generate.onnx",
}
# The generator files' external data (their weights, stored once), beside them.
ONNX_WEIGHTS_FILE = "generator.weights"
# Every file of DIR/onnx/ a runtime loads.
ONNX_ARTIFACT_FILES = (*ONNX_FILES.values(), ONNX_WEIGHTS_FILE)


def checked_formats(names) -> tuple[str, ...]:
    """Format names, checked (ValueError naming the unknown ones), in registry order."""
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    if not names:
        raise ValueError(f"no format given (known: {', '.join(FORMATS)})")
    return tuple(name for name in FORMATS if name in names)
