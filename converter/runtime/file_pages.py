"""Handing a model file's pages back to the kernel once a runtime has read what it needs.

A runtime that maps its model file (LiteRT does) leaves every page it read resident, and
private to the process: the float16 generator's weights, read once to be widened to
float32 for XNNPACK, stayed resident after that (149 of 839 MB of vox-256's private
memory, bench/memory.py).
"""
from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

MADV_DONTNEED = 4  # Linux


def release_file_pages(path: Path, maps: str = "/proc/self/maps"):
    """madvise(MADV_DONTNEED) on this process's read-only mappings of `path`: their pages
    leave the process (and its private memory) for the page cache, and are read from the
    file again when touched. A mapping without write permission holds no modified page,
    so nothing is lost. Without /proc (not Linux) it does nothing."""
    if not os.path.exists(maps):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    target = os.path.realpath(path)
    with open(maps) as lines:
        mappings = [line.split(None, 5) for line in lines]
    for fields in mappings:
        if len(fields) == 6 and fields[5].strip() == target and "w" not in fields[1]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if libc.madvise(start, end - start, MADV_DONTNEED) != 0:
                error = ctypes.get_errno()
                # ENOMEM: the range is no longer mapped (another model of the same file,
                # freed since /proc/self/maps was read, took its mapping along): nothing
                # of it is left to hand back.
                if error != errno.ENOMEM:
                    raise OSError(error, f"{path}: madvise failed")
