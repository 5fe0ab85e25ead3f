"""The runtimes' own log lines, hidden from a command's output unless --verbose.

TensorFlow (absl: "I0000 ... cudart_stub.cc] Could not find cuda drivers", "E0000 ...
failed call to cuInit") and LiteRT ("INFO: Created TensorFlow Lite XNNPACK delegate for
CPU.") write from C++ straight to file descriptor 2, past Python and past their own log
level settings, and read like errors. While a command runs, fd 2 is a pipe that a thread
copies to the real stderr line by line, without those lines; everything else (our
progress, warnings, a traceback) passes as it comes.
"""
from __future__ import annotations

import os
import re
import select
import sys
import threading
from contextlib import contextmanager

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.+-]+:\d+\] "  # absl (TF, XLA)
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: "  # the TFLite/LiteRT logger's INFO level
    rb"|\[(?:cpuinfo_utils|threadpool)\.cpp:\d+\] )")  # ExecuTorch's CPU probe, its pool
# A line's start is held this long for its end (LiteRT writes "INFO: " and the message
# apart); a progress line ending in "\r" passes at once.
PARTIAL_WAIT = 0.2


@contextmanager
def quiet_native_logs(enabled: bool = True):
    if not enabled:
        yield
        return
    try:
        real = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to filter
        yield
        return
    read, write = os.pipe()
    sys.stderr.flush()
    os.dup2(write, 2)
    os.close(write)
    pump = threading.Thread(target=_copy_without_logs, args=(read, real), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer here: the pump sees its end
        pump.join(timeout=2)  # a child still holding the pipe must not hold us
        os.close(real)


def _copy_without_logs(read: int, real: int):
    pending = b""
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], PARTIAL_WAIT if pending else None)
            if not ready:  # a line's start and no end for a while: it is not a log line
                os.write(real, pending)
                pending = b""
                continue
            chunk = pipe.read(65536)
            if not chunk:
                break
            lines = re.split(rb"(?<=[\n\r])", pending + chunk)
            pending = lines.pop()  # b"" after a complete line
            kept = b"".join(line for line in lines if not NATIVE_LOG_LINE.match(line))
            if kept:
                os.write(real, kept)
        if pending:
            os.write(real, pending)
