"""The one error of media input and output."""
from __future__ import annotations

from ..errors import FommError


class MediaError(FommError):
    """An input cannot be read or an output cannot be written (one-line message)."""
