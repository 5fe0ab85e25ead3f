"""The one base of every error a user can cause: each command reports it as one line."""
from __future__ import annotations


class FommError(Exception):
    """A refusal or failure the user can act on; str() is the whole message, one line."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class FommWarning(UserWarning):
    """What is accepted but probably not what the user meant: the CLI prints it as one
    line ("warning: ..."); API callers get a Python warning they can filter."""


def warn(text: str):
    import warnings
    warnings.warn(text, FommWarning, stacklevel=3)
