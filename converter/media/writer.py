"""The frame writers' common part: everything goes into a temporary sibling of the output,
renamed into place only when every frame is written, so a failure (or a kill: the next run
removes its leftovers) never leaves a half-written output."""
from __future__ import annotations

import glob
import os
import re
import shutil
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..errors import one_line
from ..io import OutputBusy, OutputExists, output_lock, pid_alive, refuse_replacing
from .errors import MediaError
from .pixels import to_uint8


class FrameWriter:
    """Writes into a temporary sibling; commit() renames it into place, abort() removes it.

    As a context manager: commit on success, abort on any exception. Subclasses provide
    _write(frame) and may override _create_tmp, _finish, _cancel and _move_into_place.
    """
    kind = ""

    def __init__(self, out, fps: float, force: bool = False):
        self.out = Path(out)
        self.fps = float(fps)
        self.count = 0
        parent = self.out.parent
        # Folders made for the output are removed again if it is never written.
        self.made = [p for p in (parent, *parent.parents) if not p.exists()]
        self.lock = ExitStack()  # held until commit or abort: one writer per output
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._remove_made()
            raise MediaError(f"{self.out}: cannot create its folder ({exc.strerror})") from None
        try:
            self.lock.enter_context(output_lock(self.out, "process"))
        except (OSError, OutputBusy) as exc:
            self._remove_made()
            raise MediaError(str(exc) if isinstance(exc, OutputBusy) else
                             f"{self.out}: cannot write there ({exc.strerror})") from None
        try:
            refuse_replacing(self.out, force, self._replaces())
        except OutputExists as exc:
            self.lock.close()
            raise MediaError(str(exc)) from None
        remove_stale_partials(self.out)
        self.tmp = parent / f".{self.out.name}.partial-{os.getpid()}{self.out.suffix}"
        try:
            self._create_tmp()  # an unwritable place fails now, before any work
        except OSError as exc:
            self.lock.close()
            self._remove_made()
            raise MediaError(f"{self.out}: cannot write there ({exc.strerror})") from None

    def _replaces(self) -> bool:
        """Whether writing would replace something the user has."""
        return self.out.exists() or self.out.is_symlink()

    def _create_tmp(self):
        self.tmp.touch()

    def _remove_made(self):
        for path in self.made:  # innermost first
            try:
                path.rmdir()
            except OSError:
                break

    def write(self, frame: np.ndarray):
        frame = np.ascontiguousarray(frame if frame.dtype == np.uint8 else to_uint8(frame))
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise MediaError(f"{self.out}: frames must be (H, W, 3), got {frame.shape}")
        try:
            self._write(frame)
        except OSError as exc:  # a full disk (ENOSPC), a file size limit (EFBIG), ...
            raise MediaError(f"{self.out}: cannot write it ({_reason(exc)})") from None
        self.count += 1

    def commit(self):
        if self.count == 0:
            raise MediaError(f"{self.out}: no frames to write")
        try:
            self._finish()
        except OSError as exc:
            raise MediaError(f"{self.out}: cannot write it ({_reason(exc)})") from None
        self._move_into_place()
        self.lock.close()

    def _move_into_place(self):
        try:
            os.replace(self.tmp, self.out)
        except OSError as exc:
            raise MediaError(f"{self.out}: cannot write it ({exc.strerror})") from None

    def abort(self):
        try:
            self._cancel()
        except OSError:  # e.g. a full disk again while closing: the output goes anyway
            pass
        finally:
            if self.tmp.is_dir():
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                self.tmp.unlink(missing_ok=True)
            self.lock.close()
            self._remove_made()

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
        return False

    def _write(self, frame):
        raise NotImplementedError

    def _finish(self):
        pass

    def _cancel(self):
        pass


def _reason(exc: OSError) -> str:
    return exc.strerror or one_line(exc)


def remove_stale_partials(out: Path):
    """Temporary outputs of killed runs (their process is gone) beside `out`."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.partial-(\d+)")
    for path in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
        match = pattern.match(path.name)
        if match and not pid_alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


