"""Files written whole or not at all, and their digests."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import FommError


class OutputBusy(FommError):
    """Another process is writing the same output."""


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


class OutputExists(FommError):
    """An output that is there already, and no --force."""


def refuse_replacing(out, force: bool, replaces: bool | None = None, error=OutputExists):
    """Nothing a user has is replaced without --force (`replaces`: whether writing `out`
    would replace something; default: whether it exists)."""
    out = Path(out)
    if replaces is None:
        replaces = out.exists() or out.is_symlink()
    if replaces and not force:
        raise error(f"{out} exists; pass --force to replace it")


def check_folder_output(out, force: bool, foreign, error=OutputExists):
    """A folder output (a bundle, a web site) may be written: absent, or, with --force, one
    this program wrote. `foreign(out)` says why an existing folder is not one of ours
    ("is not a ...") or None; such a folder, a file or a link is never replaced, whatever
    --force says. Refusals are `error`s."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise error(f"{out}: exists and is not a folder; choose another --out")
    if out.exists():
        reason = foreign(out)
        if reason is not None:
            raise error(f"{out}: exists and {reason}; choose another --out")
    refuse_replacing(out, force, error=error)


@contextmanager
def output_lock(out, writer: str):
    """An exclusive flock on .<name>.lock beside `out`, held while the block runs: a second
    `writer` (a build, an animate, a predict) of the same output fails at once instead of
    both writing and the last one winning. The lock file goes when the block ends; a folder
    that cannot hold it raises the OSError, for the caller to word."""
    out = Path(out)
    path = out.parent / f".{out.name}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(f"{out}: another {writer} is writing it (it holds {path}); "
                             f"wait for it to end") from None
        try:  # the file we locked is still the one at `path` (not unlinked by its holder)
            current = os.stat(path, follow_symlinks=False)
            if (current.st_ino, current.st_dev) == os.fstat(fd)[1:3]:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        finally:
            os.close(fd)
