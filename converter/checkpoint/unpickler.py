"""The torch-free reader: a pickle.Unpickler that resolves only the globals a checkpoint
needs, to stand-ins that never import torch, and the legacy and zip storage layouts.

It is also the torch reader's first pass: it reads the object with every storage
checked against the file and no tensor data read, so that the bounds hold before
torch.load allocates anything."""
from __future__ import annotations

import contextlib
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import shown
from ..limits import CHECKPOINT_MAX_STORAGE_BYTES
from .bounds import _BoundedReader, _check_depth, _check_networks
from .common import (_STORAGE_DTYPES, _UNSUPPORTED_STORAGES, LEGACY_MAGIC, LEGACY_PROTOCOL,
                     CheckpointError, _describe, _one_line, _refusal)
from .extract import _arrays, _entries


class _Frozen:
    """Stand-ins whose state our checks rely on: the BUILD opcode may not set it."""

    __slots__ = ()

    def __setstate__(self, _state):
        raise ValueError(f"the file sets the state of a {type(self).__name__.strip('_')}")


class _StorageType:
    """Stand-in for a torch storage class (torch.FloatStorage, ...): its element type
    (BUILD may set these fields: a new one per lookup, and _Storage reads only `kind`)."""

    __slots__ = ("kind", "dtype", "itemsize", "torch_name")

    def __init__(self, kind: str):
        self.kind = kind
        if kind in _STORAGE_DTYPES:
            self.dtype = np.dtype(_STORAGE_DTYPES[kind])
            self.itemsize, self.torch_name = self.dtype.itemsize, None
        else:  # a dtype we do not convert: only its size, so that unused entries pass
            self.dtype = None
            self.torch_name, self.itemsize = _UNSUPPORTED_STORAGES[kind]


class _Storage(_Frozen):
    """A flat run of elements in the file, read only when a tensor we keep needs it."""

    __slots__ = ("kind", "dtype", "itemsize", "torch_name", "numel", "read", "_array")

    def __init__(self, path, key: str, kind: _StorageType, order: str, numel):
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise ValueError(f"storage {shown(key)} declares {shown(numel)} elements")
        fresh = _StorageType(kind.kind)  # not the fields a BUILD could have set
        self.kind, self.itemsize, self.torch_name = fresh.kind, fresh.itemsize, fresh.torch_name
        self.dtype = None if fresh.dtype is None else fresh.dtype.newbyteorder(order)
        self.numel = numel
        if self.nbytes > CHECKPOINT_MAX_STORAGE_BYTES:
            raise CheckpointError(f"{path}: storage {shown(key)} declares {self.nbytes} "
                                  f"bytes, at most {CHECKPOINT_MAX_STORAGE_BYTES}")
        self.read = None  # () -> bytes, once the file is known to hold them
        self._array = None

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    def array(self) -> np.ndarray:
        if self._array is None:
            data = self.read()
            if len(data) != self.nbytes:
                raise ValueError(f"a storage holds {len(data)} bytes, expected {self.nbytes}")
            self._array = np.frombuffer(data, self.dtype)
        return self._array


class _Tensor(_Frozen):
    """What _rebuild_tensor_v2 would build: a strided view of a storage. Its geometry is
    checked (bounds._check_tensor) before array() is called."""

    __slots__ = ("storage", "offset", "size", "stride")
    unsupported = None

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise ValueError("a tensor is rebuilt from something that is not a storage")
        self.storage, self.offset = storage, offset
        self.size = tuple(size) if isinstance(size, (tuple, list)) else size
        self.stride = tuple(stride) if isinstance(stride, (tuple, list)) else stride

    def array(self) -> np.ndarray:
        native = self.storage.dtype.newbyteorder("=")
        if 0 in self.size:
            return np.zeros(self.size, native)
        flat = self.storage.array()
        # Checked before (bounds._check_tensor); as_strided must never read outside.
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if min((self.offset, *self.stride, *self.size)) < 0 or last >= flat.size:
            raise ValueError("a tensor reaches outside its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], self.size, [s * flat.itemsize for s in self.stride],
            writeable=False)
        return np.array(view, dtype=native, order="C")


class _Unsupported(_Frozen):
    """A tensor we do not convert (sparse, meta, quantized, ...): why, for the message."""

    __slots__ = ("unsupported",)

    def __init__(self, why: str):
        self.unsupported = why


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    # requires_grad, backward hooks and metadata do not matter for inference weights.
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_):
    if not isinstance(data, (_Tensor, _Unsupported)):
        raise ValueError("a parameter wraps something that is not a tensor")
    return data


def _rebuild_from_type(func, new_type, args, _state):
    # A Tensor or Parameter with Python attributes: the tensor is func(*args).
    if not isinstance(new_type, _TensorClass):
        raise ValueError("a tensor of an unknown type")
    return _rebuild_parameter(func(*args))


def _rebuild_v3(storage, offset, size, stride, requires_grad=None, hooks=None, dtype=None,
                *_):
    name = dtype.name if isinstance(dtype, _Named) else "?"
    return _Unsupported(f"unsupported tensor dtype torch.{name}")


def _unsupported(why: str):
    return lambda *_: _Unsupported(why)


class _TensorClass:
    """Stand-in for torch.Tensor and torch.nn.Parameter as _rebuild_from_type_v2's type."""

    __slots__ = ()


class _Named(_Frozen):
    """Stand-in for a torch dtype, layout, qscheme or device: its name only."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _fresh(function):
    return lambda: lambda *args: function(*args)


_SPARSE = "a sparse tensor: only dense tensors are supported"
_DTYPE_NAME = re.compile(r"(u?int\d+|float\d*(_\w+)?|bfloat16|complex\d*|c?half|c?double|"
                         r"cfloat|long|short|int|bool|q(u?int\d+(x\d+)?)|bits\w+|"
                         r"per_(tensor|channel)_\w+)")
# The allowed globals, each as a factory: find_class hands out a new object per lookup,
# because the BUILD opcode can set attributes (a function's __defaults__, a stand-in's
# dtype) and must not be able to alter the reader for later files. Built-in types are
# immutable and can be shared.
_GLOBALS = {
    ("collections", "OrderedDict"): lambda: OrderedDict,
    ("torch", "Size"): lambda: tuple,
    ("torch._utils", "_rebuild_tensor"): _fresh(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _fresh(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v3"): _fresh(_rebuild_v3),
    ("torch._utils", "_rebuild_parameter"): _fresh(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _fresh(_rebuild_parameter),
    ("torch._tensor", "_rebuild_from_type_v2"): _fresh(_rebuild_from_type),
    ("torch", "Tensor"): _TensorClass,
    ("torch.nn.parameter", "Parameter"): _TensorClass,
    # Tensors we do not convert: recognised, so that the message says what they are.
    ("torch._utils", "_rebuild_sparse_tensor"): lambda: _unsupported(_SPARSE),
    ("torch._utils", "_rebuild_sparse_csr_tensor"): lambda: _unsupported(_SPARSE),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): lambda: _unsupported(
        "a meta tensor: it holds no values, only tensors stored with their data are supported"),
    ("torch._utils", "_rebuild_qtensor"): lambda: _unsupported(
        "a quantized tensor: only float and integer tensors are supported"),
    ("torch._utils", "_rebuild_nested_tensor"): lambda: _unsupported(
        "a nested tensor: only dense tensors are supported"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"): lambda: _unsupported(
        "a tensor of a device without storage: only CPU tensors are supported"),
    ("torch.serialization", "_get_layout"): lambda: lambda name: _Named(str(name)),
    ("torch", "device"): lambda: lambda *args: _Named("device"),
    ("torch.storage", "UntypedStorage"): lambda: _StorageType("UntypedStorage"),
}


class _Unpickler(pickle.Unpickler):
    """Resolves only _GLOBALS; storages come from `storage(saved_id)`."""

    def __init__(self, file, path: Path, storage, what: str = "a pickle"):
        self._reader = _BoundedReader(file, path, what)
        super().__init__(self._reader)
        self._path = path
        self._storage = storage

    def load(self):
        try:
            _check_depth(self._reader)  # first, without building anything
        except CheckpointError:
            raise
        except Exception:  # a malformed stream: the unpickler says how (or what it refuses)
            pass
        self._reader.rewind()
        return super().load()

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[module, name]()
        if module == "torch" and isinstance(name, str):
            if name in _STORAGE_DTYPES or name in _UNSUPPORTED_STORAGES:
                return _StorageType(name)
            if re.fullmatch(r"\w+Storage", name):
                raise CheckpointError(f"{self._path}: unsupported tensor type torch.{name}")
            if _DTYPE_NAME.fullmatch(name):
                return _Named(name)
        raise CheckpointError(_refusal(self._path, f"{module}.{name}"))

    def persistent_load(self, saved_id):
        if (self._storage is None or not isinstance(saved_id, tuple) or len(saved_id) < 5
                or _text(saved_id[0]) != "storage" or not isinstance(saved_id[1], _StorageType)):
            raise ValueError(f"unexpected persistent id {shown(saved_id)}")
        return self._storage(saved_id)


def _text(value):
    return value.decode("ascii") if isinstance(value, bytes) else value


@contextlib.contextmanager
def _opened(path: Path, fmt):
    """The file's object, with stand-ins for its tensors (readable while open)."""
    if fmt == "legacy":
        with path.open("rb") as f:
            yield _read_legacy(path, f)
    else:
        with zipfile.ZipFile(path) as zf:
            yield _read_zip(path, zf, fmt[1])


def _scan(path: Path, fmt, family, read) -> dict:
    """Read the object and check every tensor of the family's networks (no data read),
    then `read(top)`."""
    try:
        with _opened(path, fmt) as obj:
            top = _entries(path, obj, lambda v: isinstance(v, (_Tensor, _Unsupported)), family)
            _check_networks(path, top)
            return read(top)
    except CheckpointError:
        raise
    except Exception as exc:  # anything a malformed file makes the unpickler or we raise
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None


def _load_without_torch(path: Path, fmt, family) -> dict:
    return _scan(path, fmt, family,
                 lambda top: _arrays(path, top, lambda net, key, t: t.array()))


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
            raise ValueError(f"unexpected legacy storage id {shown(saved_id)}")
        _, kind, root_key, _location, numel, view = saved_id
        key = _text(root_key)
        root = roots.get(key)
        if root is None:
            root = roots[key] = _Storage(path, key, kind, order, numel)
        if root.kind != kind.kind:
            raise ValueError("one storage used with two element types")
        if view is not None:  # views into storages: old torch, never used by tensors
            raise ValueError("storage views are not supported")
        return root

    obj = _Unpickler(f, path, storage, "the object pickle").load()
    keys = _Unpickler(f, path, None, "the storage key list").load()
    if not isinstance(keys, list) or not all(isinstance(k, (str, bytes)) for k in keys):
        raise ValueError("bad storage key list")
    keys = [_text(k) for k in keys]
    if set(keys) != set(roots) or len(keys) != len(roots):
        raise ValueError(f"the storage key list names {len(keys)} storages, the object "
                         f"{len(roots)}")
    # torch.load allocates each storage as the object declares it: each must be in the file.
    offset, file_size = f.tell(), path.stat().st_size
    for key in keys:
        root = roots[key]
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise ValueError(f"file ends before storage {shown(key)}")
        (numel,) = struct.unpack(order + "q", header)
        if numel != root.numel:
            raise ValueError(f"storage {shown(key)} holds {numel} elements, expected "
                             f"{root.numel}")
        start, offset = offset + 8, offset + 8 + root.nbytes
        if offset > file_size:
            raise ValueError(f"file ends at byte {file_size}, storage {shown(key)} at byte "
                             f"{offset}")
        root.read = lambda start=start, n=offset - start: _read_at(f, start, n)
    return obj


def _read_at(f, start, n) -> bytes:
    f.seek(start)
    return f.read(n)


def _read_zip(path: Path, zf: zipfile.ZipFile, prefix: str):
    infos = {info.filename: info for info in zf.infolist()}
    order = "<"
    if prefix + "byteorder" in infos:
        with zf.open(prefix + "byteorder") as f:
            byteorder = f.read(16).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise ValueError(f"unknown byteorder {shown(byteorder)}")
        order = "<" if byteorder == "little" else ">"
    storages: dict[str, _Storage] = {}

    def storage(saved_id):
        if len(saved_id) != 5:
            raise ValueError(f"unexpected storage id {shown(saved_id)}")
        _, kind, key, _location, numel = saved_id
        key = _text(key)
        found = storages.get(key)
        if found is None:
            record = f"{prefix}data/{key}"
            if record not in infos:
                raise ValueError(f"missing record {shown(record)}")
            found = storages[key] = _Storage(path, key, kind, order, numel)
            # torch.load allocates the storage as the object declares it: its record
            # (whose inflated size the zip directory states) must hold exactly that.
            if infos[record].file_size != found.nbytes:
                raise ValueError(f"storage {shown(key)} declares {found.nbytes} bytes, "
                                 f"its record holds {infos[record].file_size}")
            found.read = lambda record=record: zf.read(record)
        if found.kind != kind.kind:
            raise ValueError("one storage used with two element types")
        return found

    with zf.open(prefix + "data.pkl") as f:
        return _Unpickler(f, path, storage, "the object pickle").load()
