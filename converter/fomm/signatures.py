"""FOMM's models and signatures (the family interface's `signatures`): converter/signatures.py."""
from __future__ import annotations

from ..signatures import MODELS, SIGNATURE_NAMES, signatures

__all__ = ["MODELS", "SIGNATURE_NAMES", "signatures"]
