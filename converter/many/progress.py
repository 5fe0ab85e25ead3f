"""animate-many's progress line: jobs done, failed and running, and the frames per second of
all workers together (the finished jobs' frames over the run's time)."""
from __future__ import annotations

from ..animation.progress import ProgressBar


class JobsBar(ProgressBar):
    """animation.progress.ProgressBar (one line redrawn on a terminal, a line now and then
    in a log) counting jobs: `count` is the jobs ended, ok or failed."""

    def __init__(self, total: int, stream=None, skipped: int = 0):
        super().__init__("animate-many", total, stream=stream)
        self.failed = self.running = self.frames = 0
        self.skipped = skipped

    def started(self):
        self.running += 1
        self.update(0)

    def ended(self, result: dict | None):
        """A job ended (None: lost with its worker, to be retried)."""
        self.running -= 1
        if result is not None and result["status"] == "ok":
            self.frames += result.get("frames", 0)
        elif result is not None:
            self.failed += 1
        self.update(0 if result is None else 1)

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.frames / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        elapsed = self.elapsed()
        done = min(self.count / self.total, 1.0) if self.total else 1.0
        bar = "[" + "#" * int(done * 20) + "." * (20 - int(done * 20)) + "]"
        skipped = f", {self.skipped} done before" if self.skipped else ""
        return (f"{self.label} {bar} {self.count}/{self.total} jobs ({self.failed} failed, "
                f"{self.running} running{skipped}), {self.rate():.1f} frames/s, "
                f"{int(elapsed) // 60}:{int(elapsed) % 60:02d}")
