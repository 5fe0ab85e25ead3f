"""Read FOMM training checkpoints into numpy arrays without ever running code from the file.

A checkpoint is a torch.save'd dict {'generator': state_dict, 'kp_detector': state_dict,
'discriminator', 'optimizer_*', 'epoch', ...}. torch.save has two serialisations:
- legacy (torch < 1.6, the official FOMM files): five pickles back to back (magic number,
  protocol version, sys_info, the object, the list of storage keys), then each storage
  as an int64 element count followed by its raw bytes, in the order of that list;
- zip: an archive whose single top-level folder holds data.pkl (the object), byteorder
  and data/<key> (raw storage bytes).
In both, tensors are pickled as calls to torch._utils._rebuild_tensor_v2 on a
"persistent id" that names the storage.

With torch importable we use torch.load(weights_only=True); otherwise (the lite runtime)
our own reader, a pickle.Unpickler that resolves only the handful of globals a
checkpoint needs, to stand-ins that never import torch. Both give identical arrays.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NETWORKS = ("generator", "kp_detector")
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


class CheckpointError(ValueError):
    """The file is not a usable FOMM checkpoint; the one-line message names the file and why."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    sha256: str  # of the file bytes
    kp_detector: "OrderedDict[str, np.ndarray]"  # state_dict order, 'module.' prefix stripped
    generator: "OrderedDict[str, np.ndarray]"
    ignored: list[str]  # top-level entries not used (discriminator, optimizers, epoch, ...)
    synthetic: bool  # written by `fomm-convert synth`


def state_dict_sha256(sd) -> str:
    """SHA-256 over key.encode('utf-8') + C-order little-endian tensor bytes, in order."""
    digest = hashlib.sha256()
    for key, value in sd.items():
        value = np.asarray(value)
        digest.update(key.encode("utf-8"))
        digest.update(value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    return digest.hexdigest()


def load_checkpoint(path, use_torch: bool | None = None) -> Checkpoint:
    """Load a checkpoint's generator and kp_detector state dicts as numpy arrays.

    use_torch: None uses torch when it is importable, True/False force one reader.
    Raises CheckpointError for anything that is not a readable FOMM checkpoint.
    """
    path = Path(path)
    _check_file(path)
    fmt = _sniff(path)
    if use_torch is None:
        use_torch = _torch_importable()
    top = (_load_with_torch if use_torch else _load_without_torch)(path, fmt)
    return Checkpoint(path=path, sha256=file_sha256(path), **top)


def _check_file(path: Path):
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")


def _sniff(path: Path):
    """'legacy' or ('zip', member prefix); refuses files that are neither."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupt zip archive ({exc})") from None
        # torch writes every record under one top-level folder, named after the file.
        prefixes = {n[:-len("data.pkl")] for n in names
                    if n.endswith("/data.pkl") and n.count("/") == 1}
        if len(prefixes) != 1:
            raise CheckpointError(f"{path}: a zip archive but not a torch checkpoint "
                                  "(no single <folder>/data.pkl record)")
        return "zip", prefixes.pop()
    magic = pickle.dumps(LEGACY_MAGIC, protocol=2)
    if len(head) < len(magic) and magic.startswith(head):
        raise CheckpointError(f"{path}: truncated legacy torch file ({len(head)} bytes)")
    found = False
    if head.startswith(b"\x80"):  # torch pickles with protocol >= 2, which opens with PROTO
        try:
            found = _Unpickler(io.BytesIO(head), path, None).load() == LEGACY_MAGIC
        except CheckpointError:
            raise
        except Exception:
            pass
    if not found:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch zip archive "
                              "nor a legacy torch file)")
    return "legacy"


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(fmt) -> str:
    return "legacy torch file" if fmt == "legacy" else "torch zip archive"


def _refusal(path: Path, name: str) -> str:
    return (f"{path}: refused to load: the file references the global {name}, "
            "which a checkpoint does not need (it could run code)")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# --- with torch -------------------------------------------------------------------------

def _load_with_torch(path: Path, fmt) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights_only refusal names the global in a long multi-line message.
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if refused:
            name = refused.group(1)  # torch drops the 'builtins.' of builtins
            raise CheckpointError(_refusal(path, name if "." in name else f"builtins.{name}")) \
                from None
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None

    def to_array(tensor):
        try:
            array = tensor.detach().cpu().numpy()
        except TypeError:  # e.g. bfloat16, which numpy lacks
            array = None
        if array is None or array.dtype not in _SUPPORTED_DTYPES:
            raise CheckpointError(f"{path}: unsupported tensor dtype {tensor.dtype}")
        return np.array(array, order="C")

    return _extract(path, obj, lambda v: isinstance(v, torch.Tensor), to_array)


# --- without torch ----------------------------------------------------------------------

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


# --- shared -----------------------------------------------------------------------------

def _extract(path: Path, obj, is_tensor, to_array) -> dict:
    """The two state dicts and the bookkeeping entries of a loaded top-level object."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a FOMM checkpoint: the file holds an object of "
                              f"type {_kind(obj, is_tensor)}, expected a dict with "
                              "'generator' and 'kp_detector'")
    missing = [net for net in NETWORKS if net not in obj]
    if missing:
        if obj and all(is_tensor(v) for v in obj.values()):
            raise CheckpointError(f"{path}: wrong model: a bare state_dict (first key "
                                  f"{next(iter(obj))!r}), expected a FOMM checkpoint with "
                                  "'generator' and 'kp_detector'")
        entries = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
        raise CheckpointError(f"{path}: wrong model: no {' or '.join(map(repr, missing))} "
                              f"entry (entries: {entries})")
    marker = obj.get(SYNTHETIC_KEY)
    synthetic = isinstance(marker, dict) and marker.get("generator") == SYNTHETIC_TAG
    nets = {net: _state_dict(path, net, obj[net], is_tensor, to_array) for net in NETWORKS}
    ignored = [str(k) for k in obj
               if k not in NETWORKS and not (synthetic and k == SYNTHETIC_KEY)]
    return dict(nets, ignored=ignored, synthetic=synthetic)


def _state_dict(path, net, sd, is_tensor, to_array) -> OrderedDict:
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: '{net}' is not a state dict "
                              f"({_kind(sd, is_tensor)})")
    keys = list(sd)
    bad = next((k for k in keys if not isinstance(k, str)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: '{net}' has a non-string key {bad!r}")
    # nn.DataParallel prefixes every key with 'module.'.
    strip = bool(keys) and all(k.startswith("module.") for k in keys)
    out = OrderedDict()
    for key, value in sd.items():
        if not is_tensor(value):
            raise CheckpointError(f"{path}: '{net}' entry {key!r} is not a tensor "
                                  f"({_kind(value, is_tensor)})")
        out[key[len("module."):] if strip else key] = to_array(value)
    return out


def _kind(value, is_tensor) -> str:
    return "tensor" if is_tensor(value) else type(value).__name__
