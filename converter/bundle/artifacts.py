"""Each artifact of a bundle says what it is (its embedded metadata, export/metadata.py):
that must be the model of its file name, of this bundle's version, dataset and frame
shape. (What a model file may hold is models_check's.)

A swapped, foreign or unreadable artifact is one BundleError line naming the file.
Lite: the TFLite flatbuffer and the ONNX protobuf are read without a framework.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from ..errors import one_line, shown
from ..families import family_of
from ..formats import (EXECUTORCH_FOLDER, FORMATS, METADATA_NAME, executorch_files, onnx_files,
                       tflite_filename)
from ..limits import ARTIFACT_METADATA_MAX_BYTES
from .manifest import BundleError
from .onnx_proto import onnx_facts

# What reading untrusted bytes with the flatbuffers and protobuf readers may raise.
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, OverflowError, struct.error,
               RecursionError, OSError)


def check_artifacts(bundle, manifest: dict, spec) -> None:
    """Every TFLite, ONNX and ExecuTorch file of the bundle's formats against its manifest (whose files
    have been checked)."""
    bundle = Path(bundle)
    expected = {"dataset": spec.name, "bundle_version": manifest["version"],
                "frame_shape": list(spec.frame_shape)}
    family = family_of(spec)
    for name in manifest["formats"]:
        fmt = FORMATS[name]
        if fmt.kind == "tflite":
            for model in family.models:
                path = bundle / "tflite" / tflite_filename(model, fmt.precision, fmt.static)
                _check_metadata(path, _tflite_metadata(path), {**expected, "model": model})
        elif fmt.kind == "onnx":
            for (model, _), file_name in onnx_files(family).items():
                path = bundle / "onnx" / file_name
                facts = read_onnx(path)
                _check_metadata(path, metadata_json(path, facts.metadata.get(METADATA_NAME)),
                                {**expected, "model": model})
        elif fmt.kind == "executorch":
            from .models_check.executorch import metadata_text, read_facts
            for (model, _), file_name in executorch_files(family).items():
                path = bundle / EXECUTORCH_FOLDER / file_name
                _check_metadata(path, metadata_json(path, metadata_text(
                    read_facts(path, BundleError))), {**expected, "model": model})


def read_onnx(path: Path, error=BundleError):
    """onnx_facts of an .onnx file, or an `error`: "PATH: not a readable ONNX model (why)"."""
    try:
        return onnx_facts(path)
    except _UNREADABLE as exc:
        raise error(f"{path}: not a readable ONNX model ({one_line(exc)})") from None


def _tflite_metadata(path: Path) -> dict:
    from ..export.tflite_file import read_tflite_metadata
    try:
        data = read_tflite_metadata(path)
    except KeyError:
        raise BundleError(f"{path}: no {METADATA_NAME} metadata (not an artifact of ours)") \
            from None
    except _UNREADABLE as exc:
        raise BundleError(f"{path}: not a readable TFLite model ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: its {METADATA_NAME} metadata is not a JSON object")
    return data


def metadata_json(path: Path, raw) -> dict:
    """Our metadata entry of a model file (`raw`: its text, None when there is none): a JSON
    object of at most ARTIFACT_METADATA_MAX_BYTES, or a one-line BundleError."""
    if raw is None:
        raise BundleError(f"{path}: no {METADATA_NAME} metadata (not an artifact of ours)")
    if len(raw) > ARTIFACT_METADATA_MAX_BYTES:
        raise BundleError(f"{path}: its {METADATA_NAME} metadata is larger than ours can be "
                          f"({ARTIFACT_METADATA_MAX_BYTES} bytes)")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: its {METADATA_NAME} metadata is not JSON "
                          f"({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: its {METADATA_NAME} metadata is not a JSON object")
    return data


def _check_metadata(path: Path, metadata: dict, expected: dict):
    for field, value in expected.items():
        if metadata.get(field) != value:
            raise BundleError(f"{path}: its metadata gives {field} "
                              f"{shown(metadata.get(field))}, the bundle's is {shown(value)} "
                              f"(a file from another bundle or model)")
