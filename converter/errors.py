"""The one base of every error a user can cause: each command reports it as one line."""
from __future__ import annotations


class FommError(Exception):
    """A refusal or failure the user can act on; str() is the whole message, one line."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
