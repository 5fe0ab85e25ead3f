"""A SavedModel's variables/ files against what our exporter writes: TensorFlow's
checkpoint reader (RestoreV2, a native parser) reads them at load, so they are read here
first, without it.

variables.index is a table of sorted keys (TensorFlow's copy of LevelDB's format: data
blocks, an index block, a 48-byte footer); each value is a protobuf: the header under the
empty key (one shard, little-endian), then one entry per tensor (dtype, shape, offset and
size in variables.data-00000-of-00001). Held to ours: uncompressed blocks inside the file,
keys in order; exactly the keys of the SavedModel's variables plus the checkpoint's object
graph; each variable float32 of its SavedModel shape, 4 bytes a value, inside the data file;
no slices. The checkpoint's object graph (a serialized TrackableObjectGraph, which
TensorFlow's loader parses to match values to objects) holds each variable's value under
its own key, once, and nothing else: no slot variable, no registered saver.
"""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path

from ...errors import shown
from ...limits import (CHECKPOINT_INDEX_MAX_BYTES, CHECKPOINT_MAX_TENSOR_BYTES,
                       CHECKPOINT_OBJECT_GRAPH_MAX_BYTES)
from . import ModelFileError, read_model_file
from .tf_proto import ProtoError, read_canonical, refused, signed

INDEX, DATA = "variables/variables.index", "variables/variables.data-00000-of-00001"
VARIABLE_FILES = (INDEX, DATA)
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_MAGIC = 0xDB4775248B80FB57  # the table footer's last 8 bytes
_FOOTER, _TRAILER = 48, 5  # footer size; each block's compression byte and crc32c
FLOAT32, STRING = 1, 7  # tensorflow DataType


def check_variables(folder: Path, variables: dict[str, tuple]) -> None:
    """`folder`/variables against the SavedModel's variables ({checkpoint key: shape})."""
    index = folder / INDEX
    try:
        entries = _table(read_model_file(index, CHECKPOINT_INDEX_MAX_BYTES, "checkpoint index"))
        _check_entries(folder, entries, variables)
    except ProtoError as exc:
        raise ModelFileError(f"{index}: {exc}") from None


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ProtoError(f"a truncated or overlong varint at byte {pos}")


def _handle(handle: bytes) -> tuple[int, int]:
    """(offset, size) of an encoded block handle."""
    offset, pos = _varint(handle, 0, len(handle))
    size, pos = _varint(handle, pos, len(handle))
    if pos != len(handle):
        raise ProtoError("a block handle with bytes after it")
    return offset, size


def _block(buf: bytes, offset: int, size: int, limit: int) -> bytes:
    """The contents of a block (inside `limit`, uncompressed)."""
    if offset + size + _TRAILER > limit:
        raise ProtoError(f"a block ({offset}+{size} bytes) outside the table")
    if buf[offset + size] != 0:
        raise ProtoError(f"a compressed block at byte {offset} (ours are not)")
    return buf[offset:offset + size]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) of a block, keys rebuilt from their shared prefixes. TensorFlow seeks a
    key by a binary search over the block's restart points, then reads on: each restart
    point must be the start of an entry that shares nothing with the one before, the first
    at 0, so that a seek reads the entries read here."""
    if len(block) < 4:
        raise ProtoError("a block too short for its restart count")
    count, = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (count + 1)
    if count < 1 or end < 0:
        raise ProtoError(f"a block with {count} restart points in {len(block)} bytes")
    out, starts, pos, key = [], set(), 0, b""
    while pos < end:
        start = pos
        shared, pos = _varint(block, pos, end)
        unshared, pos = _varint(block, pos, end)
        size, pos = _varint(block, pos, end)
        if shared > len(key) or pos + unshared + size > end:
            raise ProtoError("a block entry runs past its block")
        if shared == 0:
            starts.add(start)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        out.append((key, block[pos:pos + size]))
        pos += size
    restarts = struct.unpack_from(f"<{count}I", block, end)
    if restarts[0] != 0 or list(restarts) != sorted(set(restarts)) or not starts >= set(
            restarts):
        raise ProtoError("a block whose restart points are not the starts of its entries")
    return out


def _table(buf: bytes) -> dict[str, bytes]:
    """{key: value} of a whole table file, keys strictly increasing."""
    if len(buf) < _FOOTER or struct.unpack_from("<Q", buf, len(buf) - 8)[0] != _MAGIC:
        raise ProtoError("not a TensorFlow checkpoint index (no table footer)")
    footer = buf[len(buf) - _FOOTER:]
    _, pos = _varint(footer, 0, 40)  # the metaindex block (empty in ours): not read
    _, pos = _varint(footer, pos, 40)
    offset, pos = _varint(footer, pos, 40)
    size, _ = _varint(footer, pos, 40)
    data_end = len(buf) - _FOOTER
    out, last = {}, None
    for _, handle in _block_entries(_block(buf, offset, size, data_end)):
        for key, value in _block_entries(_block(buf, *_handle(handle), data_end)):
            if last is not None and key <= last:
                raise ProtoError(f"key {shown(key)} out of order")
            last = key
            try:
                out[key.decode("utf-8")] = value
            except UnicodeDecodeError:
                raise ProtoError(f"key {shown(key)} is not UTF-8") from None
    return out


def _check_entries(folder: Path, entries: dict[str, bytes], variables: dict[str, tuple]):
    header = read_canonical(entries.pop("", b"\xff"), "BundleHeaderProto") \
        if "" in entries else None
    if header is None or header.num_shards != 1 or header.endianness != 0:
        raise ProtoError("its header is not one shard, little-endian (ours)")
    expected = {*variables, OBJECT_GRAPH_KEY}
    if set(entries) != expected:
        odd = sorted(set(entries) ^ expected)[0]
        raise ProtoError(f"key {odd!r} {'is not' if odd in entries else 'is missing from'} "
                         f"the SavedModel's variables")
    data = folder / DATA
    data_size = os.lstat(data).st_size
    for key, value in entries.items():
        try:
            entry = read_canonical(value, "BundleEntryProto")
            refused(entry, "its entry")
        except ProtoError as exc:
            raise ProtoError(f"key {key!r}: {exc}") from None
        shape = tuple(signed(d.size) for d in entry.shape.dim)
        if key == OBJECT_GRAPH_KEY:
            dtype, want_shape, want_size = STRING, (), None
        else:
            dtype, want_shape = FLOAT32, variables[key]
            want_size = 4 * math.prod(want_shape)
            if min(want_shape, default=0) < 0 or want_size > CHECKPOINT_MAX_TENSOR_BYTES:
                raise ProtoError(f"key {key!r}: a variable of shape {list(want_shape)} (at "
                                 f"most {CHECKPOINT_MAX_TENSOR_BYTES} bytes)")
        if (entry.dtype != dtype or shape != want_shape or entry.shard_id != 0
                or (want_size is not None and entry.size != want_size)
                or entry.offset + entry.size > data_size):
            raise ProtoError(f"key {key!r}: dtype {entry.dtype}, shape {list(shape)}, "
                             f"{entry.offset}+{entry.size} bytes (ours: dtype {dtype}, shape "
                             f"{list(want_shape)}, inside {DATA} of {data_size} bytes)")
        if key == OBJECT_GRAPH_KEY:
            _check_object_graph(data, entry.offset, entry.size, variables)


def _check_object_graph(data: Path, offset: int, size: int, variables: dict[str, tuple]):
    """The checkpoint's object graph: a scalar string tensor (its length, a 4-byte checksum
    of it, the bytes) holding a TrackableObjectGraph whose values are the variables'."""
    if size > CHECKPOINT_OBJECT_GRAPH_MAX_BYTES:
        raise ProtoError(f"its object graph takes {size} bytes, more than ours can "
                         f"({CHECKPOINT_OBJECT_GRAPH_MAX_BYTES})")
    fd = os.open(data, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        raw = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    length, pos = _varint(raw, 0, len(raw))
    if pos + 4 + length != size:
        raise ProtoError(f"its object graph string ({length} bytes) does not fill its "
                         f"{size}-byte entry")
    graph = read_canonical(raw[pos + 4:], "TrackableObjectGraph")
    keys = set()
    for i, node in enumerate(graph.nodes):
        refused(node, f"checkpoint object {i}")
        for attribute in node.attributes:
            if attribute.name != "VARIABLE_VALUE" or attribute.checkpoint_key not in variables:
                raise ProtoError(f"checkpoint object {i}: a value {attribute.name!r} under "
                                 f"{attribute.checkpoint_key!r}, not one of its variables")
            keys.add(attribute.checkpoint_key)
    if keys != set(variables):
        raise ProtoError("its object graph does not hold every variable once")
