"""The torch-free reader: a pickle.Unpickler that resolves only the globals a checkpoint
needs, to stand-ins that never import torch, and the legacy and zip storage layouts."""
from __future__ import annotations

import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .common import (_STORAGE_DTYPES, LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError,
                     _describe, _one_line, _refusal)
from .extract import _extract


class _StorageType:
    """Stand-in for a torch storage class (torch.FloatStorage, ...): just its element type."""

    __slots__ = ("dtype",)

    def __init__(self, code: str):
        self.dtype = np.dtype(code)


class _Storage:
    """A flat run of elements in the file, read only when a tensor we keep needs it."""

    __slots__ = ("dtype", "numel", "read", "_array")

    def __init__(self, dtype: np.dtype, numel: int, read=None):
        self.dtype = dtype
        self.numel = numel
        self.read = read  # () -> bytes; set later for legacy files
        self._array = None

    def array(self) -> np.ndarray:
        if self._array is None:
            if self.read is None:
                raise ValueError("a storage the object refers to is missing from the file")
            data = self.read()
            if len(data) != self.numel * self.dtype.itemsize:
                raise ValueError(f"a storage holds {len(data)} bytes, expected "
                                 f"{self.numel * self.dtype.itemsize}")
            self._array = np.frombuffer(data, self.dtype)
        return self._array


class _Tensor:
    """What _rebuild_tensor_v2 would build: a strided view of a storage."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise ValueError("a tensor is rebuilt from something that is not a storage")
        self.storage, self.offset = storage, _index(offset)
        self.size = tuple(_index(n) for n in size)
        self.stride = tuple(_index(s) for s in stride)
        if len(self.size) != len(self.stride):
            raise ValueError("a tensor's size and stride differ in length")

    def array(self) -> np.ndarray:
        flat = self.storage.array()
        native = flat.dtype.newbyteorder("=")
        if 0 in self.size:
            return np.zeros(self.size, native)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= flat.size:
            raise ValueError(f"a tensor of size {list(self.size)} reaches element {last} "
                             f"of a storage of {flat.size}")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], self.size, [s * flat.itemsize for s in self.stride],
            writeable=False)
        return np.array(view, dtype=native, order="C")


def _index(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"bad tensor geometry value {value!r}")
    return value


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    # requires_grad, backward hooks and metadata do not matter for inference weights.
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_):
    if not isinstance(data, _Tensor):
        raise ValueError("a parameter wraps something that is not a tensor")
    return data


def _fresh(function):
    return lambda: lambda *args: function(*args)


# The allowed globals, each as a factory: find_class hands out a new object per lookup,
# because the BUILD opcode can set attributes (a function's __defaults__, a stand-in's
# dtype) and must not be able to alter the reader for later files. Built-in types are
# immutable and can be shared.
_GLOBALS = {
    ("collections", "OrderedDict"): lambda: OrderedDict,
    ("torch", "Size"): lambda: tuple,
    ("torch._utils", "_rebuild_tensor_v2"): _fresh(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _fresh(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _fresh(_rebuild_parameter),
    ("torch.storage", "UntypedStorage"): lambda: _StorageType(_STORAGE_DTYPES["UntypedStorage"]),
    **{("torch", name): (lambda code=code: _StorageType(code))
       for name, code in _STORAGE_DTYPES.items() if name != "UntypedStorage"},
}


class _Unpickler(pickle.Unpickler):
    """Resolves only _GLOBALS; storages come from `storage(saved_id)`."""

    def __init__(self, file, path: Path, storage):
        super().__init__(file)
        self._path = path
        self._storage = storage

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[module, name]()
        if module == "torch" and re.fullmatch(r"\w+Storage", name):
            raise CheckpointError(f"{self._path}: unsupported tensor type torch.{name}")
        raise CheckpointError(_refusal(self._path, f"{module}.{name}"))

    def persistent_load(self, saved_id):
        if (self._storage is None or not isinstance(saved_id, tuple) or len(saved_id) < 5
                or _text(saved_id[0]) != "storage" or not isinstance(saved_id[1], _StorageType)):
            raise ValueError(f"unexpected persistent id {saved_id!r:.80}")
        return self._storage(saved_id)


def _text(value):
    return value.decode("ascii") if isinstance(value, bytes) else value


def _load_without_torch(path: Path, fmt) -> dict:
    try:
        if fmt == "legacy":
            with path.open("rb") as f:
                return _extract_lazy(path, _read_legacy(path, f))
        with zipfile.ZipFile(path) as zf:
            return _extract_lazy(path, _read_zip(path, zf, fmt[1]))
    except CheckpointError:
        raise
    except Exception as exc:  # anything a malformed file makes the unpickler or we raise
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None


def _extract_lazy(path, obj):
    return _extract(path, obj, lambda v: isinstance(v, _Tensor), lambda t: t.array())


def _read_legacy(path: Path, f):
    if _Unpickler(f, path, None).load() != LEGACY_MAGIC:
        raise ValueError("bad magic number")
    if _Unpickler(f, path, None).load() != LEGACY_PROTOCOL:
        raise ValueError("unknown legacy protocol version")
    sys_info = _Unpickler(f, path, None).load()
    if not isinstance(sys_info, dict):
        raise ValueError("bad sys_info header")
    order = "<" if sys_info.get("little_endian", True) else ">"
    roots: dict[str, _Storage] = {}

    def storage(saved_id):
        if len(saved_id) != 6:
            raise ValueError(f"unexpected legacy storage id {saved_id!r:.80}")
        _, kind, root_key, _location, numel, view = saved_id
        dtype = kind.dtype.newbyteorder(order)
        root = roots.setdefault(_text(root_key), _Storage(dtype, _index(numel)))
        if root.dtype != dtype:
            raise ValueError("one storage used with two element types")
        if view is not None:  # views into storages: old torch, never used by tensors
            raise ValueError("storage views are not supported")
        return root

    obj = _Unpickler(f, path, storage).load()
    keys = _Unpickler(f, path, None).load()
    if not isinstance(keys, list):
        raise ValueError("bad storage key list")
    offset, file_size = f.tell(), path.stat().st_size
    for key in keys:
        root = roots[_text(key)]
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise ValueError(f"file ends before storage {key}")
        (numel,) = struct.unpack(order + "q", header)
        if numel != root.numel:
            raise ValueError(f"storage {key} holds {numel} elements, expected {root.numel}")
        start, offset = offset + 8, offset + 8 + numel * root.dtype.itemsize
        root.read = lambda start=start, n=offset - start: _read_at(f, start, n)
    if offset > file_size:
        raise ValueError(f"file ends at byte {file_size}, its storages at byte {offset}")
    return obj


def _read_at(f, start, n) -> bytes:
    f.seek(start)
    return f.read(n)


def _read_zip(path: Path, zf: zipfile.ZipFile, prefix: str):
    names = set(zf.namelist())
    order = "<"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise ValueError(f"unknown byteorder {byteorder!r}")
        order = "<" if byteorder == "little" else ">"
    storages: dict[str, _Storage] = {}

    def storage(saved_id):
        if len(saved_id) != 5:
            raise ValueError(f"unexpected storage id {saved_id!r:.80}")
        _, kind, key, _location, numel = saved_id
        key, dtype = _text(key), kind.dtype.newbyteorder(order)
        record = f"{prefix}data/{key}"
        if record not in names:
            raise ValueError(f"missing record {record}")
        found = storages.setdefault(key, _Storage(dtype, _index(numel),
                                                  lambda: zf.read(record)))
        if found.dtype != dtype:
            raise ValueError("one storage used with two element types")
        return found

    with zf.open(prefix + "data.pkl") as f:
        return _Unpickler(f, path, storage).load()
