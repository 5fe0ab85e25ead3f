"""The two state dicts and the bookkeeping entries of a loaded top-level object."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from .common import NETWORKS, SYNTHETIC_KEY, SYNTHETIC_TAG, CheckpointError


def _extract(path: Path, obj, is_tensor, to_array) -> dict:
    """The two state dicts and the bookkeeping entries of a loaded top-level object."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a FOMM checkpoint: the file holds an object of "
                              f"type {_kind(obj, is_tensor)}, expected a dict with "
                              "'generator' and 'kp_detector'")
    missing = [net for net in NETWORKS if net not in obj]
    if missing:
        if obj and all(is_tensor(v) for v in obj.values()):
            raise CheckpointError(f"{path}: wrong model: a bare state_dict (first key "
                                  f"{next(iter(obj))!r}), expected a FOMM checkpoint with "
                                  "'generator' and 'kp_detector'")
        entries = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
        raise CheckpointError(f"{path}: wrong model: no {' or '.join(map(repr, missing))} "
                              f"entry (entries: {entries})")
    marker = obj.get(SYNTHETIC_KEY)
    synthetic = isinstance(marker, dict) and marker.get("generator") == SYNTHETIC_TAG
    nets = {net: _state_dict(path, net, obj[net], is_tensor, to_array) for net in NETWORKS}
    ignored = [str(k) for k in obj
               if k not in NETWORKS and not (synthetic and k == SYNTHETIC_KEY)]
    return dict(nets, ignored=ignored, synthetic=synthetic)


def _state_dict(path, net, sd, is_tensor, to_array) -> OrderedDict:
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: '{net}' is not a state dict "
                              f"({_kind(sd, is_tensor)})")
    keys = list(sd)
    bad = next((k for k in keys if not isinstance(k, str)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: '{net}' has a non-string key {bad!r}")
    # nn.DataParallel prefixes every key with 'module.'.
    strip = bool(keys) and all(k.startswith("module.") for k in keys)
    out = OrderedDict()
    for key, value in sd.items():
        if not is_tensor(value):
            raise CheckpointError(f"{path}: '{net}' entry {key!r} is not a tensor "
                                  f"({_kind(value, is_tensor)})")
        out[key[len("module."):] if strip else key] = to_array(value)
    return out


def _kind(value, is_tensor) -> str:
    return "tensor" if is_tensor(value) else type(value).__name__
