"""FOMM's oracle contract (the family interface's `predict`): pipeline/predict.py's
predict(), the arrays of ../shared/oracle."""
from __future__ import annotations

from ..pipeline.predict import predict

__all__ = ["predict"]
