"""The local engine: N worker processes on this machine (no service to start), each a Worker
that loads the bundle once and takes a job at a time through a pipe.

A worker that dies (kill -9, the kernel's OOM killer) is seen by its process sentinel: its
job comes back as lost, to be retried by the scheduler, and a new worker takes its place.
Workers ignore Ctrl-C: the driver stops them (SIGTERM, which unwinds a job as animate's
does, removing its half-written output) and they stop with it if it is killed.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import wait as wait_for

from .engine import Lost, Restarts, SetupFailed
from .work import Worker, describe

STOP_SECONDS = 10  # a stopped worker's time to unwind its job before SIGKILL
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Slot:
    def __init__(self, process, conn):
        self.process, self.conn, self.task = process, conn, None


class LocalEngine:
    name = "local"

    def __init__(self, setup: dict, workers: int, max_restarts: int):
        self.setup, self.restarts = setup, Restarts(max_restarts)
        self.context = multiprocessing.get_context("spawn")
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> Slot:
        mine, theirs = self.context.Pipe()
        process = self.context.Process(target=serve, args=(theirs, self.setup, os.getpid()),
                                       name="animate-many worker", daemon=True)
        process.start()
        theirs.close()
        return Slot(process, mine)

    def free(self) -> int:
        return sum(slot.task is None for slot in self.slots)

    def submit(self, task: dict):
        slot = next(slot for slot in self.slots if slot.task is None)
        slot.task = task
        slot.conn.send(task)

    def wait(self) -> list:
        """(task, result or Lost) for each job that ended; blocks until one has."""
        while True:
            ready = set(wait_for([s.conn for s in self.slots]
                                 + [s.process.sentinel for s in self.slots]))
            events = []
            for slot in list(self.slots):
                if slot.conn in ready or slot.process.sentinel in ready:
                    events += self._collect(slot)
            if events:
                return events

    def _collect(self, slot: Slot) -> list:
        events = []
        try:
            while slot.conn.poll():
                kind, body = slot.conn.recv()
                if kind == "setup-failed":
                    raise SetupFailed(body)
                events.append((slot.task, body))
                slot.task = None
        except (EOFError, OSError):
            pass
        if not slot.process.is_alive():
            slot.process.join()
            if slot.task is not None:
                events.append((slot.task, Lost(exit_reason(slot.process.exitcode))))
            self._replace(slot)
        return events

    def _replace(self, slot: Slot):
        slot.conn.close()
        self.slots.remove(slot)
        if self.restarts.allow(len(self.slots)):
            self.slots.append(self._start())

    def stop(self):
        for slot in self.slots:
            if slot.process.is_alive():
                slot.process.terminate()  # SIGTERM: the job unwinds, its output removed
        for slot in self.slots:
            slot.process.join(STOP_SECONDS)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        self.slots = []


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the worker was killed by {signal.Signals(-code).name}"
    return f"the worker exited with status {code}"


def serve(conn, setup: dict, parent: int):
    """A worker process: load the bundle, then run each job sent until the pipe closes."""
    _stop_with(parent)
    try:
        worker = Worker(**setup)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which stops the run
        conn.send(("setup-failed", describe(exc)))
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(("result", worker.run(task)))


def _stop_with(parent: int):
    """SIGTERM unwinds (a job's output is removed on the way) and comes when the driver
    dies, however it dies (Linux's parent-death signal); Ctrl-C is the driver's to act on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the signal was asked for
        sys.exit(128 + signal.SIGTERM)


def _exit_on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
    sys.exit(128 + signal.SIGTERM)
