"""The gate every model file of a bundle passes before any runtime parses it.

A bundle's manifest can be rewritten by whoever hands it over (its version digest covers
the inputs it records, not the files), so a model file is a program from a stranger until
checked here: a SavedModel may hold TF's file ops, a .tflite may size its outputs from its
data. Each format's files are read with our own parsers (no runtime) and held to what our
exporter writes: the op types, the graph's structure and every shape. One module per
exporter kind; each has `check_format(bundle, spec, fmt)`, which raises ModelFileError, one
line naming the file, the op or node and the rule.

Called by bundle.open for every format a bundle is opened with (verify, predict, animate,
bench, web, the API), by build on its own staged files (so the allowlists follow the
exporter) and by inspect. Lite: no torch, no tensorflow.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from ...formats import FORMATS
from ..manifest import BundleError


class ModelFileError(BundleError):
    """A model file that is not what our exporter writes."""


def check_format(bundle, spec, name: str) -> None:
    """Every file of format `name` in `bundle`, against what our exporter writes for `spec`."""
    fmt = FORMATS[name]
    module = importlib.import_module(f"{__name__}.{fmt.kind}")
    module.check_format(Path(bundle), spec, fmt)


def check_formats(bundle, spec, names) -> None:
    for name in names:
        check_format(bundle, spec, name)
