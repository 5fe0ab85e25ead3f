"""The one base of every error a user can cause: each command reports it as one line."""
from __future__ import annotations

import reprlib

from .limits import ERROR_VALUE_CHARS


class FommError(Exception):
    """A refusal or failure the user can act on; str() is the whole message, one line."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cut(text, limit: int = ERROR_VALUE_CHARS) -> str:
    """Text for a one-line message: white space folded, at most `limit` characters ('...'
    where it was cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shown(value, limit: int = ERROR_VALUE_CHARS) -> str:
    """A value from an input for a message, by cut(): its repr, bounded while it is made
    (reprlib: 3 levels, 6 items, long strings and numbers cut in the middle), so a hostile
    megabyte string or deep structure costs nothing; a repr that fails (an integer of over
    4300 digits) gives its type's name."""
    bounded = reprlib.Repr()
    bounded.maxlevel = 3
    bounded.maxstring = bounded.maxlong = bounded.maxother = limit
    try:
        return cut(bounded.repr(value), limit)
    except Exception:
        return type(value).__name__


class FommWarning(UserWarning):
    """What is accepted but probably not what the user meant: the CLI prints it as one
    line ("warning: ..."); API callers get a Python warning they can filter."""


def warn(text: str):
    import warnings
    warnings.warn(text, FommWarning, stacklevel=3)
