"""Which serialisation a file is, refusing early what is neither (no code runs)."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

from .bounds import _check_zip_directory
from .common import _HEAD_BYTES, LEGACY_MAGIC, CheckpointError
from .unpickler import _Unpickler


def _check_file(path: Path):
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")


def _sniff(path: Path):
    """'legacy' or ('zip', member prefix); refuses files that are neither."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupt zip archive ({exc})") from None
        # torch writes every record under one top-level folder, named after the file.
        prefixes = {i.filename[:-len("data.pkl")] for i in infos
                    if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1}
        if len(prefixes) != 1:
            raise CheckpointError(f"{path}: a zip archive but not a torch checkpoint "
                                  "(no single <folder>/data.pkl record)")
        _check_zip_directory(path, infos, path.stat().st_size)
        return "zip", prefixes.pop()
    magic = pickle.dumps(LEGACY_MAGIC, protocol=2)
    if len(head) < len(magic) and magic.startswith(head):
        raise CheckpointError(f"{path}: truncated legacy torch file ({len(head)} bytes)")
    found = False
    if head.startswith(b"\x80"):  # torch pickles with protocol >= 2, which opens with PROTO
        try:
            found = _Unpickler(io.BytesIO(head), path, None).load() == LEGACY_MAGIC
        except CheckpointError:
            raise
        except Exception:
            pass
    if not found:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch zip archive "
                              "nor a legacy torch file)")
    return "legacy"
