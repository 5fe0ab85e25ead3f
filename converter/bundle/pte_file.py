"""Our own reader of ExecuTorch's .pte files (schema program.fbs, file identifier ET12): the
facts the gate and the metadata check need, read with bounds checks on every offset and
no runtime, no flatbuffers-generated code.

A .pte is an extended header (magic eh00: the flatbuffer's size, where the data segments
start and their total size) in a flatbuffer Program, then the segments (delegate blobs,
constants). Anything out of bounds is a PteError naming the offset.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

IDENTIFIER = b"ET12"
HEADER_MAGIC = b"eh00"
HEADER_OFFSET = 8
# KernelTypes (the EValue union) members and DataLocation values we read.
STRING, TENSOR = 6, 5
INLINE, SEGMENT = 0, 1
EXTERNAL = 1  # TensorDataLocation


class PteError(ValueError):
    """Bytes that are not a well-formed .pte."""


class _Buffer:
    """Little-endian reads of the flatbuffer part, each inside it."""

    def __init__(self, data, size: int):
        self.data, self.size = data, size

    def read(self, fmt: str, pos: int):
        if not 0 <= pos <= self.size - struct.calcsize(fmt):
            raise PteError(f"offset {pos} lies outside the program ({self.size} bytes)")
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def table(self, pos: int) -> "_Table":
        vtable = pos - self.read("i", pos)
        length = self.read("H", vtable)
        if length < 4 or length % 2:
            raise PteError(f"a vtable at {vtable} of {length} bytes")
        return _Table(self, pos, vtable, length)

    def vector(self, pos: int, width: int) -> tuple[int, int]:
        """(start, count) of a vector whose length word is at pos, elements inside."""
        count = self.read("I", pos)
        if count * width > self.size - pos - 4:
            raise PteError(f"a vector of {count} at {pos} runs past the program")
        return pos + 4, count


class _Table:
    def __init__(self, buf: _Buffer, pos: int, vtable: int, length: int):
        self.buf, self.pos, self.vtable, self.length = buf, pos, vtable, length

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= self.length:
            return None
        offset = self.buf.read("H", self.vtable + slot)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default=0):
        pos = self._field(index)
        return default if pos is None else self.buf.read(fmt, pos)

    def _target(self, index: int) -> int | None:
        pos = self._field(index)
        return None if pos is None else pos + self.buf.read("I", pos)

    def table(self, index: int) -> "_Table | None":
        pos = self._target(index)
        return None if pos is None else self.buf.table(pos)

    def string(self, index: int) -> str | None:
        pos = self._target(index)
        if pos is None:
            return None
        start, count = self.buf.vector(pos, 1)
        try:
            return bytes(self.buf.data[start:start + count]).decode()
        except UnicodeDecodeError:
            raise PteError(f"a string at {pos} is not UTF-8") from None

    def scalars(self, index: int, fmt: str) -> list:
        pos = self._target(index)
        if pos is None:
            return []
        width = struct.calcsize(fmt)
        start, count = self.buf.vector(pos, width)
        return [self.buf.read(fmt, start + i * width) for i in range(count)]

    def tables(self, index: int) -> list["_Table"]:
        pos = self._target(index)
        if pos is None:
            return []
        start, count = self.buf.vector(pos, 4)
        return [self.buf.table(p + self.buf.read("I", p))
                for p in range(start, start + 4 * count, 4)]


@dataclass
class Plan:
    """One method of a program."""
    name: str
    operators: list = field(default_factory=list)  # "name.overload": its portable kernels
    delegates: list = field(default_factory=list)  # (id, location, index)
    inputs: list = field(default_factory=list)  # tensor sizes (None: not a tensor)
    outputs: list = field(default_factory=list)
    strings: list = field(default_factory=list)  # its outputs that are strings
    external: list = field(default_factory=list)  # tensors whose data is in another file


@dataclass
class PteFacts:
    size: int  # of the file
    plans: list
    segments: list  # (offset, size) from the segments' base
    segment_space: int  # the bytes after the segments' base
    delegate_data: int  # inline delegate blobs
    constant_segment: int | None  # its segment index
    mutable_segments: int
    named_data: list  # (key, segment index)


def _plan(table: _Table) -> Plan:
    plan = Plan(table.string(0) or "")
    values = table.tables(2)

    def value(index: int):
        if not 0 <= index < len(values):
            raise PteError(f"method {plan.name!r}: value {index} of {len(values)}")
        return values[index]

    for evalue in values:
        if evalue.scalar(0, "B") == TENSOR:
            extra = evalue.table(1).table(9)
            if extra is not None and extra.scalar(2, "b") == EXTERNAL:
                plan.external.append(extra.string(1))
    for side, indices in ((plan.inputs, table.scalars(3, "i")),
                          (plan.outputs, table.scalars(4, "i"))):
        for index in indices:
            evalue = value(index)
            kind = evalue.scalar(0, "B")
            side.append(evalue.table(1).scalars(2, "i") if kind == TENSOR else None)
            if kind == STRING and side is plan.outputs:
                plan.strings.append(evalue.table(1).string(0))
    plan.operators = [f"{op.string(0)}.{op.string(1) or 'default'}" for op in table.tables(6)]
    for delegate in table.tables(7):
        processed = delegate.table(1)
        plan.delegates.append((delegate.string(0),
                               *((processed.scalar(0, "b"), processed.scalar(1, "I"))
                                 if processed is not None else (None, None))))
    return plan


def read_pte(data) -> PteFacts:
    """The facts of a .pte's bytes (a bytes-like or mmap), or a PteError."""
    size = len(data)
    if size < HEADER_OFFSET + 32 or bytes(data[4:8]) != IDENTIFIER:
        raise PteError(f"no {IDENTIFIER.decode()} identifier (not an ExecuTorch program)")
    if bytes(data[HEADER_OFFSET:HEADER_OFFSET + 4]) != HEADER_MAGIC:
        raise PteError(f"no {HEADER_MAGIC.decode()} extended header")
    length, program_size, base = struct.unpack_from("<IQQ", data, HEADER_OFFSET + 4)
    if length < 24 or not HEADER_OFFSET + length <= program_size <= base <= size:
        raise PteError(f"an extended header of {length} bytes giving a program of "
                       f"{program_size} and segments from {base} in {size} bytes")
    buf = _Buffer(data, program_size)
    program = buf.table(buf.read("I", 0))
    constant = program.table(5)
    return PteFacts(
        size=size, plans=[_plan(plan) for plan in program.tables(1)],
        segments=[(s.scalar(0, "Q"), s.scalar(1, "Q")) for s in program.tables(4)],
        segment_space=size - base, delegate_data=len(program.tables(3)),
        constant_segment=None if constant is None else constant.scalar(0, "I"),
        mutable_segments=len(program.tables(6)),
        named_data=[(n.string(0), n.scalar(1, "I")) for n in program.tables(7)])
