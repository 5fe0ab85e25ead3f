"""Bounds on what an input may make us do, checked before the work: each a stated number
with the reason for it (README, "Limits"). Exceeding one is a one-line refusal."""
from __future__ import annotations
