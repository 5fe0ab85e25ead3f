"""Writing a bundle: under a lock, in a staging folder beside it, moved into place whole.

    with staging(final, archive, force) as stage:   # checks and locks before any work
        ... write stage.bundle, use stage.scratch; stage.drop_scratch() ...
    # on leaving without error: the archive is written (inside the staging folder, under
    # the bundle's final name), the bundle is moved into place, then the archive

The staging folder .<name>.staging-<pid> holds the bundle being made, the build's scratch
space and the archive, so an interrupted build leaves nothing that looks like a bundle,
and what a killed one (kill -9) leaves is removed by the next build into the same place.
Only one build writes to a place at a time (an flock on .<name>.lock beside it), and only
one of our bundles is ever replaced (--force). The archive is the same byte for byte when
the bundle is.
"""
from __future__ import annotations

import ctypes
import errno
import gzip
import json
import os
import shutil
import tarfile
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import one_line
from ..io import check_folder_output, output_lock, pid_alive, write_atomic
from .manifest import BundleError
from .open import not_a_bundle

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2  # renameat2(2) flags (Linux)
COMMIT = "commit.json"  # in a staging folder: the bundle is being moved into place
STAGED_ARCHIVE = "archive.tar.gz"


class Staging:
    def __init__(self, final: Path, archive: Path):
        self.final, self.archive = final, archive
        self.root = final.parent / f".{final.name}.staging-{os.getpid()}"
        self.bundle, self.scratch = self.root / "bundle", self.root / "scratch"

    def drop_scratch(self):
        shutil.rmtree(self.scratch, ignore_errors=True)


@contextmanager
def staging(final: Path, archive: Path, force: bool):
    """Take the lock, remove what killed builds left, check that `final` may be written
    (absent, or one of our bundles and `force`) and that the archive's folder is writable,
    and yield a Staging: committed on success, removed with everything in it on failure."""
    final, archive = Path(final), Path(archive)
    created = _make_parent(final.parent) + _make_parent(archive.parent)
    try:
        with _staged(final, archive, force) as stage:
            yield stage
    except BaseException:  # a failed build leaves no folder it made (artifacts/vox/)
        _remove_empty(created)
        raise


@contextmanager
def _staged(final: Path, archive: Path, force: bool):
    lock = ExitStack()
    try:
        lock.enter_context(output_lock(final, "build"))
    except OSError as exc:
        raise BundleError(f"{final.parent}: cannot write there "
                          f"({exc.strerror or one_line(exc)}); choose another --out") from None
    with lock:
        clean_stale(final)
        check_target(final, archive, force)
        _probe(archive.parent)
        stage = Staging(final, archive)
        shutil.rmtree(stage.root, ignore_errors=True)
        try:
            stage.root.mkdir()
            stage.bundle.mkdir()
            stage.scratch.mkdir()
            yield stage
            stage.drop_scratch()
            write_archive(stage.bundle, stage.root / STAGED_ARCHIVE, name=final.name)
            check_target(final, archive, force)
            _commit(stage)
        finally:
            shutil.rmtree(stage.root, ignore_errors=True)


def check_target(final: Path, archive: Path, force: bool):
    """Refuse a target that exists and is not one of our bundles (whatever `force` says),
    an existing bundle without `force`, and an archive path that is a folder."""
    check_folder_output(final, force, _foreign, BundleError)
    if final.exists():
        locked = [p for p in (final, *final.rglob("*")) if p.is_dir()
                  and not os.access(p, os.W_OK | os.X_OK)]
        if locked:
            raise BundleError(f"{locked[0]}: not writable: the bundle cannot be replaced")
    if archive.is_symlink() or archive.is_dir():
        raise BundleError(f"{archive}: exists and is not a file; choose another --out")


def _foreign(folder: Path) -> str | None:
    reason = not_a_bundle(folder)
    return None if reason is None else f"is not a fomm-convert bundle ({reason})"


def _make_parent(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; returns those it made, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"{exc.filename or folder}: cannot create the folder "
                          f"({exc.strerror or one_line(exc)})") from None
    return missing


def _remove_empty(folders: list[Path]):
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another build's, or the archive beside it), or gone
            pass


def _probe(folder: Path):
    """Fail now, before the work, if nothing can be written in `folder`."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise BundleError(f"{folder}: cannot write there ({exc.strerror or one_line(exc)}); "
                          f"choose another --out") from None


def clean_stale(final: Path):
    """Remove the staging folders of builds into `final` that are no longer running; one
    killed while moving its bundle into place has its archive moved after it first."""
    for stale in final.parent.glob(f".{final.name}.staging-*"):
        if pid_alive(stale.name.rsplit("-", 1)[-1]):
            continue
        try:
            _roll_forward(stale, final)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        shutil.rmtree(stale, ignore_errors=True)


def _roll_forward(stale: Path, final: Path):
    record = json.loads((stale / COMMIT).read_text())
    archive, staged = Path(record["archive"]), stale / STAGED_ARCHIVE
    moved = final.is_dir() and os.stat(final)[1:3] == tuple(record["bundle"])
    if (moved and staged.is_file() and archive.name == record["archive_name"]
            and archive.parent.resolve() in (final.parent.resolve(),
                                             final.parent.parent.resolve())):
        os.replace(staged, archive)


def _commit(stage: Staging):
    """Move the bundle into place (atomically exchanged with the bundle it replaces), then
    its archive; undo the first if the second fails. A kill between the two is completed
    by the next build into the same place (clean_stale)."""
    final, archive = stage.final, stage.archive
    info = os.stat(stage.bundle)
    record = {"bundle": [info.st_ino, info.st_dev], "archive": str(archive.absolute()),
              "archive_name": archive.name}
    write_atomic(stage.root / COMMIT, json.dumps(record).encode())
    replacing = final.exists()
    _move(stage.bundle, final, replacing)
    try:
        try:
            os.replace(stage.root / STAGED_ARCHIVE, archive)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(stage.root / STAGED_ARCHIVE, "rb") as src:
                write_atomic(archive, writer=lambda dst: shutil.copyfileobj(src, dst))
    except BaseException:
        if replacing:
            _move(stage.bundle, final, True)  # exchange back
        else:
            os.rename(final, stage.bundle)
        raise


def _move(src: Path, dst: Path, exchange: bool):
    """rename src -> dst, refusing to replace anything; with `exchange`, swap the two in one
    step (the old dst ends up at src). Two renames where the system has no renameat2."""
    try:
        _renameat2(src, dst, RENAME_EXCHANGE if exchange else RENAME_NOREPLACE)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            if exc.errno == errno.EEXIST:
                raise BundleError(f"{dst}: appeared while the bundle was being made; "
                                  f"nothing replaced") from None
            raise
    if not exchange:
        if os.path.lexists(dst):
            raise BundleError(f"{dst}: appeared while the bundle was being made; nothing "
                              f"replaced")
        os.rename(src, dst)
        return
    aside = src.parent / f"{src.name}.old"
    os.rename(dst, aside)
    os.rename(src, dst)
    os.rename(aside, src)


def _renameat2(src: Path, dst: Path, flags: int):
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    at_fdcwd = -100
    if function(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(src), None, str(dst))


def write_archive(bundle: Path, archive: Path, name: str | None = None):
    """A reproducible .tar.gz of the bundle under the folder name `name` (default its own):
    sorted names, zeroed times and owners."""
    bundle = Path(bundle)
    name = name or bundle.name
    with tempfile.SpooledTemporaryFile(max_size=64 << 20, dir=archive.parent) as buffer:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in [bundle, *sorted(bundle.rglob("*"))]:
                info = tar.gettarinfo(str(path), arcname=f"{name}/{path.relative_to(bundle)}"
                                      if path != bundle else name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                info.mode = 0o755 if path.is_dir() else 0o644
                if path.is_file():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)

        def gzipped(raw):
            buffer.seek(0)
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                shutil.copyfileobj(buffer, gz)
        write_atomic(archive, writer=gzipped)
