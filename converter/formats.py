"""The artifact formats of a bundle, one row each: every list of formats derives from here.

A row names the exporter kind that writes it, its precision (which also names the
tolerance profile of its parity gate, parity/tolerances.yaml), the files it adds to a
bundle of a model family (families.Family: its models and their signatures), and whether
`build` makes it by default. The runtime backend that runs a format's files has the
format's name (runtime.BACKENDS).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # the exporter: savedmodel, tflite, onnx or executorch
    precision: str  # fp32, fp16 or int8: also its parity gate's tolerance profile
    default: bool
    static: bool = False  # every batch dimension 1 (runtimes without resize; called per example)
    extra: str | None = None  # the package extra its exporter and runtime need, beyond convert
    # Packages beyond bundle.manifest.TOOLCHAIN whose versions decide its files: recorded in
    # the manifest (and the bundle's version) of a bundle that holds it, of no other.
    toolchain: tuple[str, ...] = ()

    def files(self, family) -> tuple[str, ...]:
        """The bundle paths it adds for a family's models (SavedModels: their
        directories)."""
        if self.kind == "savedmodel":
            return tuple(f"savedmodel/{m}" for m in family.models)
        if self.kind == "tflite":
            return tuple(f"tflite/{tflite_filename(m, self.precision, self.static)}"
                         for m in family.models)
        if self.kind == "executorch":
            return tuple(f"{EXECUTORCH_FOLDER}/{name}" for name in executorch_files(family).values())
        return tuple(f"onnx/{name}" for name in onnx_artifact_files(family))


FORMATS = {f.name: f for f in (
    Format("savedmodel", "savedmodel", "fp32", True),
    Format("tflite", "tflite", "fp32", True),
    Format("tflite-fp16", "tflite", "fp16", True),
    Format("tflite-int8", "tflite", "int8", False),
    Format("onnx", "onnx", "fp32", True),
    Format("tflite-static", "tflite", "fp32", True, static=True),
    Format("tflite-static-fp16", "tflite", "fp16", True, static=True),
    # Opt-in: its export takes minutes on the tiny config, and its toolchain is an extra.
    Format("executorch", "executorch", "fp32", False, static=True, extra="executorch",
           toolchain=("executorch",)),
)}
FORMAT_NAMES = tuple(FORMATS)
# The formats the convert extra alone builds and runs.
CONVERT_FORMATS = tuple(name for name, f in FORMATS.items() if f.extra is None)
# The order a bundle's formats are chosen in when no backend is named (predict --bundle):
# float32 TFLite is the fastest lite runtime measured here (make bench), float32 before
# reduced precision, and the SavedModel, which needs TensorFlow, last.
FASTEST_FIRST = ("tflite", "tflite-static", "onnx", "tflite-fp16", "tflite-static-fp16",
                 "tflite-int8", "executorch", "savedmodel")
DEFAULT_FORMATS = tuple(name for name, f in FORMATS.items() if f.default)
# Runtimes nobody on the project wrote, run on a format's files as they are shipped:
# backend name -> the format whose files it loads.
RUNTIME_FORMATS = {"openvino": "onnx", "onnx-web": "onnx", "onnx-webgpu": "onnx",
                   "litert-js": "tflite-static", "litert-js-webgpu": "tflite-static"}
# Every backend that runs a bundle's files -> their format (the others take a checkpoint).
FORMAT_OF_BACKEND = {**{name: name for name in FORMATS}, **RUNTIME_FORMATS}

# ------------------------------------------------------------------------------ TFLite
TFLITE_SUFFIXES = {"fp32": "", "fp16": ".fp16", "int8": ".int8"}
STATIC_SUFFIX = ".static"  # before the precision's: generator.static.fp16.tflite
# The metadata entry holding the exporter's JSON metadata (TFLite and ONNX alike).
METADATA_NAME = "fomm_convert.json"
def tflite_filename(model: str, precision: str = "fp32", static: bool = False) -> str:
    if precision not in TFLITE_SUFFIXES:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(TFLITE_SUFFIXES)})")
    return f"{model}{STATIC_SUFFIX if static else ''}{TFLITE_SUFFIXES[precision]}.tflite"


def effective_precision(model: str, precision: str, family) -> str:
    """What a model's file in a TFLite variant really holds: the family's float32_only
    models stay float32 in the reduced variants."""
    return "fp32" if precision != "fp32" and model in family.float32_only else precision


# ------------------------------------------------------------------------------ ONNX
# The generator files' external data (their weights, stored once), beside them.
ONNX_WEIGHTS_FILE = "generator.weights"


def onnx_file(model: str, signature: str) -> str:
    """A signature's file name under DIR/onnx/ (one graph per signature): <model>.onnx for
    serving_default, else <model>.<signature>.onnx."""
    return f"{model}.onnx" if signature == "serving_default" else f"{model}.{signature}.onnx"


def onnx_files(family) -> dict[tuple[str, str], str]:
    """(model, signature) -> file name under DIR/onnx/, for a family's models."""
    return {(model, sig): onnx_file(model, sig)
            for model, sigs in family.signature_names.items() for sig in sigs}


def onnx_artifact_files(family) -> tuple[str, ...]:
    """Every file of DIR/onnx/ a runtime loads."""
    return (*onnx_files(family).values(), ONNX_WEIGHTS_FILE)


# ------------------------------------------------------------------------------ ExecuTorch
EXECUTORCH_FOLDER = "executorch"
# The constant method of every .pte holding the exporter's JSON metadata (a String).
EXECUTORCH_METADATA_METHOD = "fomm_convert_json"


def executorch_files(family) -> dict[tuple[str, str], str]:
    """(model, signature) -> file name under DIR/executorch/: the ONNX file's stem, .pte."""
    return {key: name.removesuffix(".onnx") + ".pte" for key, name in onnx_files(family).items()}


def checked_formats(names) -> tuple[str, ...]:
    """Format names, checked (ValueError naming the unknown ones), in registry order."""
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    if not names:
        raise ValueError(f"no format given (known: {', '.join(FORMATS)})")
    return tuple(name for name in FORMATS if name in names)
