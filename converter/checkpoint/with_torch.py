"""The torch reader: torch.load(weights_only=True), mapped onto our errors."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from .common import _SUPPORTED_DTYPES, CheckpointError, _describe, _one_line, _refusal
from .extract import _extract


def _load_with_torch(path: Path, fmt) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights_only refusal names the global in a long multi-line message.
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if refused:
            name = refused.group(1)  # torch drops the 'builtins.' of builtins
            raise CheckpointError(_refusal(path, name if "." in name else f"builtins.{name}")) \
                from None
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None

    def to_array(tensor):
        try:
            array = tensor.detach().cpu().numpy()
        except TypeError:  # e.g. bfloat16, which numpy lacks
            array = None
        if array is None or array.dtype not in _SUPPORTED_DTYPES:
            raise CheckpointError(f"{path}: unsupported tensor dtype {tensor.dtype}")
        return np.array(array, order="C")

    return _extract(path, obj, lambda v: isinstance(v, torch.Tensor), to_array)
