"""What both checkpoint readers share: the error, the format's constants and messages."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import FommError, shown

SYNTHETIC_KEY = "synthetic"  # fomm_convert.synth's marker entry
SYNTHETIC_TAG = "fomm-convert synth"

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_HEAD_BYTES = 64  # enough for the pickled magic number with any pickle protocol

# Element types of torch's typed storages (and the untyped byte storage).
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1", "UntypedStorage": "u1",
}
_SUPPORTED_DTYPES = {np.dtype(code) for code in _STORAGE_DTYPES.values()}
# Storages of dtypes numpy (or we) cannot hold: their torch dtype and item size, so that
# one in an entry we do not use passes and one in a network is named.
_UNSUPPORTED_STORAGES = {
    "BFloat16Storage": ("bfloat16", 2), "ComplexHalfStorage": ("complex32", 4),
    "ComplexFloatStorage": ("complex64", 8), "ComplexDoubleStorage": ("complex128", 16),
    "QInt8Storage": ("qint8", 1), "QUInt8Storage": ("quint8", 1), "QInt32Storage": ("qint32", 4),
    "QUInt4x2Storage": ("quint4x2", 1), "QUInt2x4Storage": ("quint2x4", 1),
}


class CheckpointError(FommError, ValueError):
    """The file is not a usable checkpoint of its model family; the one-line message names
    the file and why."""


def _listed(names) -> str:
    """'a', 'a' and 'b', 'a', 'b' and 'c': names quoted, for messages."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _describe(fmt) -> str:
    return "legacy torch file" if fmt == "legacy" else "torch zip archive"


def _refusal(path: Path, name: str) -> str:
    name = name if re.fullmatch(r"[\w.]{1,200}", name) else shown(name)
    return (f"{path}: refused to load: the file references the global {name}, "
            "which a checkpoint does not need (it could run code)")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
