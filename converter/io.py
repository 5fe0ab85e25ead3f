"""Files written whole or not at all, and their digests."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path, data: bytes | None = None, *, writer=None, suffix: str = ".tmp") -> Path:
    """Write `data` (or call `writer(file)`) through a temporary file in the same directory,
    fsync and rename: never a half file (mode 0644, like the archive's members)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if writer is None:
                f.write(data)
            else:
                writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def json_text(data) -> str:
    """Stable JSON: sorted keys, one space of indent, UTF-8, a final newline."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path, data):
    write_atomic(path, json_text(data).encode())


def pid_alive(pid) -> bool:
    """Whether process `pid` may be running: what it left half-written is not stale yet
    (an unparsable pid is no process; one we may not signal, or out of range, counts as
    alive, to be safe)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except (PermissionError, OverflowError):
        return True
    return True
