"""One external data file shared by several ONNX models (the generator's three files)."""
from __future__ import annotations

import hashlib

import onnx


class SharedWeights:
    """One external data file for several models: each distinct tensor stored once (by
    content), at a page-aligned offset so that onnxruntime can map it."""

    ALIGN = 4096
    MIN_BYTES = 1024  # smaller tensors (shapes, biases of small layers) stay inline

    def __init__(self, location: str):
        self.location = location
        self.chunks: list[bytes] = []
        self.size = 0
        self.offsets: dict[bytes, int] = {}

    def externalise(self, model: onnx.ModelProto):
        """Move the model's large initializers into this file (in place)."""
        for tensor in model.graph.initializer:
            data = tensor.raw_data
            if len(data) < self.MIN_BYTES:
                continue
            key = hashlib.sha256(data).digest()
            if key not in self.offsets:
                pad = -self.size % self.ALIGN
                self.chunks.append(b"\0" * pad)
                self.offsets[key] = self.size + pad
                self.chunks.append(data)
                self.size += pad + len(data)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for name, value in (("location", self.location),
                                ("offset", str(self.offsets[key])), ("length", str(len(data)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = name, value

    def data(self) -> bytes:
        return b"".join(self.chunks)
