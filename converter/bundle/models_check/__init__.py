"""The gate every model file of a bundle passes before any runtime parses it.

A bundle's manifest can be rewritten by whoever hands it over (its version digest covers
the inputs it records, not the files), so a model file is a program from a stranger until
checked here: a SavedModel may hold TF's file ops, a .tflite may size its outputs from its
data, an .onnx file may name custom ops or external data anywhere. Each format's files are
read with our own readers (no runtime) and held to what our exporter writes: the op types,
the graph's structure and every shape. One module per exporter kind; each has
`check_format(bundle, spec, fmt)`, which raises ModelFileError, one line naming the file,
the op or node and the rule.

Called through bundle.open (OpenedBundle.gate) for every format whose runtime a command
opens (predict, animate, reconstruct, bench, the API), for every format by verify and for
the site's format by web; by build on its own staged files (so the allowlists follow the
exporter) and by inspect. Lite: no torch, no tensorflow.
"""
from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path

from ...formats import FORMATS
from ..manifest import BundleError, bundle_files, read_bounded


class ModelFileError(BundleError):
    """A model file that is not what our exporter writes."""


def check_format(bundle, spec, name: str) -> None:
    """Every file of format `name` in `bundle`, against what our exporter writes for `spec`."""
    fmt = FORMATS[name]
    module = importlib.import_module(f"{__name__}.{fmt.kind}")
    module.check_format(Path(bundle), spec, fmt)


def folder_files(bundle: Path, rel: str) -> dict[str, int]:
    """{path: size} of the files below `bundle`/`rel`, which must be a folder reached
    without a link (nor is anything inside one: manifest.bundle_files). The gate holds a
    format's folder to its own listing even when the bundle was opened unchecked (bench)."""
    path = Path(bundle)
    for part in Path(rel).parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise ModelFileError(f"{path}: missing") from None
        if stat.S_ISLNK(mode):
            raise ModelFileError(f"{path}: a symbolic link (a bundle holds none)")
        if not stat.S_ISDIR(mode):
            raise ModelFileError(f"{path}: not a folder")
    try:
        return bundle_files(path)
    except BundleError as exc:
        raise ModelFileError(str(exc)) from None


def read_model_file(path: Path, limit: int, what: str) -> bytes:
    """A model file's bytes, at most `limit` of them (manifest.read_bounded: a regular
    file, not a link)."""
    try:
        return read_bounded(path, limit, what)
    except BundleError as exc:
        raise ModelFileError(str(exc)) from None


def expect_files(folder: Path, found: dict, expected) -> None:
    """A format's folder holds exactly the files its exporter writes."""
    extra = sorted(set(found) - set(expected))
    if extra:
        raise ModelFileError(f"{folder / extra[0]}: not a file our exporter writes there")
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ModelFileError(f"{folder / missing[0]}: missing")
