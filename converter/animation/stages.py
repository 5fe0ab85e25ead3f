"""A job's stages side by side: a producer thread runs an iterable ahead of the main
thread, a consumer thread takes items behind it, each through a bounded queue, so that
decoding, inference and encoding overlap (the runtimes and the pipes to ffmpeg release the
GIL) while at most `bound` items wait between two stages, however long the video.

An error in any stage stops the others: the stage threads look at a shared stop flag
whenever they wait, the main thread's next wait raises the stage's error (the same
exception, message unchanged), and leaving the `Stages` context, normally or by any
exception (Ctrl-C, SIGTERM's SystemExit included), stops and joins every thread before the
caller cleans up (e.g. removes a half-written output).
"""
from __future__ import annotations

import queue
import threading

_POLL = 0.05  # seconds between looks at the stop flag while a queue is full or empty
_END = object()  # the last item of a queue


class Stages:
    """The context of a few stage threads; see the module's docstring."""

    def __init__(self):
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None  # the first stage thread's error

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if kind is None and self.error is not None:
            raise self.error
        return False

    def ahead(self, iterable, bound: int, name: str):
        """An iterator over `iterable`'s items, which a thread pulls at most `bound` items
        ahead of it (plus the one it is making). The iterable's close() (a generator's
        cleanup) runs in that thread when it ends or is stopped."""
        items = queue.Queue(bound)

        def produce():
            source = iter(iterable)
            try:
                for item in source:
                    if not self._put(items, item):
                        return
                    del item  # not kept while the next one is made
                self._put(items, _END)
            finally:
                getattr(source, "close", lambda: None)()
        self._start(produce, name)
        return self._drain(items)

    def behind(self, consume, bound: int, name: str) -> "Feed":
        """A Feed whose items a thread passes to consume(item), in order; at most `bound`
        wait (plus the one being consumed)."""
        items = queue.Queue(bound)

        def run():
            while (item := self._get(items)) is not _END:
                consume(item)
                del item
        return Feed(self, items, self._start(run, name))

    def _start(self, work, name: str) -> threading.Thread:
        def run():
            try:
                work()
            except BaseException as exc:  # handed to the main thread
                if self.error is None:
                    self.error = exc
                self._stop.set()
        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _put(self, items: queue.Queue, item) -> bool:
        """Put, waiting while the queue is full; False if the stages were stopped."""
        while not self._stop.is_set():
            try:
                items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                pass
        return False

    def _get(self, items: queue.Queue):
        """The next item, waiting while the queue is empty; _END if the stages were stopped."""
        while not self._stop.is_set():
            try:
                return items.get(timeout=_POLL)
            except queue.Empty:
                pass
        return _END

    def check(self):
        """In the main thread: raise a stage's error, or a stop the main thread did not ask
        for."""
        if self.error is not None:
            raise self.error
        if self._stop.is_set():
            raise RuntimeError("the stages were stopped")

    def _drain(self, items: queue.Queue):
        while (item := self._get(items)) is not _END:
            yield item
            del item
        self.check()


class Feed:
    """The main thread's end of a consumer stage: put() items, then close() to wait until
    every one is consumed."""

    def __init__(self, stages: Stages, items: queue.Queue, thread: threading.Thread):
        self.stages, self.items, self.thread = stages, items, thread

    def put(self, item):
        if not self.stages._put(self.items, item):
            self.stages.check()

    def close(self):
        self.put(_END)
        self.thread.join()
        self.stages.check()
