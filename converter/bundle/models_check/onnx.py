"""The onnx files of a bundle against what our exporter writes (models_check)."""
from __future__ import annotations


def check_format(bundle, spec, fmt) -> None:
    """Placeholder: issue 19 fills it in."""
