"""The torch reader: our own reader's checks first (globals, every bound, no data read),
then torch.load(weights_only=True), mapped onto our errors."""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np

from .bounds import _where
from .common import _SUPPORTED_DTYPES, CheckpointError, _describe, _one_line, _refusal
from .extract import _arrays
from .unpickler import _scan


def _load_with_torch(path: Path, fmt, family) -> dict:
    # torch.load allocates every storage the object declares before it reads a byte of
    # it: our reader checks the file holds them (and the tensors' bounds) first.
    top = _scan(path, fmt, family, lambda top: top)
    obj = _torch_load(path, fmt)

    def to_array(net, key, expected):
        import torch
        tensor = obj[net][key] if isinstance(obj, dict) and isinstance(obj.get(net), dict) \
            else None
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != expected.size \
                or tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise CheckpointError(f"{path}: {_where(net, key)}: torch read it differently "
                                  "(did the file change while it was read?)")
        try:
            array = tensor.detach().numpy()
        except TypeError:  # e.g. bfloat16, which numpy lacks
            array = None
        if array is None or array.dtype not in _SUPPORTED_DTYPES:
            raise CheckpointError(f"{path}: unsupported tensor dtype {tensor.dtype}")
        return np.array(array, order="C")

    return _arrays(path, top, to_array)


def _torch_load(path: Path, fmt):
    import torch

    try:
        with warnings.catch_warnings():  # e.g. about pickle protocols: our line says enough
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_unpickling_message(path, fmt, str(exc))) from None
    except Exception as exc:
        raise CheckpointError(f"{path}: truncated or corrupt {_describe(fmt)} "
                              f"({_one_line(exc)})") from None


# torch's weights-only refusals open with this and go on to advise an unsafe load.
_WEIGHTS_ONLY = "Weights only load failed"


def _unpickling_message(path: Path, fmt, text: str) -> str:
    """One line for torch's UnpicklingError: a weights-only refusal says why, never
    torch's advice to load with weights_only=False; anything else is a damaged file."""
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        name = refused.group(1)  # torch drops the 'builtins.' of builtins
        return _refusal(path, name if "." in name else f"builtins.{name}")
    if _WEIGHTS_ONLY in text:
        reason = text.rsplit("WeightsUnpickler error:", 1)[-1].replace(_WEIGHTS_ONLY + ".", "")
        lines = [line.strip() for line in reason.splitlines()
                 if line.strip() and "weights_only" not in line]
        reason = re.split(r"(?<=\.)\s+(Please|Check|Do it)\b", lines[0])[0] if lines \
            else "an instruction it does not accept"
        return (f"{path}: refused to load: torch's weights-only reader rejects it ({reason}); "
                "it accepts only what cannot run code")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (f"{path}: truncated or corrupt {_describe(fmt)} "
            f"(UnpicklingError: {lines[0] if lines else 'no detail'})")
