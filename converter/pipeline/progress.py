"""One line per step of a long pipeline, with the time since it started."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import click


@dataclass
class Progress:
    echo: callable = click.echo
    start: float = field(default_factory=time.perf_counter)

    def step(self, text: str):
        self.echo(f"[{time.perf_counter() - self.start:6.1f}s] {text}")
