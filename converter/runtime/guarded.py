"""Arrays that end at a no-access page, for a runtime to write into.

    array = guarded_empty(shape, capacity=None)   # float32, uninitialised

LiteRT writes a model's outputs straight into our arrays (litert_c.py): should it ever
write past one (the shape proof of bundle/models_check rules that out for every file we
run, and the runtime checks its own sizes; this is for a bug left in either), the write
faults at once instead of corrupting the heap. XNNPACK reads up to 16 bytes past a tensor
it reads (XNN_EXTRA_BYTES; an output may be read by a later op), so these stay readable
after the data; the data starts on a 64-byte boundary (LiteRT's host buffer alignment),
so the guard page begins 16 to 79 bytes after its end. The mapping (anonymous, mmap) is
released with the last view of it. Lite: numpy and ctypes.
"""
from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np

ALIGNMENT = 64  # bytes: where the data starts (LITERT_HOST_MEMORY_BUFFER_ALIGNMENT)
READ_SLACK = 16  # bytes XNNPACK may read past a tensor (XNN_EXTRA_BYTES)
_PROT_NONE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int


def guarded_empty(shape, capacity: int | None = None) -> np.ndarray:
    """An uninitialised float32 array of `shape` whose memory ends at a no-access page:
    after `capacity` values (at least the shape's) and READ_SLACK bytes, rounded up to 64
    bytes, comes the guard."""
    count = int(np.prod(shape, dtype=np.int64))
    size = -(-(max(count, capacity or 0, 1) * 4 + READ_SLACK) // ALIGNMENT) * ALIGNMENT
    pages = -(-size // mmap.PAGESIZE)
    region = mmap.mmap(-1, (pages + 1) * mmap.PAGESIZE)
    raw = np.frombuffer(region, np.uint8)  # keeps the mapping alive as long as any view
    guard = raw.ctypes.data + pages * mmap.PAGESIZE
    if _libc.mprotect(guard, mmap.PAGESIZE, _PROT_NONE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot protect a guard page: {os.strerror(errno)}")
    start = pages * mmap.PAGESIZE - size
    return raw[start:start + count * 4].view(np.float32).reshape(shape)
