"""The ONNX files of a bundle (onnx/) against what our exporter writes, read with our own
protobuf walk (bundle/onnx_proto.py) before onnxruntime, OpenVINO or onnxruntime-web parse
them:

- the folder holds exactly the exporter's files;
- every node, function and operator set import is in a standard domain: a custom domain
  names ops a runtime resolves from its own registry of extensions (onnxruntime's contrib
  ops, a custom-op library), which our exporter never emits;
- every tensor with external data (initializers, constants, sparse tensors, functions'
  attribute defaults, subgraphs alike) takes it from generator.weights beside it, inside
  its size: a runtime would otherwise read any file it can name.
"""
from __future__ import annotations

import re
from pathlib import Path

from ...errors import shown
from ...families import family_of
from ...formats import ONNX_WEIGHTS_FILE, onnx_artifact_files, onnx_files
from ..artifacts import read_onnx
from ..onnx_proto import EXTERNAL
from . import ModelFileError, expect_files, folder_files

# ONNX's standard operator sets: ai.onnx (also written "") and ai.onnx.ml.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
# An offset or length as every runtime parses it alike (no sign, space, '_' or base prefix).
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")


def check_format(bundle: Path, spec, fmt) -> None:
    folder = bundle / "onnx"
    files = folder_files(bundle, "onnx")
    family = family_of(spec)
    expect_files(folder, files, onnx_artifact_files(family))
    for name in onnx_files(family).values():
        check_onnx_file(folder / name, files[ONNX_WEIGHTS_FILE])


def check_onnx_file(path: Path, weights_size: int | None, facts=None) -> None:
    """One .onnx file (`facts`: its read_onnx facts when read already); weights_size None when
    no generator.weights is beside it (inspect of a lone file: no range to hold to)."""
    if facts is None:
        facts = read_onnx(path, ModelFileError)
    for what, domain in facts.domains:
        if domain not in STANDARD_DOMAINS:
            raise ModelFileError(f"{path}: {what}: domain {shown(domain)} is not a standard "
                                 f"ONNX domain (ours use ai.onnx only)")
    for tensor in facts.tensors:
        _check_external(path, tensor, weights_size)


def _check_external(path: Path, tensor, weights_size: int | None):
    """External data only from the bundle's weights file beside it, inside its size."""
    where = f"{path}: tensor {shown(tensor.name)}"
    location = tensor.external_data.get("location")
    if tensor.data_location != EXTERNAL or location != ONNX_WEIGHTS_FILE:
        raise ModelFileError(f"{where}: its external data must be {ONNX_WEIGHTS_FILE} beside "
                             f"it, not {shown(location)}")
    offset, length = (tensor.external_data.get(key, default)
                      for key, default in (("offset", "0"), ("length", None)))
    if not (_DECIMAL.fullmatch(offset) and length and _DECIMAL.fullmatch(length)):
        raise ModelFileError(f"{where}: no valid external data offset and length (plain "
                             f"decimal numbers)")
    offset, length = int(offset), int(length)
    if weights_size is not None and offset + length > weights_size:
        raise ModelFileError(f"{where}: its external data ({offset}+{length} bytes) lies "
                             f"outside {ONNX_WEIGHTS_FILE} ({weights_size} bytes)")
