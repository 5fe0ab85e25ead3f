"""The binary messages between Python and the harness page (web/harness.mjs mirrors it).

A message is a little-endian uint32 header length, the JSON header {..., tensors: [{name,
shape}]}, zero padding to 4 bytes, then each tensor's float32 data in that order.
"""
from __future__ import annotations

import json
import struct

import numpy as np


def encode(header: dict, tensors: dict[str, np.ndarray]) -> bytes:
    # asarray, not ascontiguousarray: that makes the scalar flags 1-D; tobytes() is C order.
    arrays = {name: np.asarray(value, dtype="<f4") for name, value in tensors.items()}
    text = json.dumps({**header, "tensors": [{"name": name, "shape": list(a.shape)}
                                             for name, a in arrays.items()]}).encode()
    pad = b"\0" * (-len(text) % 4)
    return b"".join([struct.pack("<I", len(text)), text, pad,
                     *(a.tobytes() for a in arrays.values())])


def decode(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    (length,) = struct.unpack_from("<I", data)
    header = json.loads(data[4:4 + length])
    offset = 4 + length + (-length % 4)
    tensors = {}
    for t in header.pop("tensors"):
        size = int(np.prod(t["shape"], dtype=np.int64))
        tensors[t["name"]] = np.frombuffer(data, "<f4", size, offset).reshape(t["shape"]).copy()
        offset += 4 * size
    return header, tensors
