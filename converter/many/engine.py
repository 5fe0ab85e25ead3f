"""What the scheduler (many/run.py) asks of an engine, local (local.py) or Ray (ray_engine.py):

    engine.free() -> int       workers without a job
    engine.submit(task)        a job (work.py's dict) to a free worker
    engine.wait() -> [(task, result | Lost)]   blocks until a job ends or is lost
    engine.stop()              every worker stopped (a job underway unwinds)

A job is lost when its worker dies under it (kill -9, out of memory, a node gone); the
scheduler retries it elsewhere, up to its bound.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import FommError

ENGINES = ("local", "ray")


class SetupFailed(FommError):
    """A worker could not load the bundle or its runtime (every worker would fail alike)."""


@dataclass
class Lost:
    reason: str  # one line: how the worker died


class Restarts:
    """How many dead workers may still be replaced: a bound, so that a worker that dies
    whatever it runs is not started forever."""

    def __init__(self, left: int):
        self.left = left

    def allow(self, alive: int) -> bool:
        """Whether to start a replacement; with none left and no worker alive, the run
        cannot go on."""
        if self.left <= 0:
            if not alive:
                raise SetupFailed("every worker died; see the results file")
            return False
        self.left -= 1
        return True
