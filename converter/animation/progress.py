"""A small progress line on stderr: frames, the end-to-end and inference rates, elapsed
time."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class ProgressBar:
    """A small progress bar on stderr: frames, frames/s, elapsed time.

    On a terminal it redraws one line in place; elsewhere (logs, pipes) it prints a line
    every `log_every` seconds and a summary line at the end. frames/s is end to end: the
    frames done over the time since `start` (a time.perf_counter() value; default: now).
    With `model` (a TimedBackend), the inference rate too: the frames generated over the
    seconds spent in the model calls.
    """

    def __init__(self, label: str, total: int | None = None, approximate: bool = False,
                 stream=None, log_every: float = 10.0, start: float | None = None,
                 model=None):
        self.label, self.total, self.approximate = label, total, approximate
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self.model = model
        self.count = 0
        self.last = time.perf_counter()
        self.start = self.last if start is None else start
        self.end = None  # set by close(): the numbers stop there
        self.drawn = False

    def elapsed(self) -> float:
        return (self.end or time.perf_counter()) - self.start

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.count / elapsed if elapsed > 0 else 0.0

    def inference_rate(self) -> float | None:
        if self.model is None:
            return None
        return self.model.frames / self.model.seconds if self.model.seconds > 0 else 0.0

    def text(self) -> str:
        elapsed = self.elapsed()
        total = "" if self.total is None else f"/{'~' if self.approximate else ''}{self.total}"
        bar = ""
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "[" + "#" * int(done * 20) + "." * (20 - int(done * 20)) + f"] {done:4.0%} "
        inference = "" if self.model is None else \
            f" (inference {self.inference_rate():.1f} frames/s)"
        return (f"{self.label} {bar}{self.count}{total} frames, {self.rate():.1f} frames/s"
                f"{inference}, {int(elapsed) // 60}:{int(elapsed) % 60:02d}")

    def update(self, n: int = 1):
        self.count += n
        now = time.perf_counter()
        if self.tty and now - self.last >= 0.1:
            self.stream.write("\r\033[K" + self.text())
            self.stream.flush()
            self.last, self.drawn = now, True
        elif not self.tty and now - self.last >= self.log_every:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self.last = now

    def close(self, ok: bool = True):
        """Finish the line: the summary when ok, else just end what was drawn."""
        self.end = time.perf_counter()
        if ok:
            prefix = "\r\033[K" if self.tty else ""
            self.stream.write(prefix + self.text() + "\n")
        elif self.drawn:
            self.stream.write("\n")
        self.stream.flush()


class TimedBackend:
    """A backend whose model calls add their wall time to `seconds`, and generate the
    frames it made to `frames` (the inference rate); anything else passes through."""
    CALLS = ("kp_detector", "process_kp_driving", "generate")  # those of a frame, as in bench

    def __init__(self, backend):
        self.backend, self.seconds, self.frames = backend, 0.0, 0

    def __getattr__(self, name):
        value = getattr(self.backend, name)
        if name not in self.CALLS:
            return value

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                result = value(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
            if name == "generate":
                self.frames += len(result)
            return result
        return timed


@contextmanager
def progress(*args, **kwargs):
    """A ProgressBar as a context: the summary line on success, a clean line end on error."""
    bar = ProgressBar(*args, **kwargs)
    try:
        yield bar
    except BaseException:
        bar.close(ok=False)
        raise
    bar.close()
