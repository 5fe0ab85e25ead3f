"""Bounds on what a checkpoint may make us allocate, checked before the allocation:
the zip directory before any member is read, the object pickle while it is read, and
every tensor of the networks (geometry, bytes, storage) before any data is read."""
from __future__ import annotations

import math
import pickletools
from collections import Counter

import numpy as np

from ..errors import shown
from ..limits import (CHECKPOINT_MAX_DIMS, CHECKPOINT_MAX_NETWORK_BYTES,
                      CHECKPOINT_MAX_PICKLE_BYTES, CHECKPOINT_MAX_PICKLE_DEPTH,
                      CHECKPOINT_MAX_STORAGE_BYTES, CHECKPOINT_MAX_TENSOR_BYTES,
                      CHECKPOINT_MAX_ZIP_RATIO, CHECKPOINT_ZIP_RATIO_FLOOR)
from .common import CheckpointError


def _check_zip_directory(path, infos, archive_bytes: int):
    """Refuse members (and archives) that would inflate beyond a bound, from the zip
    directory alone: nothing is decompressed, torch.load has not been called."""
    counts = Counter(info.filename for info in infos)
    twice = next((name for name, n in counts.items() if n > 1), None)
    if twice is not None:  # two readers could pick different ones
        raise CheckpointError(f"{path}: zip member {shown(twice)} appears twice")
    total = 0
    for info in infos:
        name, size = shown(info.filename), info.file_size
        # Storages live under <folder>/data/; the object pickle and the other records
        # (byteorder, version, ...) are small.
        limit = (CHECKPOINT_MAX_STORAGE_BYTES if "/data/" in info.filename
                 else CHECKPOINT_MAX_PICKLE_BYTES)
        if size > limit:
            raise CheckpointError(f"{path}: zip member {name} inflates to {size} bytes, "
                                  f"at most {limit}")
        if _inflates(size, info.compress_size):
            raise CheckpointError(f"{path}: zip member {name} inflates {info.compress_size} "
                                  f"bytes to {size} (over {CHECKPOINT_MAX_ZIP_RATIO}:1, a zip "
                                  "bomb)")
        total += size
    if _inflates(total, archive_bytes):
        raise CheckpointError(f"{path}: its zip members inflate {archive_bytes} bytes to "
                              f"{total} (over {CHECKPOINT_MAX_ZIP_RATIO}:1, a zip bomb)")


def _inflates(size: int, compressed: int) -> bool:
    return size > CHECKPOINT_ZIP_RATIO_FLOOR and size > CHECKPOINT_MAX_ZIP_RATIO * compressed


class _BoundedReader:
    """A file for pickle.Unpickler that refuses to read past CHECKPOINT_MAX_PICKLE_BYTES
    (the unpickler allocates a declared length before reading it)."""

    def __init__(self, f, path, what: str):
        self._f, self._path, self._what = f, path, what
        self._start, self._left = f.tell(), CHECKPOINT_MAX_PICKLE_BYTES

    def rewind(self):
        self._f.seek(self._start)
        self._left = CHECKPOINT_MAX_PICKLE_BYTES

    def _take(self, n: int) -> int:
        if n > self._left:
            raise CheckpointError(f"{self._path}: {self._what} is larger than "
                                  f"{CHECKPOINT_MAX_PICKLE_BYTES} bytes")
        self._left -= n
        return n

    def read(self, n=-1):
        data = self._f.read(self._left + 1 if n is None or n < 0 else self._take(n))
        if n is None or n < 0:
            self._take(len(data))
        return data

    def readinto(self, buffer):
        self._take(len(buffer))
        return self._f.readinto(buffer)

    def readline(self):
        line = self._f.readline(self._left + 1)
        self._take(len(line))
        return line


def _check_depth(reader: _BoundedReader):
    """Refuse a pickle that nests deeper than CHECKPOINT_MAX_PICKLE_DEPTH, by following
    its opcodes without building anything: unpickling a 1 MB chain of 10^6 tuples as a
    dict key crashes CPython (hashing it recurses in C), torch's unpickler as well."""
    stack, marks, memo = [], [], {}

    def pop_mark():
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def deeper(items):  # a new object holding `items`: one level more than the deepest
        depth = 1 + max((cell[0] for cell in items), default=0)
        if depth > CHECKPOINT_MAX_PICKLE_DEPTH:
            raise CheckpointError(f"{reader._path}: {reader._what} nests deeper than "
                                  f"{CHECKPOINT_MAX_PICKLE_DEPTH} levels")
        return [depth]  # a cell: memo entries share it, so a list that grows deepens

    def grow(container, items):
        container[0] = max(container[0], deeper(items)[0])

    for op, arg, _ in pickletools.genops(reader):
        name = op.name
        if name == "STOP":
            return
        if name == "MARK":
            marks.append(len(stack))
        elif name in ("TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"):
            stack.append(deeper(pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3", "REDUCE", "NEWOBJ", "NEWOBJ_EX"):
            n = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "NEWOBJ_EX": 3}.get(name, 2)
            items = stack[-n:]
            if len(items) != n:
                raise ValueError(f"{name} on a stack of {len(items)}")
            del stack[-n:]
            stack.append(deeper(items))
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = pop_mark()
            grow(stack[-1], items)
        elif name in ("APPEND", "SETITEM", "BUILD"):
            n = 2 if name == "SETITEM" else 1
            items = stack[-n:]
            del stack[-n:]
            grow(stack[-1], items)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "DUP":
            stack.append(stack[-1])
        elif name == "POP":
            if marks and len(stack) == marks[-1]:
                marks.pop()
            else:
                stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name in ("STACK_GLOBAL", "BINPERSID"):
            del stack[-(2 if name == "STACK_GLOBAL" else 1):]
            stack.append([0])
        elif not op.stack_before and len(op.stack_after) == 1:  # a value from the stream
            stack.append([0])
        elif name not in ("PROTO", "FRAME", "READONLY_BUFFER"):
            raise ValueError(f"unexpected opcode {name}")


def _check_tensor(path, where: str, tensor) -> int:
    """Refuse a tensor that cannot be one of the networks' weights, from its geometry
    alone; its declared bytes (size times item size, stride 0 included) otherwise."""
    unsupported = getattr(tensor, "unsupported", None)
    if unsupported:
        raise CheckpointError(f"{path}: {where}: {unsupported}")
    size, stride, offset, storage = tensor.size, tensor.stride, tensor.offset, tensor.storage
    if not (isinstance(size, tuple) and isinstance(stride, tuple)):
        raise CheckpointError(f"{path}: {where}: its size or stride is not a sequence")
    if len(size) > CHECKPOINT_MAX_DIMS:
        raise CheckpointError(f"{path}: {where}: has {len(size)} dimensions, at most "
                              f"{CHECKPOINT_MAX_DIMS}")
    if len(size) != len(stride):
        raise CheckpointError(f"{path}: {where}: its size has {len(size)} dimensions, its "
                              f"stride {len(stride)}")
    for name, values in (("size", size), ("stride", stride), ("storage offset", (offset,))):
        bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, int)
                    or v < 0), None)
        if bad is not None:
            raise CheckpointError(f"{path}: {where}: bad {name} {shown(bad)} (a tensor's "
                                  "sizes, strides and offset are integers >= 0)")
    if storage.dtype is None:
        raise CheckpointError(f"{path}: {where}: unsupported tensor dtype "
                              f"torch.{storage.torch_name} (torch.{storage.kind})")
    # numpy refuses even an empty shape whose other dimensions multiply past its limit.
    extent = math.prod(max(n, 1) for n in size) * storage.itemsize
    nbytes = math.prod(size) * storage.itemsize
    held = storage.numel * storage.itemsize  # the file's (checked when it was read)
    if nbytes > held:
        raise CheckpointError(f"{path}: {where}: declares {nbytes} bytes, the file holds {held}")
    if extent > CHECKPOINT_MAX_TENSOR_BYTES:
        raise CheckpointError(f"{path}: {where}: declares {extent} bytes, at most "
                              f"{CHECKPOINT_MAX_TENSOR_BYTES} per tensor")
    if nbytes:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise CheckpointError(f"{path}: {where}: reaches element {last} of its storage, "
                                  f"which holds {storage.numel}")
    return nbytes


def _check_networks(path, top: dict):
    """Every tensor of the networks checked, and their sum bounded, before any is read."""
    total = 0
    for net, entries in top["nets"].items():
        for _key, original, value in entries:
            total += _check_tensor(path, _where(net, original), value)
            if total > CHECKPOINT_MAX_NETWORK_BYTES:
                raise CheckpointError(f"{path}: {_where(net, original)}: the networks "
                                      f"declare over {CHECKPOINT_MAX_NETWORK_BYTES} bytes in all")


def _check_finite(path, where: str, array: np.ndarray):
    """NaN or Inf in a weight would only surface deep inside a build."""
    if array.dtype.kind in "fc":
        finite = np.count_nonzero(np.isfinite(array))
        if finite != array.size:
            raise CheckpointError(f"{path}: {where}: holds {array.size - finite} NaN or "
                                  f"infinite values (of {array.size})")


def _where(net: str, key: str) -> str:
    return f"'{net}' entry {shown(key)}"
