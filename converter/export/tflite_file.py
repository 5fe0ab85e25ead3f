"""The .tflite flatbuffer without tensorflow: our metadata entry in and out, signatures.

    read_tflite_metadata(path)        # our METADATA_NAME entry, as a dict
    tflite_metadata_names(path); tflite_signatures(path)
    with_metadata(flatbuffer, {name: metadata_bytes(dict)})   # build time (TF's schema)

Lite: nothing here imports tensorflow or torch at module level (`fomm-convert inspect`
reads bundles with `flatbuffers` alone); `with_metadata` imports TF's schema classes when
called. The rewrite is deterministic: the same model and entries give the same bytes.
"""
from __future__ import annotations

import functools
import json
import mmap
import os
import struct
from contextlib import contextmanager
from typing import Mapping

import flatbuffers
import numpy as np

from ..errors import FommError, one_line
from ..formats import METADATA_NAME
from ..limits import TFLITE_MAX_ENTRIES

# Entries the converter itself writes; kept as they are.
CONVERTER_METADATA = ("min_runtime_version", "CONVERSION_METADATA")
FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16  # schema.fbs: Buffer.data (force_align: 16)


# ------------------------------------------------------------------------------ writing
def metadata_bytes(metadata: dict) -> bytes:
    """Canonical UTF-8 JSON (sorted keys, no whitespace): the same dict, the same bytes."""
    try:
        text = json.dumps(metadata, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata is not JSON-able: {exc}") from exc
    return text.encode("utf-8")


def with_metadata(flatbuffer: bytes, entries: Mapping[str, bytes]) -> bytes:
    """The model with named metadata buffers added (or replaced), re-serialised with every
    buffer 16-byte aligned as the schema asks (the converter's own Python rewrite, which adds
    CONVERSION_METADATA, does not align them). Build time only: uses TF's schema classes."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    model.metadata = list(model.metadata or [])
    model.buffers = list(model.buffers or [])
    by_name = {entry.name.decode(): entry for entry in model.metadata}
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        if name in by_name:
            model.buffers[by_name[name].buffer] = buffer
        else:
            entry = schema.MetadataT()
            entry.name = name
            entry.buffer = len(model.buffers)
            model.buffers.append(buffer)
            model.metadata.append(entry)
    return packed(model, schema, len(flatbuffer))


def packed(model, schema, size: int) -> bytes:
    """A ModelT of TF's schema serialised with every buffer 16-byte aligned (size: about
    its bytes, the builder's first allocation)."""
    model.buffers = [_aligned(b, schema) for b in model.buffers]
    builder = flatbuffers.Builder(max(1024, size + 4096))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


@functools.lru_cache(maxsize=None)
def _aligned_buffer_class(schema):
    class AlignedBufferT(schema.BufferT):
        def Pack(self, builder):
            if self.data is not None:
                self.data = np.ascontiguousarray(self.data, np.uint8).reshape(-1)
                # Pad so that the bytes (written next, back to front) start aligned.
                builder.Prep(BUFFER_ALIGNMENT, self.data.size)
            return super().Pack(builder)
    return AlignedBufferT


def _aligned(buffer, schema):
    out = _aligned_buffer_class(schema)()
    out.data, out.offset, out.size = buffer.data, buffer.offset, buffer.size
    return out


# ------------------------------------------------------------------------------ reading
# A small reader over the flatbuffer (schema.fbs, table fields by index), so that bundles
# can be inspected without tensorflow or an interpreter (tflite_ops reads ops with it).
# A junk or hostile file is a TFLiteFileError (one line): every vector must lie inside
# the file and hold at most limits.TFLITE_MAX_ENTRIES entries.

class TFLiteFileError(FommError, ValueError):
    """A file that is not a readable .tflite flatbuffer."""


_U16, _U32, _I32 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<i")


class Table:
    """One flatbuffer table at `pos` of `buf`, read with struct (the flatbuffers package's
    own reader costs ~10x more per field, which a whole graph of thousands of tensors
    feels). Every position is checked to lie inside the buffer before it is read."""
    __slots__ = ("buf", "pos", "_fields", "_vtables")

    def __init__(self, buf, pos, vtables=None):
        self.buf, self.pos = buf, pos
        self._vtables = {} if vtables is None else vtables  # shared by a file's tables
        vtable = pos - self._read(_I32, pos)
        fields = self._vtables.get(vtable)
        if fields is None:
            count = max(0, self._read(_U16, vtable) // 2 - 2)  # after its size and the table's
            fields = self._vtables[vtable] = struct.unpack_from(f"<{count}H", buf, vtable + 4)
        self._fields = fields

    def _read(self, kind: struct.Struct, pos: int):
        if pos < 0:  # unpack_from counts a negative position from the end
            raise ValueError(f"an offset ({pos}) outside the file")
        return kind.unpack_from(self.buf, pos)[0]  # struct.error past the end

    def _offset(self, field):
        return self._fields[field] if field < len(self._fields) else 0

    def _indirect(self, pos):
        return pos + self._read(_U32, pos)

    def scalar(self, field, flags, default=0):
        o = self._offset(field)
        return self._read(flags.packer_type, self.pos + o) if o else default

    def string(self, field):
        o = self._offset(field)
        if not o:
            return None
        start = self._indirect(self.pos + o)
        length = self._read(_U32, start)
        if start + 4 + length > len(self.buf):
            raise ValueError("a string runs past the end of the file")
        return bytes(self.buf[start + 4:start + 4 + length]).decode("utf-8")

    def _vector(self, o, item_size):
        """(start, length) of the vector at offset o, checked to lie inside the file."""
        where = self._indirect(self.pos + o)
        start, length = where + 4, self._read(_U32, where)
        if start + length * item_size > len(self.buf):
            raise ValueError(f"a vector of {length} entries runs past the end of the file")
        if item_size == 4 and length > TFLITE_MAX_ENTRIES:
            raise ValueError(f"a table vector of {length} entries (at most "
                             f"{TFLITE_MAX_ENTRIES})")
        return start, length

    def tables(self, field):
        o = self._offset(field)
        if not o:
            return []
        start, length = self._vector(o, 4)
        return [Table(self.buf, self._indirect(start + 4 * i), self._vtables)
                for i in range(length)]

    def ints(self, field, flags=flatbuffers.number_types.Int32Flags):
        o = self._offset(field)
        if not o:
            return None
        start, length = self._vector(o, flags.bytewidth)
        return list(struct.unpack_from(f"<{length}{flags.packer_type.format[-1]}", self.buf,
                                       start))

    def length(self, field):
        o = self._offset(field)
        return self._read(_U32, self._indirect(self.pos + o)) if o else 0

    def present(self, field) -> bool:
        return bool(self._offset(field))

    def table(self, field):
        """The table at `field`, None when absent."""
        o = self._offset(field)
        return Table(self.buf, self._indirect(self.pos + o), self._vtables) if o else None

    def span(self, field):
        """(start, length) of the byte vector at `field` inside the file, None if absent."""
        o = self._offset(field)
        return self._vector(o, 1) if o else None

    def bytes(self, field):
        o = self._offset(field)
        if not o:
            return None
        start, length = self._vector(o, 1)
        return bytes(self.buf[start:start + length])


U32 = flatbuffers.number_types.Uint32Flags
I32 = flatbuffers.number_types.Int32Flags
I8 = flatbuffers.number_types.Int8Flags
U64 = flatbuffers.number_types.Uint64Flags


# What reading a damaged flatbuffer raises (offsets out of range, bad UTF-8, ...).
_DAMAGED = (ValueError, IndexError, TypeError, OverflowError, struct.error, RecursionError)


@contextmanager
def model_table(source):
    """The root Model table of a path or of flatbuffer bytes (files are memory-mapped);
    whatever a junk file makes the reader (or the body of the `with`) raise is one
    TFLiteFileError naming the file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        with _reading("model"):
            yield _root(source)
        return
    try:
        f = open(source, "rb")
    except OSError as exc:
        raise TFLiteFileError(f"{source}: cannot read it ({exc.strerror})") from None
    with f:
        if os.fstat(f.fileno()).st_size < 8:
            raise TFLiteFileError(f"{source}: not a TFLite flatbuffer (too short)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf, _reading(source):
            yield _root(buf)


@contextmanager
def _reading(name):
    try:
        yield
    except TFLiteFileError:
        raise
    except _DAMAGED as exc:
        raise TFLiteFileError(f"{name}: not a readable TFLite flatbuffer "
                              f"({one_line(exc)})") from None


def _root(buf):
    if bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise ValueError("no TFL3 identifier")
    return Table(buf, _U32.unpack_from(buf, 0)[0])


def _metadata(model: Table) -> dict[str, bytes]:
    buffers = model.tables(4)
    out = {}
    for entry in model.tables(6):
        buffer = buffers[entry.scalar(1, U32)]
        data = buffer.bytes(0)
        if data is None:  # large models keep buffers after the flatbuffer (offset, size)
            offset, size = buffer.scalar(1, U64), buffer.scalar(2, U64)
            data = bytes(model.buf[offset:offset + size])
        out[entry.string(0)] = data
    return out


def tflite_metadata_names(path) -> list[str]:
    """Names of every `Model.metadata` entry, in file order."""
    with model_table(path) as model:
        return [entry.string(0) for entry in model.tables(6)]


def read_tflite_metadata(path, name: str = METADATA_NAME) -> dict:
    """Our JSON metadata entry of a .tflite file (or flatbuffer bytes), without tensorflow."""
    with model_table(path) as model:
        entries = _metadata(model)
        if name not in entries:
            raise KeyError(f"{path if not isinstance(path, bytes) else 'model'}: no metadata "
                           f"entry {name!r} (found: {', '.join(entries) or 'none'})")
        return json.loads(entries[name].decode("utf-8"))


def tensor_shape(tensor: Table) -> tuple:
    signature = tensor.ints(7)  # shape_signature: -1 for dynamic dimensions
    return tuple(signature if signature is not None else tensor.ints(0) or [])


def tflite_signatures(path) -> dict:
    """{signature: {"inputs": [(name, shape)], "outputs": [(name, shape)]}} (-1: dynamic)."""
    with model_table(path) as model:
        subgraphs = model.tables(2)
        out = {}
        for sig in model.tables(7):
            tensors = subgraphs[sig.scalar(4, U32)].tables(0)
            out[sig.string(2)] = {
                kind: [(m.string(0), tensor_shape(tensors[m.scalar(1, U32)]))
                       for m in sig.tables(field)]
                for kind, field in (("inputs", 0), ("outputs", 1))}
        return out
