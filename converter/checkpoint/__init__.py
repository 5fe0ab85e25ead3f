"""Read training checkpoints into numpy arrays without ever running code from the file.

A checkpoint is a torch.save'd dict of its model family's networks' state dicts
(families.Family.networks: FOMM's {'generator', 'kp_detector'}, TPSMM's {'kp_detector',
'dense_motion_network', 'inpainting_network', 'avd_network'}) and entries inference does
not use (a discriminator, TPSMM's bg_predictor, 'optimizer_*', 'epoch', ...: reported as
ignored, never converted). torch.save has two serialisations:
- legacy (torch < 1.6, the official FOMM files): five pickles back to back (magic number,
  protocol version, sys_info, the object, the list of storage keys), then each storage
  as an int64 element count followed by its raw bytes, in the order of that list;
- zip: an archive whose single top-level folder holds data.pkl (the object), byteorder
  and data/<key> (raw storage bytes).
In both, tensors are pickled as calls to torch._utils._rebuild_tensor_v2 on a
"persistent id" that names the storage.

Our own reader is a pickle.Unpickler that resolves only the handful of globals a
checkpoint needs, to stand-ins that never import torch. It always reads the object
first, without reading any tensor data, and refuses what breaks a bound (limits.py):
storages the file does not hold, zip members that inflate, tensors too large or
reaching outside their storage, pickles too large or nested too deep. Then, with torch
importable, torch.load(weights_only=True) reads the data; otherwise (the lite runtime)
our reader does. Both give identical arrays, every float weight finite.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..families import DEFAULT, family as family_row
from ..io import file_sha256
from .common import LEGACY_MAGIC, LEGACY_PROTOCOL, SYNTHETIC_KEY, SYNTHETIC_TAG, CheckpointError
from .sniff import _check_file, _sniff

__all__ = ["Checkpoint", "CheckpointError", "LEGACY_MAGIC", "LEGACY_PROTOCOL",
           "SYNTHETIC_KEY", "SYNTHETIC_TAG", "checkpoint_from_object", "load_checkpoint",
           "state_dict_sha256", "weights_sha256"]


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    sha256: str | None  # of the file bytes (None: made in memory, no file)
    family: str  # the model family whose networks were read
    # network -> its state dict (numpy arrays in state_dict order, 'module.' prefix
    # stripped), in the family's order
    networks: "dict[str, OrderedDict[str, np.ndarray]]"
    ignored: list[str]  # top-level entries not used (discriminator, optimizers, epoch, ...)
    synthetic: bool  # written by `fomm-convert synth`

    def __getattr__(self, name: str):
        """A network's state dict by its name: checkpoint.kp_detector."""
        networks = self.__dict__.get("networks", {})
        if name in networks:
            return networks[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or network {name!r}")


def state_dict_sha256(sd) -> str:
    """SHA-256 over key.encode('utf-8') + C-order little-endian tensor bytes, in order."""
    digest = hashlib.sha256()
    for key, value in sd.items():
        value = np.asarray(value)
        digest.update(key.encode("utf-8"))
        digest.update(value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    return digest.hexdigest()


def weights_sha256(checkpoint: Checkpoint) -> dict:
    """{network: state_dict_sha256} of its networks: what a bundle records of its weights
    and checks a checkpoint against."""
    return {net: state_dict_sha256(sd) for net, sd in checkpoint.networks.items()}


def checkpoint_from_object(path, obj, family: str = DEFAULT) -> Checkpoint:
    """A Checkpoint of `family` from a torch.save-able object in memory (torch tensors),
    checked as a file's would be; `path` is the file it stands for, in messages."""
    import torch

    from .extract import _extract
    top = _extract(Path(path), obj, lambda v: isinstance(v, torch.Tensor),
                   lambda t: t.detach().cpu().numpy(), family_row(family))
    return _checkpoint(Path(path), None, family, top)


def load_checkpoint(path, use_torch: bool | None = None, family: str = DEFAULT) -> Checkpoint:
    """Load the state dicts of a checkpoint's networks (those of `family`, a model family's
    name) as numpy arrays.

    use_torch: None uses torch when it is importable, True/False force one reader.
    Raises CheckpointError for anything that is not a readable checkpoint of the family.
    """
    path = Path(path)
    _check_file(path)
    fmt = _sniff(path)
    if use_torch is None:
        use_torch = _torch_importable()
    if use_torch:
        from .with_torch import _load_with_torch as read
    else:
        from .unpickler import _load_without_torch as read
    top = read(path, fmt, family_row(family))
    return _checkpoint(path, file_sha256(path), family, top)


def _checkpoint(path: Path, sha256, family: str, top: dict) -> Checkpoint:
    return Checkpoint(path=path, sha256=sha256, family=family, networks=top["nets"],
                      ignored=top["ignored"], synthetic=top["synthetic"])


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
