"""Animated GIF output, streamed frame by frame (one adaptive palette per frame)."""
from __future__ import annotations

import numpy as np

from .errors import MediaError
from .writer import FrameWriter


class GIFWriter(FrameWriter):
    """An animated GIF streamed frame by frame: imageio encodes each frame as a one-frame
    GIF (its own adaptive palette), and its image block is appended with that palette as a
    local colour table. Frame delays are rounded so that they add up to the true time."""
    kind = "gif"

    def __init__(self, out, fps, force: bool = False):
        self.file = None
        self.size = None
        super().__init__(out, fps, force)

    def _create_tmp(self):
        self.file = open(self.tmp, "wb")

    def _write(self, frame):
        import imageio.v3 as iio
        data = iio.imwrite("<bytes>", frame, extension=".gif")
        table, descriptor, image = _gif_single_frame(data)
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (h, w)
            # Header, logical screen without a global colour table, loop forever.
            self.file.write(b"GIF89a" + _u16(w) + _u16(h) + b"\x00\x00\x00")
            self.file.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")
        elif (h, w) != self.size:
            raise MediaError(f"{self.out}: frame size {(h, w)} != {self.size}")
        fps = self.fps or 25
        delay = round(100 * (self.count + 1) / fps) - round(100 * self.count / fps)
        # Graphic control: disposal 1 (leave in place), delay in 1/100 s.
        self.file.write(b"\x21\xf9\x04\x04" + _u16(max(delay, 1)) + b"\x00\x00")
        bits = max(int(np.ceil(np.log2(len(table) // 3))) - 1, 0)
        flags = (descriptor[9] & 0x40) | 0x80 | bits  # keep interlacing, add a local table
        self.file.write(descriptor[:9] + bytes([flags]))
        self.file.write(table.ljust(3 * 2 ** (bits + 1), b"\x00"))
        self.file.write(image)

    def _finish(self):
        self.file.write(b"\x3b")
        self.file.close()

    def _cancel(self):
        if self.file is not None and not self.file.closed:
            self.file.close()


def _u16(value: int) -> bytes:
    return int(value).to_bytes(2, "little")


def _gif_single_frame(data: bytes):
    """(colour table, image descriptor, LZW code size + data sub-blocks) of a GIF's first
    image; the table is the image's local one if it has one, else the global one."""
    if data[:3] != b"GIF":
        raise MediaError("the GIF encoder returned something else")
    flags = data[10]
    pos = 13
    table = b""
    if flags & 0x80:
        size = 3 * 2 ** ((flags & 7) + 1)
        table = data[pos:pos + size]
        pos += size
    while pos < len(data):
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        elif block == 0x2C:
            descriptor = data[pos:pos + 10]
            local = descriptor[9]
            pos += 10
            if local & 0x80:
                size = 3 * 2 ** ((local & 7) + 1)
                table = data[pos:pos + size]
                pos += size
            start = pos
            pos += 1  # LZW minimum code size
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
            return table, descriptor, data[start:pos]
        else:
            break
    raise MediaError("the GIF encoder wrote no image")
