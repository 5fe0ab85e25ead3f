"""The networks' state dicts and the bookkeeping entries of a loaded top-level object: which
entries are networks is the model family's (families.Family.networks)."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from ..errors import shown
from .bounds import _check_finite, _where
from .common import SYNTHETIC_KEY, SYNTHETIC_TAG, CheckpointError, _listed


def _extract(path: Path, obj, is_tensor, to_array, family) -> dict:
    """The networks' state dicts (arrays) and the bookkeeping entries of a loaded object."""
    return _arrays(path, _entries(path, obj, is_tensor, family),
                   lambda net, key, v: to_array(v))


def _entries(path: Path, obj, is_tensor, family) -> dict:
    """{'nets': {net: [(key, key in the file, tensor)]}, 'ignored', 'synthetic'}: the
    object's layout checked against the family's networks, its tensors not yet read."""
    networks, what = family.networks, f"a {family.title} checkpoint"
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not {what}: the file holds an object of "
                              f"type {_kind(obj, is_tensor)}, expected a dict with "
                              f"{_listed(networks)}")
    missing = [net for net in networks if net not in obj]
    if missing:
        if obj and all(is_tensor(v) for v in obj.values()):
            raise CheckpointError(f"{path}: wrong model: a bare state_dict (first key "
                                  f"{shown(next(iter(obj)))}), expected {what} "
                                  f"with {_listed(networks)}")
        entries = ", ".join(shown(k) for k in list(obj)[:8]) or "none"
        raise CheckpointError(f"{path}: wrong model: no {' or '.join(map(repr, missing))} "
                              f"entry (entries: {entries})")
    marker = obj.get(SYNTHETIC_KEY)
    synthetic = isinstance(marker, dict) and marker.get("generator") == SYNTHETIC_TAG
    nets = {net: _state_dict(path, net, obj[net], is_tensor) for net in networks}
    ignored = [str(k) for k in obj
               if k not in networks and not (synthetic and k == SYNTHETIC_KEY)]
    return dict(nets=nets, ignored=ignored, synthetic=synthetic)


def _state_dict(path, net, sd, is_tensor) -> list:
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: '{net}' is not a state dict "
                              f"({_kind(sd, is_tensor)})")
    keys = list(sd)
    bad = next((k for k in keys if not isinstance(k, str)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: '{net}' has a non-string key {shown(bad)}")
    # nn.DataParallel prefixes every key with 'module.'.
    strip = bool(keys) and all(k.startswith("module.") for k in keys)
    out = []
    for key, value in sd.items():
        if not is_tensor(value):
            raise CheckpointError(f"{path}: '{net}' entry {shown(key)} is not a tensor "
                                  f"({_kind(value, is_tensor)})")
        out.append((key[len("module."):] if strip else key, key, value))
    return out


def _arrays(path: Path, top: dict, to_array) -> dict:
    """{'nets': {net: arrays}, 'ignored', 'synthetic'}: each network's arrays from
    to_array(net, key in the file, tensor), every float weight finite."""
    nets = {}
    for net, entries in top["nets"].items():
        nets[net] = OrderedDict()
        for key, original, value in entries:
            array = to_array(net, original, value)
            _check_finite(path, _where(net, original), array)
            nets[net][key] = array
    return dict(nets=nets, ignored=top["ignored"], synthetic=top["synthetic"])


def _kind(value, is_tensor) -> str:
    return "tensor" if is_tensor(value) else type(value).__name__
