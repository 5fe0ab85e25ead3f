"""Seeded synthetic checkpoints: the original's layout, our own random weights, for every
model family (its package's `synth` module draws the values: families.py).

They stand in for trained checkpoints in tests and demos: every key and shape of the
spec's networks, values drawn so that the models are numerically healthy. Each tensor
comes from key_rng(seed, network, key) = numpy.random.default_rng([seed,
crc32('<net>/<key>')]), so it depends only on the seed, the network and the key, never on
the order of generation.
"""
from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .checkpoint import SYNTHETIC_KEY, SYNTHETIC_TAG
from .errors import FommError, one_line
from .families import family_of
from .io import write_atomic
from .paths import CHECKPOINTS, synthetic_checkpoint_name
from .spec import Spec


def make_checkpoint(spec: Spec, seed: int) -> dict:
    """The checkpoint dict for a spec and seed (torch tensors, the original's layout),
    marked as ours."""
    checkpoint = family_of(spec).facet("synth").make_checkpoint(spec, seed)
    return {**checkpoint, SYNTHETIC_KEY: {"generator": SYNTHETIC_TAG, "seed": int(seed),
                                          "config": spec.name}}


def key_rng(seed: int, net: str, key: str) -> np.random.Generator:
    """The generator of one tensor's values."""
    return np.random.default_rng([seed, zlib.crc32(f"{net}/{key}".encode("utf-8"))])


def adam_state(module) -> dict:
    """An Adam state_dict as the originals' training loops save it, without moments."""
    n_params = 0 if module is None else len(list(module.parameters()))
    return {"state": {},
            "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8,
                              "weight_decay": 0, "amsgrad": False, "initial_lr": 2e-4,
                              "params": list(range(n_params))}]}


class SynthError(FommError):
    """The checkpoint cannot be written where the user asked (one line)."""


def write_checkpoint(spec: Spec, seed: int, out, zip: bool = False) -> Path:
    """torch.save the checkpoint to `out` atomically (legacy serialisation unless zip).
    An unwritable place is refused before the model work, in one line."""
    out = Path(out)
    _check_writable(out)
    checkpoint = make_checkpoint(spec, seed)
    try:
        # Saving to a file object names the zip's folder 'archive', whatever the file name,
        # so zip files of the same spec and seed are byte-identical.
        return write_atomic(out, writer=lambda f: torch.save(
            checkpoint, f, _use_new_zipfile_serialization=bool(zip)))
    except (OSError, RuntimeError) as exc:  # a full disk; torch's zip writer says RuntimeError
        raise SynthError(f"{out}: cannot write it ({_reason(exc)})") from None


def _check_writable(out: Path):
    """Make the folder (as before) and try a file in it, so a read-only place fails now."""
    if out.is_dir():
        raise SynthError(f"{out}: is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out}: cannot create its folder ({_reason(exc)})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".probe")
    except OSError as exc:
        raise SynthError(f"{out}: cannot write there ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or one_line(exc)


def synthetic_checkpoint(spec: Spec, seed: int) -> Path:
    """The seeded synthetic checkpoint of a spec, made once under checkpoints/."""
    path = CHECKPOINTS / synthetic_checkpoint_name(spec.name, seed)
    if not path.exists():
        write_checkpoint(spec, seed, path)
    return path
