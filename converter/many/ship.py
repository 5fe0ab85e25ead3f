"""Bytes that travel between the driver and workers that share no filesystem (the Ray
engine): the bundle as a tar, an output as its bytes (a file) or its frames (a PNG
folder), put in place by the driver as a local worker's writer would."""
from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from ..io import output_lock, refuse_replacing, write_atomic
from ..media.errors import MediaError
from ..media.png_dir import FRAME_NAME, check_frames_only, move_into_place


def pack_folder(folder: Path) -> bytes:
    """An uncompressed tar of a folder's files (a bundle: its model files do not deflate)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return data.getvalue()


def unpack_folder(data: bytes, folder: Path):
    """The tar's regular files and folders under `folder` (tarfile's data filter: no link,
    device, absolute path or '..'); what it holds is checked by whoever reads it."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.extractall(folder, filter="data")


def pack_output(path: Path):
    """An output's bytes, or {frame name: bytes} for a PNG folder."""
    if path.is_dir():
        return {frame.name: frame.read_bytes() for frame in sorted(path.iterdir())}
    return path.read_bytes()


def place_output(out: Path, payload, force: bool):
    """A worker's output written at `out` on this machine, whole or not at all, replacing
    what is there only with `force` (the rules of animate's writers: media/writer.py)."""
    out = Path(out)
    if isinstance(payload, dict):
        bad = next((name for name in payload if not FRAME_NAME.match(name)), None)
        if bad is not None or not payload:
            raise MediaError(f"{out}: the worker sent no frames or a file '{bad}'")
        check_frames_only(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"{out}: cannot create its folder ({exc.strerror})") from None
    with output_lock(out, "animate-many"):
        if isinstance(payload, bytes):
            refuse_replacing(out, force)
            write_atomic(out, payload, suffix=out.suffix)
            return
        refuse_replacing(out, force, out.is_dir() and any(out.iterdir()))
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            for name, data in payload.items():
                (tmp / name).write_bytes(data)
            move_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
