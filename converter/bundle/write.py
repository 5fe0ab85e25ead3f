"""Writing a bundle: a staging directory renamed into place in one step, and its archive.

An interrupted build leaves nothing that looks like a bundle; the archive is the same byte
for byte when the bundle is.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from contextlib import contextmanager
from pathlib import Path

from ..io import pid_alive, write_atomic
from .manifest import BundleError


@contextmanager
def staging(final: Path, force: bool):
    """A temporary directory beside `final`, renamed to it on success, removed on failure.

    Also removes staging directories that a killed build left behind.
    """
    final = Path(final)
    if final.exists() and not force:
        raise BundleError(f"{final} exists; pass --force to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.staging-*"):
        if not pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.staging-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.replaced-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_archive(bundle: Path, archive: Path):
    """A reproducible .tar.gz of the bundle: sorted names, zeroed times and owners."""
    bundle = Path(bundle)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [bundle, *sorted(bundle.rglob("*"))]:
            info = tar.gettarinfo(str(path), arcname=f"{bundle.name}/{path.relative_to(bundle)}"
                                  if path != bundle else bundle.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)

    def gzipped(raw):
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(buffer.getvalue())
    write_atomic(archive, writer=gzipped)
